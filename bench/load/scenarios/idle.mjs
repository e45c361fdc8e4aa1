// idle: K sessions logged in (with initial presence), held H seconds; the
// server's RSS (sum of VmRSS over --pids) before the ramp and at the end of
// the hold gives bytes per idle session.
import { CpuMeter, rssSnapshot } from "../procstat.mjs";
import { now } from "../client.mjs";
import { r1, sleep } from "../stats.mjs";
import { closeAll, loginMany, sendPresence } from "./common.mjs";

export async function idle(ctx) {
  const { o } = ctx;
  await sleep(o.settleMs);
  const before = rssSnapshot(ctx.procs);
  const genBefore = process.memoryUsage().rss;
  const rampMeter = new CpuMeter(ctx.procs).start();
  let dropped = 0;
  const dropReasons = {};
  const ramp = await loginMany(ctx, o.idle, {
    accountOf: ctx.account,
    concurrency: o.concurrency,
    keep: true,
    stopAt: now() + o.scenarioTimeLimit * 1000,
    after: (c) => {
      if (o.idlePresence) sendPresence(c);
      c.onClose = (why) => {
        dropped++;
        dropReasons[why] = (dropReasons[why] ?? 0) + 1;
      };
    },
  });
  const cpuRamp = rampMeter.stop();
  const held = ramp.clients;
  ctx.log(`idle: ${held.length} sessions up, holding ${o.hold} s`);
  const holdMeter = new CpuMeter(ctx.procs).start();
  const droppedBeforeHold = dropped;
  const holdEnd = now() + o.hold * 1000;
  while (now() < holdEnd && !ctx.expired()) await sleep(Math.min(250, Math.max(1, holdEnd - now())));
  const after = rssSnapshot(ctx.procs);
  const genAfter = process.memoryUsage().rss;
  const cpuHold = holdMeter.stop();
  const connected = held.filter((c) => !c.closed).length;
  await closeAll(held);
  await sleep(1000);
  const afterClose = rssSnapshot(ctx.procs);
  const perProcess = {};
  for (const [k, v] of Object.entries(after.by_process_kb)) {
    const b = before.by_process_kb[k] ?? 0;
    perProcess[k] = {
      rss_before_kb: b,
      rss_held_kb: v,
      rss_after_close_kb: afterClose.by_process_kb[k] ?? null,
      bytes_per_session: connected ? Math.round(((v - b) * 1024) / connected) : null,
    };
  }
  return {
    scenario: "idle",
    params: { sessions: o.idle, concurrency: o.concurrency, hold_s: o.hold, presence: o.idlePresence, mech: o.mech, tls: o.tls },
    sessions_ok: ramp.ok,
    sessions_failed: ramp.failed,
    connected_at_end_of_hold: connected,
    dropped_during_hold: dropped - droppedBeforeHold,
    dropped_reasons: dropReasons,
    ramp_logins_per_s: ramp.per_s,
    ramp_latency: ramp.latency,
    errors: ramp.errors,
    server_rss_before_kb: before.total_kb,
    server_rss_held_kb: after.total_kb,
    server_rss_after_close_kb: afterClose.total_kb,
    server_bytes_per_session: connected ? Math.round(((after.total_kb - before.total_kb) * 1024) / connected) : null,
    server_rss_by_process: perProcess,
    generator_bytes_per_session: connected ? Math.round((genAfter - genBefore) / connected) : null,
    generator_rss_mb: r1(genAfter / 1048576),
    cpu_ramp: cpuRamp,
    cpu_hold: cpuHold,
  };
}
