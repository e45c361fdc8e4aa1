/**
 * Storage on a database that no other process writes: PGlite, whose data
 * directory this process holds the lock of. Then what every login reads can
 * live in memory, read once at open and kept current by this process's own
 * writes: the credentials, and which users may have offline messages or
 * pending subscription requests (most have none, and then a login costs no
 * query for them). (On PostgreSQL several xdb processes may share
 * the database, so there every read goes to it.)
 */
import type { OfflineMessage, ScramCredential, SubscriptionRequest } from "./storage.js";
import { CREDENTIALS_SELECT, SqlStorage, credentialFromRow, type CredentialRow } from "./sql-storage.js";

/** Accounts whose credentials are kept in memory; beyond it the rest are read per login. */
const DEFAULT_MAX_CACHED = 200_000;

export class ExclusiveSqlStorage extends SqlStorage {
  private readonly credentials = new Map<string, ScramCredential[]>();
  /** True when every account is in the map, so a miss means "no such account". */
  private complete = false;
  private max = DEFAULT_MAX_CACHED;
  /** Users that may have offline messages / pending requests; anyone else surely has none. */
  private readonly mayHaveOffline = new Set<string>();
  private readonly mayHaveRequests = new Set<string>();

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
    this.mayHaveOffline.clear();
    this.mayHaveRequests.clear();
    for (const r of await this.db.query<{ username: string }>("SELECT DISTINCT username FROM offline_messages")) this.mayHaveOffline.add(r.username);
    for (const r of await this.db.query<{ username: string }>("SELECT DISTINCT username FROM subscription_requests")) this.mayHaveRequests.add(r.username);
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
    this.mayHaveOffline.delete(user);
    this.mayHaveRequests.delete(user);
    return deleted;
  }

  override async storeOffline(user: string, stanza: string, limit: number): Promise<boolean> {
    this.mayHaveOffline.add(user);
    return this.writing(() => super.storeOffline(user, stanza, limit));
  }

  override async listOffline(user: string): Promise<OfflineMessage[]> {
    return this.readUnlessSurelyEmpty(this.mayHaveOffline, user, () => super.listOffline(user));
  }

  override async countOffline(user: string): Promise<number> {
    if (!this.mayHaveOffline.has(user)) return 0;
    return super.countOffline(user);
  }

  override async addSubscriptionRequest(user: string, from: string, stanza: string): Promise<void> {
    this.mayHaveRequests.add(user);
    await this.writing(() => super.addSubscriptionRequest(user, from, stanza));
  }

  override async listSubscriptionRequests(user: string): Promise<SubscriptionRequest[]> {
    return this.readUnlessSurelyEmpty(this.mayHaveRequests, user, () => super.listSubscriptionRequests(user));
  }

  /** Reads the list only for users in `set`; an empty read that no write overlapped takes them out. */
  private async readUnlessSurelyEmpty<T>(set: Set<string>, user: string, read: () => Promise<T[]>): Promise<T[]> {
    if (!set.has(user)) return [];
    const mark = this.quietMark();
    const list = await read();
    if (list.length === 0 && this.stillQuiet(mark)) set.delete(user);
    return list;
  }

  // A user leaves a "may have" set only after an empty read during which no
  // such write was under way or began: a write racing with the read could
  // otherwise land unseen and then never be looked for.
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
