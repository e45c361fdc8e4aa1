/**
 * Which users this SM owns, and moving them: the routers announce the SMs
 * serving our domain; the same rendezvous rule over the same list tells
 * every SM (and every router) who owns whom. When the list changes, users
 * this SM no longer owns are handed over (their sessions stay in Redis for
 * the new owner) and users now ours are taken over from Redis
 * (docs/design.md, "Sessions in Redis").
 */
import type { Logger } from "pino";
import { rendezvousPick, rendezvousSeed, type RendezvousCandidate } from "@jabberfarm/component";
import type { RosterManager } from "./roster-manager.js";
import type { Session } from "./session.js";
import type { SessionRegistry } from "./session-registry.js";
import type { SessionStore } from "./session-store.js";
import type { UserQueue } from "./user-queue.js";

export class Ownership {
  /** The SMs serving our domain, as the routers announce them (null until the first notice). */
  private members: RendezvousCandidate[] | null = null;
  private memberIds: ReadonlySet<string> = new Set();
  /** Users whose sessions were looked up in Redis since our share last changed (absent there or adopted). */
  private readonly checked = new Set<string>();
  /** The session registry in Redis, when the farm has one (several SMs). */
  store: SessionStore | undefined;
  /** Whether a c2s address (`c2s/INSTANCE`) is served now; set by the process from the routers' notices. */
  c2sAlive: ((address: string) => boolean) | undefined;
  /** A session taken over from Redis (its modules' data with it): `session/adopted`. */
  onAdopted: ((s: Session) => void) | undefined;
  /** A session taken over whose c2s is gone too: it is lost (runs in the user's queue). */
  onLost: ((s: Session) => Promise<void>) | undefined;

  constructor(
    private readonly instance: string,
    private readonly sessions: SessionRegistry,
    private readonly roster: RosterManager,
    private readonly queue: UserQueue,
    private readonly log: Logger,
  ) {}

  /** Whether the routers bring `user`'s stanzas to this SM (same rule, same list). Unknown list: no. */
  owns(user: string): boolean {
    return this.members !== null && rendezvousPick(this.members, user)?.rendezvousId === this.instance;
  }

  /** The routers' list of the SMs serving our domain changed: move the users whose owner changed. */
  setMembers(instances: readonly string[]): void {
    const before = this.memberIds;
    const now = new Set(instances);
    if (before.size === now.size && [...now].every((i) => before.has(i))) return;
    const first = this.members === null;
    this.members = instances.map((id) => ({ rendezvousId: id, rendezvousSeed: rendezvousSeed(id) }));
    this.memberIds = now;
    this.checked.clear();
    if (this.store === undefined) return;
    if (!first) this.log.info({ members: instances, before: [...before] }, "the SMs serving the domain changed");
    for (const user of [...this.sessions.users()]) {
      if (this.owns(user)) continue;
      void this.queue.serial(user, () => this.handOver(user));
    }
    for (const other of new Set([...before, ...now])) {
      if (other !== this.instance) void this.takeOverFrom(other);
    }
  }

  /** A user who moved to another SM: forget their sessions here (no presence: they are still online). */
  private handOver(user: string): void {
    if (this.owns(user)) return;
    for (const s of this.sessions.of(user)) this.sessions.remove(s.sid);
    this.roster.evict(user);
    const store = this.store;
    // Out of our set a little later, when the new owner has read it.
    if (store) setTimeout(() => this.owns(user) || store.release(user), 5000).unref();
  }

  /** Adopts the users of SM `other` that are ours now. */
  private async takeOverFrom(other: string): Promise<void> {
    try {
      const users = (await this.store?.usersOf(other)) ?? [];
      let n = 0;
      for (const user of users) {
        if (!this.owns(user) || this.sessions.isOnline(user)) continue;
        n += await this.queue.serial(user, () => this.adopt(user));
      }
      if (n > 0) this.log.info({ from: other, sessions: n }, "took sessions over");
    } catch (err) {
      this.log.warn({ err: (err as Error).message, from: other }, "could not take sessions over");
    }
  }

  /** Whether `adopt(user)` could find anything: cheap, so the hot path asks first. */
  mayAdopt(user: string): boolean {
    const store = this.store;
    return store !== undefined && store.ready && !this.sessions.isOnline(user) && !this.checked.has(user);
  }

  /**
   * Loads `user`'s sessions from Redis when we hold none and have not
   * looked since our share last changed; returns how many were adopted.
   * Runs in the user's queue.
   */
  async adopt(user: string): Promise<number> {
    const store = this.store;
    if (store === undefined || !this.mayAdopt(user)) return 0;
    const found = await store.load(user);
    if (this.checked.size > 100_000) this.checked.clear();
    this.checked.add(user);
    let n = 0;
    const lost: Session[] = [];
    for (const s of found) {
      this.sessions.add(s);
      store.save(s);
      n++;
      // Its c2s is gone too: the session is lost, which ends it unless
      // stream management keeps it for its client to resume elsewhere.
      if (this.c2sAlive !== undefined && !this.c2sAlive(s.c2s)) lost.push(s);
    }
    for (const s of found) if (!lost.includes(s)) this.onAdopted?.(s);
    for (const s of lost) await this.onLost?.(s);
    return n;
  }
}
