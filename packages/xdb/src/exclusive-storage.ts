/**
 * Storage on a database that no other process writes: PGlite, whose data
 * directory this process holds the lock of. Then what every login reads can
 * live in memory, read once at open and kept current by this process's own
 * writes: the credentials, and which users have anything at all in which
 * module store (most users have no offline messages or pending subscription
 * requests, and then a login costs no query for them). (On PostgreSQL
 * several xdb processes may share the database, so there every read goes
 * to it.)
 */
import type { ScramCredential, StoreRead, StoreReadResult, StoreWrite, StoreWriteResult } from "./storage.js";
import { checkedRead } from "./store-sql.js";
import type { AccountRecord } from "@jabberfarm/envelope";
import { CREDENTIALS_SELECT, SqlStorage, credentialFromRow, type CredentialRow } from "./sql-storage.js";
import type { PlainSetBatcher } from "./plain-sets.js";

/** Accounts whose credentials are kept in memory; beyond it the rest are read per login. */
const DEFAULT_MAX_CACHED = 200_000;

export class ExclusiveSqlStorage extends SqlStorage {
  private readonly credentials = new Map<string, ScramCredential[]>();
  /** True when every account is in the map, so a miss means "no such account". */
  private complete = false;
  private max = DEFAULT_MAX_CACHED;
  /** User → the stores that may hold something of theirs; any other store surely holds nothing. */
  private readonly mayHave = new Map<string, Set<string>>();

  /**
   * Writes plain sets together (plain-sets.ts). The batcher must run its
   * statement on the connection under this storage's handle, and the handle
   * must call its `flush()` before every other statement.
   */
  batchPlainSets(batcher: PlainSetBatcher): void {
    this.plainSets = batcher;
  }

  /** Reads every account's credentials into memory (if there are no more than `max`). */
  async warm(max = DEFAULT_MAX_CACHED): Promise<void> {
    this.max = max;
    const rows = await this.db.query<CredentialRow>(
      `${CREDENTIALS_SELECT}
       ORDER BY a.username, c.mechanism
       LIMIT $1`,
      [max * 2 + 1],
    );
    this.credentials.clear();
    this.mayHave.clear();
    const used = await this.db.query<{ username: string; store: string }>(
      "SELECT DISTINCT username, store FROM kv_store UNION SELECT DISTINCT username, store FROM archive_store",
    );
    for (const r of used) this.mark(r.username, r.store);
    for (const r of rows) {
      let list = this.credentials.get(r.username);
      if (!list) {
        list = [];
        this.credentials.set(r.username, list);
      }
      if (r.mechanism !== null) {
        list.push(credentialFromRow(r));
      }
    }
    // Two mechanisms per account at most: fewer rows than the limit means we saw them all.
    this.complete = rows.length <= max * 2 && this.credentials.size <= max;
    if (!this.complete) this.credentials.clear();
  }

  get cachedAccounts(): number {
    return this.credentials.size;
  }

  override async getCredentials(user: string): Promise<ScramCredential[] | null> {
    const hit = this.credentials.get(user);
    if (hit) return hit.map((c) => ({ ...c }));
    if (this.complete) return null;
    return super.getCredentials(user);
  }

  override async accountExists(user: string): Promise<boolean> {
    if (this.credentials.has(user)) return true;
    if (this.complete) return false;
    return super.accountExists(user);
  }

  override async createAccount(user: string, credentials: ScramCredential[]): Promise<boolean> {
    const created = await super.createAccount(user, credentials);
    if (created) this.remember(user, credentials);
    return created;
  }

  override async setCredentials(user: string, credentials: ScramCredential[]): Promise<boolean> {
    const updated = await super.setCredentials(user, credentials);
    if (updated) this.remember(user, credentials);
    return updated;
  }

  override async deleteAccount(user: string): Promise<boolean> {
    const deleted = await super.deleteAccount(user);
    this.credentials.delete(user);
    this.mayHave.delete(user);
    return deleted;
  }

  override async importAccounts(accounts: AccountRecord[]): Promise<Array<"created" | "exists">> {
    // As for storeWrite: marked before the write, so no overlapping read concludes "empty".
    for (const a of accounts) for (const e of [...(a.kv ?? []), ...(a.archive ?? [])]) this.mark(a.user, e.store);
    const outcome = await this.writing(() => super.importAccounts(accounts));
    accounts.forEach((a, i) => {
      if (outcome[i] === "created") this.remember(a.user, [...new Map(a.credentials.map((c) => [c.mechanism, c] as const)).values()]);
    });
    return outcome;
  }

  override async storeWrite(params: StoreWrite): Promise<StoreWriteResult> {
    // Marked before the write starts, so that no read that overlaps it may conclude "empty".
    if (params.kind === "archive.appendMany") {
      for (const item of params.items) this.mark(item.user, params.store);
    } else {
      const adds = params.kind === "archive.append" || (params.kind === "kv.set" && params.entries.some((e) => e.value !== null));
      if (adds) this.mark(params.user, params.store);
    }
    return this.writing(() => super.storeWrite(params));
  }

  override async storeRead(params: StoreRead): Promise<StoreReadResult> {
    if (!this.mayHave.get(params.user)?.has(params.store)) {
      checkedRead(params); // invalid parameters are refused whether or not there is data
      return nothingFor(params);
    }
    const mark = this.quietMark();
    const result = await super.storeRead(params);
    if (provesEmpty(params, result) && this.stillQuiet(mark)) this.unmark(params.user, params.store);
    return result;
  }

  private mark(user: string, store: string): void {
    let stores = this.mayHave.get(user);
    if (!stores) this.mayHave.set(user, (stores = new Set()));
    stores.add(store);
  }

  private unmark(user: string, store: string): void {
    const stores = this.mayHave.get(user);
    stores?.delete(store);
    if (stores?.size === 0) this.mayHave.delete(user);
  }

  // A store leaves a user's "may have" set only after a read that found it
  // empty and during which no write was under way or began: a write racing
  // with the read could otherwise land unseen and then never be looked for.
  private writesStarted = 0;
  private writesInFlight = 0;

  private async writing<T>(write: () => Promise<T>): Promise<T> {
    this.writesStarted++;
    this.writesInFlight++;
    try {
      return await write();
    } finally {
      this.writesInFlight--;
    }
  }

  private quietMark(): number {
    return this.writesInFlight === 0 ? this.writesStarted : -1;
  }

  private stillQuiet(mark: number): boolean {
    return mark >= 0 && this.writesInFlight === 0 && this.writesStarted === mark;
  }

  private remember(user: string, credentials: ScramCredential[]): void {
    if (!this.complete) return;
    if (this.credentials.size >= this.max && !this.credentials.has(user)) {
      // Too many to keep: fall back to reading from the database for everyone.
      this.complete = false;
      this.credentials.clear();
      return;
    }
    this.credentials.set(user, credentials.map((c) => ({ ...c })).sort((a, b) => (a.mechanism < b.mechanism ? -1 : 1)));
  }
}

/** What a read of a store that surely holds nothing answers. */
function nothingFor(params: StoreRead): StoreReadResult {
  switch (params.kind) {
    case "kv.get":
      return { value: null };
    case "kv.list":
    case "archive.query":
      return { items: [], complete: true };
    case "archive.count":
      return { count: 0, bytes: 0 };
  }
}

/** Whether a read saw the whole store empty (not merely an empty page or a filtered part). */
function provesEmpty(params: StoreRead, result: StoreReadResult): boolean {
  switch (params.kind) {
    case "kv.list":
      return params.after === undefined && "items" in result && result.items.length === 0;
    case "archive.query":
      return params.with === undefined && params.start === undefined && params.end === undefined && params.after === undefined &&
        params.before === undefined && params.ids === undefined && "items" in result && result.items.length === 0;
    case "archive.count":
      return params.with === undefined && "count" in result && result.count === 0;
    default:
      return false;
  }
}
