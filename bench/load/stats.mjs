// Latency samples (ms) in a growable typed array; percentiles at the end.
export class Samples {
  constructor(initial = 4096) {
    this.a = new Float64Array(initial);
    this.n = 0;
  }

  add(ms) {
    if (this.n === this.a.length) {
      const b = new Float64Array(this.a.length * 2);
      b.set(this.a);
      this.a = b;
    }
    this.a[this.n++] = ms;
  }

  summary() {
    const n = this.n;
    if (n === 0) return { n: 0, p50_ms: null, p90_ms: null, p99_ms: null, max_ms: null, mean_ms: null };
    const s = this.a.slice(0, n).sort();
    const q = (p) => s[Math.min(n - 1, Math.max(0, Math.ceil((p / 100) * n) - 1))];
    let sum = 0;
    for (let i = 0; i < n; i++) sum += s[i];
    return { n, p50_ms: r2(q(50)), p90_ms: r2(q(90)), p99_ms: r2(q(99)), max_ms: r2(s[n - 1]), mean_ms: r2(sum / n) };
  }
}

export const r1 = (x) => (Number.isFinite(x) ? Math.round(x * 10) / 10 : null);
export const r2 = (x) => (Number.isFinite(x) ? Math.round(x * 100) / 100 : null);

/** Counts occurrences of short strings (failure kinds, error conditions). */
export class Counter {
  constructor() {
    this.m = new Map();
  }

  add(key, n = 1) {
    this.m.set(key, (this.m.get(key) ?? 0) + n);
  }

  get total() {
    let t = 0;
    for (const v of this.m.values()) t += v;
    return t;
  }

  toJSON() {
    return Object.fromEntries([...this.m.entries()].sort((a, b) => b[1] - a[1]));
  }
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
