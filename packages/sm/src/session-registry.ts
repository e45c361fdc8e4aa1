import { Session } from "./session.js";

/**
 * The sessions of the users this SM owns, in memory: the truth while we own
 * them. With Redis, a copy is written through (shared-sessions.ts) so that
 * another SM can rebuild them when this one dies or leaves.
 */
export class SessionRegistry {
  private readonly byBare = new Map<string, Map<string, Session>>();
  private readonly bySid = new Map<string, Session>();

  /** Adds a session; returns the one it replaces (same full JID), which the caller kicks. */
  add(session: Session): Session | undefined {
    let resources = this.byBare.get(session.bare);
    if (!resources) {
      resources = new Map();
      this.byBare.set(session.bare, resources);
    }
    const old = resources.get(session.jid.resource);
    if (old) this.bySid.delete(old.sid);
    resources.set(session.jid.resource, session);
    this.bySid.set(session.sid, session);
    return old;
  }

  /** The session now lives on another c2s connection (resumed, XEP-0198): known by its new id from now on. */
  rebind(session: Session, sid: string, c2s: string): void {
    if (this.bySid.get(session.sid) === session) this.bySid.delete(session.sid);
    session.sid = sid;
    session.c2s = c2s;
    this.bySid.set(sid, session);
  }

  remove(sid: string): Session | undefined {
    const s = this.bySid.get(sid);
    if (!s) return undefined;
    this.bySid.delete(sid);
    const resources = this.byBare.get(s.bare);
    if (resources?.get(s.jid.resource) === s) {
      resources.delete(s.jid.resource);
      if (resources.size === 0) this.byBare.delete(s.bare);
    }
    return s;
  }

  get(sid: string): Session | undefined {
    return this.bySid.get(sid);
  }

  /** The session bound to this exact resource. */
  byFullJid(bare: string, resource: string): Session | undefined {
    return this.byBare.get(bare)?.get(resource);
  }

  /** Every session of a user, available or not. */
  of(bare: string): Session[] {
    const r = this.byBare.get(bare);
    return r ? [...r.values()] : [];
  }

  /** Sessions that sent available presence. */
  available(bare: string): Session[] {
    return this.of(bare).filter((s) => s.available);
  }

  isOnline(bare: string): boolean {
    return this.byBare.has(bare);
  }

  get size(): number {
    return this.bySid.size;
  }

  /** The users with at least one session. */
  users(): IterableIterator<string> {
    return this.byBare.keys();
  }

  /** How many users have at least one session. */
  get userCount(): number {
    return this.byBare.size;
  }

  all(): IterableIterator<Session> {
    return this.bySid.values();
  }
}
