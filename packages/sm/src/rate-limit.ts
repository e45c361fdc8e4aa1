/**
 * A sliding-window rate limit per key (a sender's bare JID, a user):
 * at most `count` events in any `seconds`-long window, approximated the
 * usual way from two fixed windows (the previous one weighted by how much of
 * it the sliding window still covers). Three numbers per key; keys idle for
 * two windows are forgotten as the map is swept.
 */
export class SlidingWindowLimit {
  private readonly windows = new Map<string, { start: number; current: number; previous: number }>();
  private readonly ms: number;
  private lastSweep = 0;

  constructor(readonly count: number, seconds: number, private readonly now: () => number = Date.now) {
    this.ms = seconds * 1000;
  }

  /** Counts an event for `key`; false (and not counted) when it would exceed the rate. */
  take(key: string): boolean {
    const t = this.now();
    this.sweep(t);
    let w = this.windows.get(key);
    const start = t - (t % this.ms);
    if (!w) {
      w = { start, current: 0, previous: 0 };
      this.windows.set(key, w);
    } else if (w.start !== start) {
      w.previous = w.start === start - this.ms ? w.current : 0;
      w.current = 0;
      w.start = start;
    }
    const covered = 1 - (t - start) / this.ms;
    if (w.previous * covered + w.current + 1 > this.count) return false;
    w.current++;
    return true;
  }

  get size(): number {
    return this.windows.size;
  }

  private sweep(t: number): void {
    if (t - this.lastSweep < this.ms) return;
    this.lastSweep = t;
    for (const [key, w] of this.windows) if (t - w.start >= 2 * this.ms) this.windows.delete(key);
  }
}
