/**
 * Connection redirection between c2s processes (the 2002 farming plan's
 * step 2, RFC 6120 §4.9.3.19 `see-other-host`): every c2s publishes its
 * connection count and its advertised address in Redis, with a TTL renewed
 * twice a second so a crashed process drops out by itself, and reads the
 * others'. A c2s clearly above its fair share, and really loaded (at least
 * `minConnections`), sends a new client to the least loaded one; a balanced
 * or small farm redirects nobody, and only to a c2s clearly below the share,
 * so redirects cannot loop.
 */
import { createRequire } from "node:module";
import type { Redis } from "ioredis";

// Loaded when the first client is made: a farm without Redis (the embedded
// default) never pays for ioredis (docs/performance.md, "Memory at start").
const redisClass = (): typeof Redis => (createRequire(import.meta.url)("ioredis") as typeof import("ioredis")).Redis;

export interface C2sLoad {
  instance: string;
  address: string;
  /** Its WebSocket URL (RFC 7395), for WebSocket clients sent there. */
  websocket?: string | undefined;
  connections: number;
}

export interface LoadBoardOptions {
  redisUrl: string;
  instance: string;
  /** host:port clients should use to reach this c2s. */
  address: string;
  /** The WebSocket URL clients should use to reach this c2s, when it has that listener. */
  websocket?: string | undefined;
  connections: () => number;
  /** How far above the fair share (0.2 = 20 %) before redirecting. */
  margin: number;
  /**
   * Connections below which this c2s never redirects, whatever the others
   * carry: a small farm behind one address must work for clients that do
   * not follow see-other-host. 0 redirects as soon as the share says so.
   */
  minConnections: number;
  intervalMs?: number;
}

// One hash tag, so every key lands in one slot under Redis Cluster.
const MEMBERS = "jf:{c2s}:members";
const loadKey = (instance: string): string => `jf:{c2s}:load:${instance}`;
/** Connections above its share plus the margin that a c2s still keeps, so a small farm is not rebalanced over a client or two. */
export const REDIRECT_SLACK = 2;

export class LoadBoard {
  private readonly redis: Redis;
  private readonly timer: NodeJS.Timeout;
  private others: C2sLoad[] = [];

  constructor(private readonly o: LoadBoardOptions) {
    this.redis = new (redisClass())(o.redisUrl, { maxRetriesPerRequest: 1 });
    this.redis.on("error", () => {}); // a Redis outage means no redirects, never a failed login
    const every = o.intervalMs ?? 500;
    this.timer = setInterval(() => void this.tick(), every);
    this.timer.unref();
    void this.tick();
  }

  private refreshing = false;

  /** One refresh at a time: while Redis is away, they would pile up. */
  private async tick(): Promise<void> {
    if (this.refreshing) return;
    this.refreshing = true;
    try {
      await this.refresh();
    } catch {
      // Redis unreachable: without fresh figures, redirect nobody.
      this.others = [];
    } finally {
      this.refreshing = false;
    }
  }

  /** Publishes our load and reads everyone's. */
  async refresh(): Promise<void> {
    const me: C2sLoad = { instance: this.o.instance, address: this.o.address, websocket: this.o.websocket, connections: this.o.connections() };
    const ttl = Math.max(3, Math.ceil(((this.o.intervalMs ?? 500) * 6) / 1000));
    await this.redis.multi().set(loadKey(me.instance), JSON.stringify(me), "EX", ttl).sadd(MEMBERS, me.instance).exec();
    const members = await this.redis.smembers(MEMBERS);
    const values = members.length === 0 ? [] : await this.redis.mget(...members.map(loadKey));
    const live: C2sLoad[] = [];
    const gone: string[] = [];
    members.forEach((m, i) => {
      const v = values[i];
      if (v) live.push(JSON.parse(v) as C2sLoad);
      else gone.push(m);
    });
    if (gone.length > 0) await this.redis.srem(MEMBERS, ...gone);
    this.others = live.filter((l) => l.instance !== this.o.instance);
  }

  /** Where to send a new TCP client (host:port), or undefined to keep it. */
  redirectTarget(): string | undefined {
    return this.redirectPeer()?.address;
  }

  /** The c2s to send a new client to, among those `usable` for it (a WebSocket client needs one with a WebSocket URL). */
  redirectPeer(usable: (peer: C2sLoad) => boolean = () => true): C2sLoad | undefined {
    const others = this.others.filter(usable);
    if (others.length === 0) return undefined;
    const mine = this.o.connections();
    if (mine < this.o.minConnections) return undefined;
    const total = mine + others.reduce((n, l) => n + l.connections, 0);
    const fair = total / (others.length + 1);
    if (mine <= fair * (1 + this.o.margin) + REDIRECT_SLACK) return undefined;
    let best = others[0]!;
    for (const l of others) if (l.connections < best.connections) best = l;
    // Only to one clearly below the share: after the move it is still not above it.
    if (best.connections + 1 > fair * (1 - this.o.margin / 2)) return undefined;
    // Count the client there until the next refresh brings its real figure.
    // Otherwise, between two refreshes, every new client goes to the same
    // "least loaded" c2s, which, reading our equally old figure, sends them
    // straight back: a burst of clients bounced between the two.
    best.connections++;
    return best;
  }

  get peers(): readonly C2sLoad[] {
    return this.others;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.redis.del(loadKey(this.o.instance)).catch(() => {});
    await this.redis.srem(MEMBERS, this.o.instance).catch(() => {});
    this.redis.disconnect();
  }
}
