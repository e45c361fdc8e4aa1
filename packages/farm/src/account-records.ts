/**
 * From an account as a file gives it (XEP-0227 `<user>`, or a `user
 * password` line) to the account record the storage imports in bulk
 * (packages/envelope, xdb-accounts.ts), and the module stores the parts go to.
 */
import type { AccountRecord } from "@jabberfarm/envelope";
import { MIN_ITERATIONS, decodeCredential, deriveCredentialsAsync, isScramMechanism, type ScramCredential } from "@jabberfarm/sasl";
import type { PieUser } from "./pie-read.js";

/** The sm modules' stores each part lives in (packages/sm/src/modules: vcard.ts, private.ts, subscription.ts, offline.ts). */
export const STORES = {
  vcard: "vcard",
  private: "private",
  pending: "subscription-requests",
  offline: "offline",
} as const;

export const EXPORTED_KV_STORES = [STORES.vcard, STORES.private, STORES.pending];
export const EXPORTED_ARCHIVE_STORES = [STORES.offline];

/** An account as `accounts.export` answers it. */
export interface ExportedAccount {
  user: string;
  credentials: ScramCredential[];
  roster: Array<{ jid: string; name?: string | undefined; subscription: string; ask?: string | undefined; approved?: boolean | undefined; groups: string[] }>;
  kv: Array<{ store: string; key: string; value: string }>;
  archive: Array<{ store: string; id?: string | undefined; when?: string | undefined; with?: string | undefined; value: string }>;
}

/**
 * An account ready for the storage but for its credentials when it has a
 * password: those are derived (PBKDF2) only once we know the account is not
 * there already.
 */
export interface PendingAccount {
  record: AccountRecord;
  password?: string;
  where: string;
}

/** Why an account cannot be imported as it is (it is skipped, the rest goes on); undefined when it can. */
export type Skip = string;

/**
 * The SCRAM credentials of a file the farm can hold as they are: SHA-1 and
 * SHA-256, with keys of the right length and at least MIN_ITERATIONS (what
 * the storage accepts). Anything else is a reason to skip the account.
 */
function farmCredentials(u: PieUser): ScramCredential[] | Skip {
  const out: ScramCredential[] = [];
  const unusable: string[] = [];
  for (const s of u.scram) {
    if (!isScramMechanism(s.mechanism)) {
      unusable.push(`${s.mechanism || "no mechanism"} (the farm holds SCRAM-SHA-1 and SCRAM-SHA-256)`);
      continue;
    }
    if (s.iterations < MIN_ITERATIONS) {
      unusable.push(`${s.mechanism} with ${s.iterations} iterations (the farm needs at least ${MIN_ITERATIONS})`);
      continue;
    }
    const cred: ScramCredential = { mechanism: s.mechanism, salt: s.salt, iterations: s.iterations, storedKey: s.storedKey, serverKey: s.serverKey };
    try {
      decodeCredential(cred);
    } catch (err) {
      unusable.push(`${s.mechanism}: ${(err as Error).message}`);
      continue;
    }
    out.push(cred);
  }
  if (out.length > 0) return out;
  return unusable.length > 0 ? `SCRAM credentials the farm cannot use: ${unusable.join("; ")}` : "neither a password nor SCRAM credentials";
}

/** The account to import, or why it is skipped. */
export function pendingFromPie(u: PieUser): PendingAccount | { skip: Skip } {
  const record: AccountRecord = {
    user: u.jid,
    credentials: [],
    roster: u.roster,
    kv: [
      ...(u.vcard === undefined ? [] : [{ store: STORES.vcard, key: "", value: u.vcard }]),
      ...u.privateXml.map((e) => ({ store: STORES.private, ...e })),
      ...u.pending.map((p) => ({ store: STORES.pending, key: p.contact, value: p.value })),
    ],
    archive: u.offline.map((m) => ({ store: STORES.offline, ...m })),
  };
  // A password makes keys for every mechanism the farm offers; keys alone are taken as they are.
  if (u.password !== undefined) return { record, password: u.password, where: u.where };
  const creds = farmCredentials(u);
  if (typeof creds === "string") return { skip: creds };
  record.credentials = creds;
  return { record, where: u.where };
}

/**
 * Derives the credentials of the accounts that came with a password. All at
 * once: each PBKDF2 runs on libuv's thread pool, so they use every core
 * while this thread goes on (a batch is a few hundred accounts).
 */
export async function derivePasswords(accounts: PendingAccount[]): Promise<Array<Skip | undefined>> {
  return Promise.all(accounts.map(async (a) => {
    if (a.password === undefined) return undefined;
    try {
      a.record.credentials = await deriveCredentialsAsync(a.password);
      return undefined;
    } catch (err) {
      return `its password cannot be used: ${(err as Error).message}`;
    }
  }));
}
