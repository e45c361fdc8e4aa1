/**
 * The session registry in Redis (docs/design.md, "Sessions in Redis"): the
 * copy of every SM's sessions that lets another SM take a user over when
 * their SM dies or leaves, with their sessions and presence as they were.
 *
 * Keys (the hash tag keeps one user's, or one SM's, keys in one slot of a
 * Redis Cluster; no command spans two tags):
 * - `jf:sess:{alice@localhost}`: hash, sid → JSON of one session (full JID,
 *   c2s instance, owner SM, priority, last presence, ...). TTL renewed by
 *   the owning SM's heartbeat, so the sessions of a farm that went away
 *   expire by themselves.
 * - `jf:smusers:{sm-1}`: set of the users with sessions on SM `sm-1`, which
 *   the others read when sm-1 leaves or dies. TTL renewed the same way.
 *
 * Memory stays the truth while this SM owns a user; Redis is written
 * through (without waiting) and read only when a user arrives from another
 * SM. Redis being away costs takeover, never a login or a message.
 */
import { createRequire } from "node:module";
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import { Jid } from "@jabberfarm/jid";
import { NS, parseTrusted } from "@jabberfarm/xml";
import { Session, type SessionValue } from "./session.js";

// Loaded when the first client is made: a farm without Redis (the embedded
// default) never pays for ioredis (docs/performance.md, "Memory at start").
const redisClass = (): typeof Redis => (createRequire(import.meta.url)("ioredis") as typeof import("ioredis")).Redis;

export interface SessionStoreOptions {
  redisUrl: string;
  /** This SM's instance id. */
  instance: string;
  log: Logger;
  /** Lifetime of the keys without a heartbeat. */
  ttlSeconds?: number;
  /** Every online user this SM holds (for the heartbeat and for resyncs after Redis lost its data). */
  users: () => Iterable<string>;
  /** Every session this SM holds (for resyncs). */
  sessions: () => Iterable<Session>;
}

interface StoredSession {
  sid: string;
  jid: string;
  c2s: string;
  sm: string;
  since: number;
  available: boolean;
  priority: number;
  presence?: string;
  interested: boolean;
  directedTo: string[];
  /** Modules' session data (Session.data). */
  data?: Record<string, SessionValue>;
}

const sessionsKey = (user: string): string => `jf:sess:{${user}}`;
const usersKey = (instance: string): string => `jf:smusers:{${instance}}`;

export class SessionStore {
  private readonly redis: Redis;
  private readonly ttl: number;
  private readonly heartbeat: NodeJS.Timeout;
  private lastError = 0;
  private wasReady = false;

  constructor(private readonly o: SessionStoreOptions) {
    this.ttl = o.ttlSeconds ?? 60;
    this.redis = new (redisClass())(o.redisUrl, {
      // A command while Redis is away fails at once instead of queueing:
      // the write-through is best effort and resynced when Redis is back.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      enableAutoPipelining: true,
      retryStrategy: (times) => Math.min(200 * times, 2000),
    });
    this.redis.on("error", (err) => this.failed(err));
    this.redis.on("ready", () => {
      if (this.wasReady) o.log.info("Redis is back; writing this SM's sessions again");
      this.wasReady = true;
      // After a restart Redis may have lost everything: write it all again.
      this.resync();
    });
    this.redis.on("end", () => o.log.warn("Redis connection ended"));
    this.heartbeat = setInterval(() => this.renew(), Math.max(1000, (this.ttl * 1000) / 3));
    this.heartbeat.unref();
  }

  /** Connected to Redis now (readiness). */
  get ready(): boolean {
    return this.redis.status === "ready";
  }

  /** Writes (or rewrites) one session. */
  save(s: Session): void {
    if (!this.ready) return;
    const key = sessionsKey(s.bare);
    this.run(this.redis.hset(key, s.sid, JSON.stringify(toStored(s, this.o.instance))));
    this.run(this.redis.expire(key, this.ttl));
    this.run(this.redis.sadd(usersKey(this.o.instance), s.bare));
  }

  /** Forgets one session; `lastOfUser` also drops the user from this SM's set. */
  remove(s: Session, lastOfUser: boolean): void {
    if (!this.ready) return;
    this.run(this.redis.hdel(sessionsKey(s.bare), s.sid));
    if (lastOfUser) this.run(this.redis.srem(usersKey(this.o.instance), s.bare));
  }

  /** A user this SM no longer owns: out of our set (their sessions stay for the new owner). */
  release(user: string): void {
    if (this.ready) this.run(this.redis.srem(usersKey(this.o.instance), user));
  }

  /** The sessions Redis holds for `user` (none when Redis is away). */
  async load(user: string): Promise<Session[]> {
    if (!this.ready) return [];
    const all = await this.redis.hgetall(sessionsKey(user));
    const out: Session[] = [];
    for (const text of Object.values(all)) {
      const s = fromStored(text);
      if (s) out.push(s);
    }
    return out;
  }

  /** The users an SM (another one, gone or leaving) had sessions for; waits a little for Redis at start. */
  async usersOf(instance: string): Promise<string[]> {
    if (!(await this.whenReady(3000))) return [];
    return this.redis.smembers(usersKey(instance));
  }

  /** Resolves once connected to Redis (true), or after `ms` without it (false). */
  whenReady(ms: number): Promise<boolean> {
    if (this.ready) return Promise.resolve(true);
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      const redis = this.redis;
      function done(): void {
        clearTimeout(t);
        redis.off("ready", done);
        resolve(redis.status === "ready");
      }
      redis.once("ready", done);
    });
  }

  async close(): Promise<void> {
    clearInterval(this.heartbeat);
    try {
      await this.redis.quit();
    } catch {
      this.redis.disconnect();
    }
  }

  private renew(): void {
    if (!this.ready) return;
    this.run(this.redis.expire(usersKey(this.o.instance), this.ttl));
    for (const user of this.o.users()) this.run(this.redis.expire(sessionsKey(user), this.ttl));
  }

  private resync(): void {
    let n = 0;
    for (const s of this.o.sessions()) {
      this.save(s);
      n++;
    }
    this.run(this.redis.expire(usersKey(this.o.instance), this.ttl));
    if (n > 0) this.o.log.info({ sessions: n }, "sessions written to Redis");
  }

  private run(p: Promise<unknown>): void {
    p.catch((err: unknown) => this.failed(err as Error));
  }

  /** One log line per 10 s at most: an outage must not flood the log. */
  private failed(err: Error): void {
    const now = Date.now();
    if (now - this.lastError < 10_000) return;
    this.lastError = now;
    this.o.log.warn({ err: err.message }, "Redis unavailable: sessions are not shared with the other SMs until it is back");
  }
}

function toStored(s: Session, sm: string): StoredSession {
  return {
    sid: s.sid, jid: s.full, c2s: s.c2s, sm, since: s.startedAt, available: s.available, priority: s.priority,
    ...(s.presence ? { presence: s.presence.toString() } : {}),
    interested: s.interested, directedTo: [...s.directedTo],
    ...(s.data.size > 0 ? { data: Object.fromEntries(s.data) } : {}),
  };
}

function fromStored(text: string): Session | undefined {
  try {
    const o = JSON.parse(text) as StoredSession;
    const jid = Jid.parse(o.jid);
    const s = new Session(o.sid, jid, o.c2s, o.since);
    s.available = o.available;
    s.priority = o.priority;
    s.interested = o.interested;
    if (o.presence) s.presence = parseTrusted(o.presence, NS.CLIENT);
    for (const d of o.directedTo) s.directedTo.add(d);
    for (const [k, v] of Object.entries(o.data ?? {})) s.data.set(k, v);
    return s;
  } catch {
    return undefined;
  }
}
