// login: N logins at concurrency C; each is connect -> (STARTTLS) -> SASL ->
// stream restart -> bind (-> session iq if required), then the client ends
// the stream and its slot starts the next login at once.
import { CpuMeter } from "../procstat.mjs";
import { now } from "../client.mjs";
import { loginMany } from "./common.mjs";

export async function login(ctx) {
  const { o } = ctx;
  const meter = new CpuMeter(ctx.procs).start();
  const r = await loginMany(ctx, o.logins, {
    accountOf: ctx.account,
    concurrency: o.concurrency,
    stopAt: now() + o.scenarioTimeLimit * 1000,
  });
  const cpu = meter.stop();
  return {
    scenario: "login",
    params: { logins: o.logins, concurrency: o.concurrency, accounts: o.users, mech: o.mech, tls: o.tls },
    logins_ok: r.ok,
    logins_failed: r.failed,
    logins_not_started: r.not_started,
    wall_s: r.wall_s,
    logins_per_s: r.per_s,
    latency: r.latency,
    phases_p50_ms: r.phases_p50_ms,
    errors: r.errors,
    cpu,
  };
}
