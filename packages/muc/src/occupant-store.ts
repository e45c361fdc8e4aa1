/**
 * Occupant lists in Redis, so that the muc process that takes a room over
 * (the one that dies' rooms move by rendezvous hashing) knows who is in it
 * and what was last broadcast (docs/muc.md, "Failover").
 *
 * One hash per room, `jf:muc:{ROOM}` (the hash tag keeps it on one Redis
 * Cluster slot): `o:NICK` → occupant JSON, `sent` → the id of the last
 * message broadcast. Memory stays the truth while this process owns the
 * room; Redis is written through without waiting and read only when a
 * room is loaded. The owner renews the key's TTL, so the lists of a farm
 * that went away expire by themselves.
 */
import { createRequire } from "node:module";
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import type { Occupant } from "./room.js";

// Loaded when the first client is made: a farm without Redis (the embedded
// default) never pays for ioredis (docs/performance.md, "Memory at start").
const redisClass = (): typeof Redis => (createRequire(import.meta.url)("ioredis") as typeof import("ioredis")).Redis;

const roomKey = (room: string): string => `jf:muc:{${room}}`;

export interface StoredRoomState {
  occupants: Occupant[];
  /** The id of the last message the previous owner broadcast, if known. */
  sent: string | undefined;
}

export class OccupantStore {
  private readonly redis: Redis;
  private readonly heartbeat: NodeJS.Timeout;
  /** Marks waiting for the end of this turn: room → id (one write per room per turn). */
  private readonly marks = new Map<string, string>();
  private lastError = 0;

  constructor(redisUrl: string, private readonly ttl: number, private readonly rooms: () => Iterable<string>, private readonly log: Logger) {
    this.redis = new (redisClass())(redisUrl, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      enableAutoPipelining: true,
      retryStrategy: (times) => Math.min(200 * times, 2000),
    });
    this.redis.on("error", (err) => this.failed(err));
    this.heartbeat = setInterval(() => this.renew(), Math.max(1000, (ttl * 1000) / 3));
    this.heartbeat.unref();
  }

  get ready(): boolean {
    return this.redis.status === "ready";
  }

  /** Resolves true once Redis answers, false after `ms`. */
  async whenReady(ms: number): Promise<boolean> {
    const end = Date.now() + ms;
    while (!this.ready && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    return this.ready;
  }

  save(room: string, o: Occupant): void {
    if (!this.ready) return;
    const key = roomKey(room);
    this.run(this.redis.hset(key, `o:${o.nick}`, JSON.stringify(o)));
    this.run(this.redis.expire(key, this.ttl));
  }

  remove(room: string, nick: string): void {
    if (this.ready) this.run(this.redis.hdel(roomKey(room), `o:${nick}`));
  }

  /** Everything of the room (destroyed, or temporary and empty). */
  drop(room: string): void {
    this.marks.delete(room);
    if (this.ready) this.run(this.redis.del(roomKey(room)));
  }

  /** Records, at the end of this turn, the last message broadcast in the room. */
  markSent(room: string, id: string): void {
    if (this.marks.size === 0) setImmediate(() => this.flushMarks());
    this.marks.set(room, id);
  }

  private flushMarks(): void {
    if (!this.ready) {
      this.marks.clear();
      return;
    }
    for (const [room, id] of this.marks) {
      const key = roomKey(room);
      this.run(this.redis.hset(key, "sent", id));
      this.run(this.redis.expire(key, this.ttl));
    }
    this.marks.clear();
  }

  /** What the previous owner left of a room (nothing when Redis is away). */
  async load(room: string): Promise<StoredRoomState> {
    if (!this.ready) return { occupants: [], sent: undefined };
    const all = await this.redis.hgetall(roomKey(room));
    const occupants: Occupant[] = [];
    for (const [field, value] of Object.entries(all)) {
      if (!field.startsWith("o:")) continue;
      try {
        occupants.push(JSON.parse(value) as Occupant);
      } catch {
        // A value we did not write: leave it out.
      }
    }
    return { occupants, sent: all.sent };
  }

  /** Writes every mark now (a drain). */
  flush(): void {
    this.flushMarks();
  }

  async close(): Promise<void> {
    clearInterval(this.heartbeat);
    this.flushMarks();
    await this.redis.quit().catch(() => this.redis.disconnect());
  }

  private renew(): void {
    if (!this.ready) return;
    for (const room of this.rooms()) this.run(this.redis.expire(roomKey(room), this.ttl));
  }

  private run(p: Promise<unknown>): void {
    p.catch((err: unknown) => this.failed(err as Error));
  }

  private failed(err: Error): void {
    // One line per 10 s at most: Redis being away is one problem, not one per command.
    if (Date.now() - this.lastError < 10_000) return;
    this.lastError = Date.now();
    this.log.warn({ err: err.message }, "Redis write-through of occupants failed");
  }
}
