// What the scenarios share: making clients, logging many in at a bounded
// concurrency, and the presence of a logged-in session.
import { LoginError, now } from "../client.mjs";
import { Counter, Samples, r1, r2 } from "../stats.mjs";

/**
 * @typedef {object} Ctx
 * @property {object} o                  parsed options
 * @property {{name: string, pid: number}[]} procs  server processes
 * @property {(i: number) => string} account   0-based index -> localpart (round-robin over --users)
 * @property {(user: string, extra?: object) => import("../client.mjs").XmppClient} client
 * @property {() => boolean} expired     true once the overall deadline has passed
 * @property {(msg: string) => void} log
 */

/** Timestamps in stanzas: ms on this process's monotonic clock, 3 decimals. */
export const stamp = () => now().toFixed(3);

/**
 * Logs in `n` sessions, at most `concurrency` at a time, account `accountOf(k)` for the k-th.
 * `after(client, k)` runs once a session is bound (send presence, fetch the roster...) and may
 * return a promise; `keep` decides whether the client stays open (else it is closed at once).
 * Stops starting new logins at `stopAt` (performance.now() ms) or the overall deadline.
 */
export async function loginMany(ctx, n, { accountOf, concurrency, keep = false, after, stopAt = Infinity, resource, onFail, closeText = "" }) {
  const latency = new Samples(Math.min(n, 1 << 16));
  const phases = { tcp: new Samples(), tls: new Samples(), sasl: new Samples(), bind: new Samples() };
  const errors = new Counter();
  const kept = new Array(keep ? n : 0);
  let next = 0;
  let ok = 0;
  let failed = 0;
  const t0 = now();
  const worker = async () => {
    while (next < n && now() < stopAt && !ctx.expired()) {
      const k = next++;
      const c = ctx.client(accountOf(k), resource ? { resource: resource(k) } : {});
      try {
        await c.login();
        const t = c.times;
        latency.add(t.bound - t.start);
        phases.tcp.add(t.tcp - t.start);
        if (t.tls) phases.tls.add(t.tls - t.tcp);
        phases.sasl.add(t.sasl - (t.tls || t.tcp));
        phases.bind.add(t.bound - t.sasl);
        if (after) await after(c, k);
        ok++;
        if (keep) kept[k] = c;
        else c.close(closeText);
      } catch (err) {
        failed++;
        errors.add(err instanceof LoginError ? err.kind : `error: ${err.message}`);
        onFail?.(err, k);
        c.destroy();
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, n)) }, worker));
  const wall = (now() - t0) / 1000;
  return {
    requested: n,
    ok,
    failed,
    not_started: n - next,
    wall_s: r2(wall),
    per_s: r1(ok / wall),
    latency: latency.summary(),
    phases_p50_ms: Object.fromEntries(Object.entries(phases).filter(([, s]) => s.n > 0).map(([k, s]) => [k, s.summary().p50_ms])),
    errors: errors.toJSON(),
    clients: keep ? kept.filter(Boolean) : [],
  };
}

/** Waits until `cond()` or `ms` pass (polling every `step` ms). True if the condition held. */
export async function waitFor(cond, ms, step = 20) {
  const end = now() + ms;
  while (!cond()) {
    if (now() >= end) return false;
    await new Promise((r) => setTimeout(r, step));
  }
  return true;
}

/** Sends initial presence (with an optional status text). */
export function sendPresence(c, status) {
  c.send(status === undefined ? "<presence/>" : `<presence><status>${status}</status></presence>`);
}

/** Roster get; resolves with the number of items by subscription. */
export async function getRoster(c, timeoutMs = 10_000) {
  let timer;
  const el = await Promise.race([
    c.iq("get", "<query xmlns='jabber:iq:roster'/>"),
    new Promise((_, reject) => { timer = setTimeout(() => reject(new Error("roster get timed out")), timeoutMs); }),
  ]).finally(() => clearTimeout(timer));
  if (!el.head.includes("'result'") && !el.head.includes('"result"')) throw new Error("roster get: error reply");
  return el;
}

/** Closes every client (gracefully), in slices so that thousands of closes do not stall the loop. */
export async function closeAll(clients, finalText = "") {
  for (let i = 0; i < clients.length; i++) {
    clients[i].close(finalText);
    if (i % 500 === 499) await new Promise((r) => setImmediate(r));
  }
}
