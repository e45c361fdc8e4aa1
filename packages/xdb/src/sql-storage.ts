// The one Storage implementation, written against Db so PostgreSQL and
// PGlite run the very same SQL.
//
// Locking discipline: every write that must be serialised per user first
// locks that user's `accounts` row, and always before touching any other
// row. One lock order everywhere means concurrent writers queue instead of
// deadlocking.
//
// Types: node-postgres returns int8 as a string and PGlite as a (lossy)
// number, so 64-bit values are cast to text in SQL and counts to int.
import type { Db, DbHandle } from "./db.js";
import { InvalidArgumentError, UnknownAccountError } from "./errors.js";
import { storeRead, storeWrite } from "./store-sql.js";
import type { PlainSetBatcher } from "./plain-sets.js";
import { checkedExport, checkedImport, exportAccounts, importAccounts } from "./accounts-sql.js";
import type { AccountRecord } from "@jabberfarm/envelope";
import type {
  Roster,
  RosterItem,
  RosterWrite,
  ScramCredential,
  Storage,
  StoreRead,
  StoreReadResult,
  StoreWrite,
  StoreWriteResult,
  Subscription,
} from "./storage.js";

const MECHANISMS: ReadonlySet<string> = new Set(["SCRAM-SHA-1", "SCRAM-SHA-256"]);
const SUBSCRIPTIONS: ReadonlySet<string> = new Set(["none", "to", "from", "both"]);
// Same rule as the accounts CHECK constraint, checked here to answer with
// InvalidArgumentError instead of a database error.
const BARE_JID = /^[^@/]+@[^@/]+$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const INT4_MAX = 2 ** 31 - 1;

function text(value: unknown, what: string, { empty = false } = {}): string {
  if (typeof value !== "string") throw new InvalidArgumentError(`${what} must be a string`);
  if (!empty && value.length === 0) throw new InvalidArgumentError(`${what} must not be empty`);
  // PostgreSQL text cannot hold NUL, and XML cannot either.
  if (value.includes("\u0000")) throw new InvalidArgumentError(`${what} must not contain NUL`);
  return value;
}

function credentialsArg(list: unknown): ScramCredential[] {
  if (!Array.isArray(list)) throw new InvalidArgumentError("credentials must be an array");
  const seen = new Set<string>();
  return list.map((c: unknown, i): ScramCredential => {
    if (typeof c !== "object" || c === null) throw new InvalidArgumentError(`credentials[${i}] must be an object`);
    const r = c as Record<string, unknown>;
    const mechanism = r["mechanism"];
    if (typeof mechanism !== "string" || !MECHANISMS.has(mechanism)) {
      throw new InvalidArgumentError(`credentials[${i}].mechanism must be SCRAM-SHA-1 or SCRAM-SHA-256`);
    }
    if (seen.has(mechanism)) throw new InvalidArgumentError(`credentials list ${mechanism} twice`);
    seen.add(mechanism);
    const iterations = r["iterations"];
    if (typeof iterations !== "number" || !Number.isInteger(iterations) || iterations < 1 || iterations > INT4_MAX) {
      throw new InvalidArgumentError(`credentials[${i}].iterations must be a positive 32-bit integer`);
    }
    const b64 = (key: string): string => {
      const v = text(r[key], `credentials[${i}].${key}`);
      if (!BASE64.test(v)) throw new InvalidArgumentError(`credentials[${i}].${key} must be base64`);
      return v;
    };
    return {
      mechanism: mechanism as ScramCredential["mechanism"],
      salt: b64("salt"),
      iterations,
      storedKey: b64("storedKey"),
      serverKey: b64("serverKey"),
    };
  });
}

function rosterItemArg(item: unknown): RosterItem {
  if (typeof item !== "object" || item === null) throw new InvalidArgumentError("roster item must be an object");
  const r = item as Record<string, unknown>;
  const subscription = r["subscription"];
  if (typeof subscription !== "string" || !SUBSCRIPTIONS.has(subscription)) {
    throw new InvalidArgumentError("roster item subscription must be none, to, from or both");
  }
  if (r["ask"] !== undefined && r["ask"] !== "subscribe") {
    throw new InvalidArgumentError('roster item ask must be "subscribe" or absent');
  }
  if (r["approved"] !== undefined && typeof r["approved"] !== "boolean") {
    throw new InvalidArgumentError("roster item approved must be a boolean or absent");
  }
  const groups = r["groups"];
  if (!Array.isArray(groups)) throw new InvalidArgumentError("roster item groups must be an array");
  const out: RosterItem = {
    jid: text(r["jid"], "roster item jid"),
    subscription: subscription as Subscription,
    groups: groups.map((g, i) => text(g, `roster item groups[${i}]`, { empty: true })),
  };
  if (r["name"] !== undefined) out.name = text(r["name"], "roster item name", { empty: true });
  if (r["ask"] === "subscribe") out.ask = "subscribe";
  if (r["approved"] === true) out.approved = true;
  return out;
}

interface RosterRow {
  jid: string;
  name: string | null;
  subscription: string;
  ask: string | null;
  approved: boolean;
  groups: string[];
}

const ROSTER_COLUMNS = "r.jid, r.name, r.subscription, r.ask, r.approved, r.groups";

function rosterItemFromRow(row: RosterRow): RosterItem {
  const item: RosterItem = {
    jid: row.jid,
    subscription: row.subscription as Subscription,
    groups: row.groups,
  };
  if (row.name !== null) item.name = row.name;
  if (row.ask === "subscribe") item.ask = "subscribe";
  if (row.approved) item.approved = true;
  return item;
}

/** Locks the account row for this transaction; false if there is no such account. */
async function lockAccount(tx: Db, user: string): Promise<boolean> {
  const rows = await tx.query("SELECT 1 FROM accounts WHERE username = $1 FOR NO KEY UPDATE", [user]);
  return rows.length > 0;
}

async function bumpRosterVer(tx: Db, user: string): Promise<string | null> {
  const rows = await tx.query<{ ver: string }>(
    "UPDATE accounts SET roster_ver = roster_ver + 1 WHERE username = $1 RETURNING roster_ver::text AS ver",
    [user],
  );
  return rows[0]?.ver ?? null;
}

async function insertCredentials(tx: Db, user: string, creds: ScramCredential[]): Promise<void> {
  if (creds.length === 0) return;
  await tx.query(
    `INSERT INTO credentials (username, mechanism, salt, iterations, stored_key, server_key)
     SELECT $1, m, s, i, sk, vk FROM unnest($2::text[], $3::text[], $4::int[], $5::text[], $6::text[]) AS c(m, s, i, sk, vk)`,
    [
      user,
      creds.map((c) => c.mechanism),
      creds.map((c) => c.salt),
      creds.map((c) => c.iterations),
      creds.map((c) => c.storedKey),
      creds.map((c) => c.serverKey),
    ],
  );
}

/** A row of CREDENTIALS_SELECT; `mechanism` is null for an account without credentials. */
export interface CredentialRow {
  username: string;
  mechanism: string | null;
  salt: string;
  iterations: number;
  stored_key: string;
  server_key: string;
}

/**
 * Every account with its credentials, one row per credential (NULLs for an
 * account without any); callers add WHERE/ORDER BY. Selecting from accounts
 * tells "no account" (no row) from "no credentials" (a row of NULLs).
 */
export const CREDENTIALS_SELECT = `SELECT a.username, c.mechanism, c.salt, c.iterations, c.stored_key, c.server_key
       FROM accounts a LEFT JOIN credentials c ON c.username = a.username`;

export function credentialFromRow(r: CredentialRow): ScramCredential {
  return { mechanism: r.mechanism as ScramCredential["mechanism"], salt: r.salt, iterations: r.iterations, storedKey: r.stored_key, serverKey: r.server_key };
}

export class SqlStorage implements Storage {
  /** The underlying connection; exposed for migrations, tests and maintenance, not for features. */
  readonly db: Db;
  readonly #handle: DbHandle;
  #closing: Promise<void> | undefined;
  /** Plain key-value sets written together (only where one connection orders everything: PGlite). */
  protected plainSets: PlainSetBatcher | undefined;

  constructor(handle: DbHandle) {
    this.#handle = handle;
    this.db = handle;
  }

  // accounts

  async createAccount(user: string, credentials: ScramCredential[]): Promise<boolean> {
    if (!BARE_JID.test(text(user, "user"))) throw new InvalidArgumentError("user must be a bare JID local@domain");
    const creds = credentialsArg(credentials);
    return this.db.transaction(async (tx) => {
      const rows = await tx.query(
        "INSERT INTO accounts (username) VALUES ($1) ON CONFLICT (username) DO NOTHING RETURNING username",
        [user],
      );
      if (rows.length === 0) return false;
      await insertCredentials(tx, user, creds);
      return true;
    });
  }

  async deleteAccount(user: string): Promise<boolean> {
    // One statement is one transaction: ON DELETE CASCADE removes credentials,
    // roster and every store of the user atomically.
    const rows = await this.db.query("DELETE FROM accounts WHERE username = $1 RETURNING username", [
      text(user, "user"),
    ]);
    return rows.length > 0;
  }

  async accountExists(user: string): Promise<boolean> {
    const rows = await this.db.query("SELECT 1 FROM accounts WHERE username = $1", [text(user, "user")]);
    return rows.length > 0;
  }

  async getCredentials(user: string): Promise<ScramCredential[] | null> {
    const rows = await this.db.query<CredentialRow>(
      `${CREDENTIALS_SELECT}
       WHERE a.username = $1
       ORDER BY c.mechanism`,
      [text(user, "user")],
    );
    if (rows.length === 0) return null;
    const out: ScramCredential[] = [];
    for (const r of rows) {
      if (r.mechanism === null) continue;
      out.push(credentialFromRow(r));
    }
    return out;
  }

  async setCredentials(user: string, credentials: ScramCredential[]): Promise<boolean> {
    text(user, "user");
    const creds = credentialsArg(credentials);
    return this.db.transaction(async (tx) => {
      // Without the lock two concurrent replacements could both delete, then
      // both insert, and one would fail on the primary key.
      if (!(await lockAccount(tx, user))) return false;
      await tx.query("DELETE FROM credentials WHERE username = $1", [user]);
      await insertCredentials(tx, user, creds);
      return true;
    });
  }

  // roster

  async getRoster(user: string): Promise<Roster> {
    // One statement, hence one snapshot: ver always matches the items.
    const rows = await this.db.query<{ ver: string } & { [K in keyof RosterRow]: RosterRow[K] | null }>(
      `SELECT a.roster_ver::text AS ver, ${ROSTER_COLUMNS}
       FROM accounts a LEFT JOIN roster_items r ON r.username = a.username
       WHERE a.username = $1
       ORDER BY r.jid COLLATE "C"`,
      [text(user, "user")],
    );
    const first = rows[0];
    if (!first) return { ver: "0", items: [] };
    const items: RosterItem[] = [];
    for (const r of rows) {
      if (r.jid === null) continue;
      items.push(rosterItemFromRow(r as RosterRow));
    }
    return { ver: first.ver, items };
  }

  async setRosterItem(user: string, item: RosterItem, quota?: { maxItems?: number | undefined }): Promise<RosterWrite> {
    text(user, "user");
    const it = rosterItemArg(item);
    const maxItems = quota?.maxItems;
    if (maxItems !== undefined && (!Number.isSafeInteger(maxItems) || maxItems < 0)) {
      throw new InvalidArgumentError("roster quota maxItems must be a non-negative integer");
    }
    return this.db.transaction(async (tx) => {
      if (maxItems !== undefined) {
        // Under the lock, so that concurrent additions cannot pass the quota together.
        if (!(await lockAccount(tx, user))) throw new UnknownAccountError(user);
        const [row] = await tx.query<{ n: number; present: boolean }>(
          `SELECT (SELECT count(*)::int FROM roster_items WHERE username = $1) AS n,
                  EXISTS (SELECT 1 FROM roster_items WHERE username = $1 AND jid = $2) AS present`,
          [user, it.jid],
        );
        if (row && !row.present && row.n >= maxItems) return { ok: false, reason: "quota", limit: "maxItems" } as const;
      }
      const ver = await bumpRosterVer(tx, user);
      if (ver === null) throw new UnknownAccountError(user);
      await tx.query(
        `INSERT INTO roster_items (username, jid, name, subscription, ask, approved, groups)
         VALUES ($1, $2, $3, $4, $5, $6, $7::text[])
         ON CONFLICT (username, jid) DO UPDATE SET
           name = excluded.name, subscription = excluded.subscription, ask = excluded.ask,
           approved = excluded.approved, groups = excluded.groups`,
        [user, it.jid, it.name ?? null, it.subscription, it.ask ?? null, it.approved === true, it.groups],
      );
      return { ok: true, ver } as const;
    });
  }

  async removeRosterItem(user: string, jid: string): Promise<string | null> {
    text(user, "user");
    text(jid, "jid");
    return this.db.transaction(async (tx) => {
      if (!(await lockAccount(tx, user))) return null;
      const gone = await tx.query("DELETE FROM roster_items WHERE username = $1 AND jid = $2 RETURNING jid", [user, jid]);
      if (gone.length === 0) return null;
      return bumpRosterVer(tx, user);
    });
  }

  // the modules' keyed stores and archives (store-sql.ts, docs/storage.md)

  storeRead(params: StoreRead): Promise<StoreReadResult> {
    return storeRead(this.db, params);
  }

  storeWrite(params: StoreWrite): Promise<StoreWriteResult> {
    return storeWrite(this.db, params, this.plainSets);
  }

  // whole accounts in bulk (accounts-sql.ts)

  // async: a bad argument is a rejection, as from every other method, never a throw.
  async importAccounts(accounts: AccountRecord[]): Promise<Array<"created" | "exists">> {
    return importAccounts(this.db, checkedImport(accounts));
  }

  async exportAccounts(params: Parameters<Storage["exportAccounts"]>[0]): ReturnType<Storage["exportAccounts"]> {
    return exportAccounts(this.db, checkedExport(params));
  }

  /** Idempotent; waits for the backend to shut down. */
  close(): Promise<void> {
    this.#closing ??= this.#handle.close();
    return this.#closing;
  }
}
