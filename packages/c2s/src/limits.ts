/**
 * Building blocks of the c2s limits: token buckets (a client's byte rate,
 * the process's PBKDF2 budget) and sliding windows of recent events per key
 * (registrations per address, failed authentications in bans.ts), kept in
 * memory and bounded in size.
 */

/** Tokens are bytes; `take` returns false once the client has spent more than the burst plus what the rate refilled. */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(readonly ratePerSecond: number, readonly burst: number, now: number = Date.now()) {
    this.tokens = burst;
    this.last = now;
  }

  take(n: number, now: number = Date.now()): boolean {
    const elapsed = now - this.last;
    if (elapsed > 0) {
      this.tokens = Math.min(this.burst, this.tokens + (elapsed * this.ratePerSecond) / 1000);
      this.last = now;
    }
    this.tokens -= n;
    return this.tokens >= 0;
  }

  /** Takes `n` only when they are there: a refusal costs nothing, so a flood cannot drive the bucket into debt. */
  tryTake(n: number, now: number = Date.now()): boolean {
    this.take(0, now);
    if (this.tokens < n) return false;
    this.tokens -= n;
    return true;
  }

  get available(): number {
    return this.tokens;
  }
}

export interface SlidingWindowOptions {
  windowMs: number;
  /** Timestamps kept per key; counting past it changes nothing for the callers. */
  maxPerKey?: number;
  /** Keys kept at once; the least recently touched go first. */
  maxKeys?: number;
}

/** Counts events per key (an IP address) over the last `windowMs`. */
export class SlidingWindow {
  private readonly windowMs: number;
  private readonly maxPerKey: number;
  private readonly maxKeys: number;
  private readonly events = new Map<string, number[]>();

  constructor(opts: SlidingWindowOptions) {
    this.windowMs = opts.windowMs;
    this.maxPerKey = opts.maxPerKey ?? 32;
    this.maxKeys = opts.maxKeys ?? 100_000;
  }

  count(key: string, now: number = Date.now()): number {
    const list = this.events.get(key);
    if (!list) return 0;
    this.trim(key, list, now);
    return list.length;
  }

  /** Records one event; returns how many are in the window, this one included. */
  add(key: string, now: number = Date.now()): number {
    let list = this.events.get(key);
    if (list) {
      // Re-inserting keeps the Map in least-recently-touched order for eviction.
      this.events.delete(key);
      this.trim(key, list, now);
    } else {
      list = [];
      if (this.events.size >= this.maxKeys) {
        const oldest = this.events.keys().next();
        if (!oldest.done) this.events.delete(oldest.value);
      }
    }
    list.push(now);
    if (list.length > this.maxPerKey) list.splice(0, list.length - this.maxPerKey);
    this.events.set(key, list);
    return list.length;
  }

  /** Forgets the events of `key`. */
  forget(key: string): void {
    this.events.delete(key);
  }

  /** Forgets keys whose events have all left the window. */
  sweep(now: number = Date.now()): void {
    for (const [key, list] of this.events) this.trim(key, list, now);
  }

  get size(): number {
    return this.events.size;
  }

  private trim(key: string, list: number[], now: number): void {
    const from = now - this.windowMs;
    let i = 0;
    while (i < list.length && list[i]! <= from) i++;
    if (i > 0) list.splice(0, i);
    if (list.length === 0) this.events.delete(key);
  }
}
