/**
 * Storage on a database that no other process writes: PGlite, whose data
 * directory this process holds the lock of. Then the credentials can live in
 * memory, read once at open and kept current by this process's own writes,
 * and a login costs no query. (On PostgreSQL several xdb processes may share
 * the database, so there every read goes to it.)
 */
import type { ScramCredential } from "./storage.js";
import { SqlStorage } from "./sql-storage.js";

/** Accounts whose credentials are kept in memory; beyond it the rest are read per login. */
const DEFAULT_MAX_CACHED = 200_000;

export class ExclusiveSqlStorage extends SqlStorage {
  private readonly credentials = new Map<string, ScramCredential[]>();
  /** True when every account is in the map, so a miss means "no such account". */
  private complete = false;
  private max = DEFAULT_MAX_CACHED;

  /** Reads every account's credentials into memory (if there are no more than `max`). */
  async warm(max = DEFAULT_MAX_CACHED): Promise<void> {
    this.max = max;
    const rows = await this.db.query<{
      username: string;
      mechanism: string | null;
      salt: string;
      iterations: number;
      stored_key: string;
      server_key: string;
    }>(
      `SELECT a.username, c.mechanism, c.salt, c.iterations, c.stored_key, c.server_key
       FROM accounts a LEFT JOIN credentials c ON c.username = a.username
       ORDER BY a.username, c.mechanism
       LIMIT $1`,
      [max * 2 + 1],
    );
    this.credentials.clear();
    for (const r of rows) {
      let list = this.credentials.get(r.username);
      if (!list) {
        list = [];
        this.credentials.set(r.username, list);
      }
      if (r.mechanism !== null) {
        list.push({ mechanism: r.mechanism as ScramCredential["mechanism"], salt: r.salt, iterations: r.iterations, storedKey: r.stored_key, serverKey: r.server_key });
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
    return deleted;
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
