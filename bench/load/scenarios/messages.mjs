// messages: P pairs of online sessions; each sender keeps at most W chat
// messages outstanding (sent, not yet received) to its partner's full JID
// (or bare JID with --bare) for D seconds, then stops and drains. The body
// carries a sequence number and the send time, so the receiver measures the
// end-to-end latency on the same clock.
import { CpuMeter } from "../procstat.mjs";
import { now } from "../client.mjs";
import { Counter, Samples, r1, sleep } from "../stats.mjs";
import { attr, childText, errorCondition, escapeXml } from "../xml.mjs";
import { closeAll, loginMany, sendPresence, stamp, waitFor } from "./common.mjs";

export async function messages(ctx) {
  const { o } = ctx;
  const P = o.pairs;
  const W = o.window;
  const setup = await loginMany(ctx, 2 * P, {
    accountOf: ctx.account,
    concurrency: o.concurrency,
    keep: true,
    after: (c) => sendPresence(c),
  });
  // Clients are kept by index: 2k sends to 2k+1 (user1 -> user2, user3 -> user4, ...).
  const byIndex = new Map();
  setup.clients.forEach((c) => byIndex.set(c.o.user, c));
  const pairs = [];
  for (let k = 0; k < P; k++) {
    const s = byIndex.get(ctx.account(2 * k));
    const r = byIndex.get(ctx.account(2 * k + 1));
    if (s && r) pairs.push({ s, r, to: escapeXml(o.bare ? r.bare : r.jid), outstanding: 0, seq: 0 });
  }
  await sleep(o.settleMs); // initial presence settles before the clock starts

  const latency = new Samples(1 << 16);
  const errors = new Counter();
  const dropReasons = new Counter();
  let sending = false;
  let sent = 0;
  let received = 0;
  let receivedInWindow = 0;
  let errorReplies = 0;
  let tEnd = Infinity;
  const pad = o.bodyBytes > 0 ? " " + "x".repeat(o.bodyBytes) : "";

  const pump = (p) => {
    if (!sending || p.s.closed) return;
    let text = "";
    while (p.outstanding < W) {
      p.seq++;
      p.outstanding++;
      sent++;
      text += `<message to='${p.to}' type='chat' id='m${p.seq}'><body>${p.seq} ${stamp()}${pad}</body></message>`;
    }
    if (text) p.s.send(text);
  };

  for (const p of pairs) {
    p.r.onStanza = (el) => {
      if (el.name !== "message") return;
      const t = now();
      const body = childText(el.raw, "body");
      if (body === undefined) return;
      const rest = body.slice(body.indexOf(" ") + 1);
      const sp = rest.indexOf(" ");
      const ts = Number(sp < 0 ? rest : rest.slice(0, sp));
      if (Number.isFinite(ts)) latency.add(t - ts);
      received++;
      if (t <= tEnd) receivedInWindow++;
      p.outstanding--;
      pump(p);
    };
    p.s.onStanza = (el) => {
      if (el.name !== "message" || attr(el.head, "type") !== "error") return;
      errorReplies++;
      errors.add(errorCondition(el.raw));
      p.outstanding--;
      pump(p);
    };
    p.s.onClose = (why) => dropReasons.add(`sender: ${why}`);
    p.r.onClose = (why) => dropReasons.add(`receiver: ${why}`);
  }

  const meter = new CpuMeter(ctx.procs).start();
  const t0 = now();
  tEnd = t0 + o.duration * 1000;
  sending = true;
  for (const p of pairs) pump(p);
  while (now() < tEnd && !ctx.expired()) await sleep(Math.min(200, Math.max(1, tEnd - now())));
  sending = false;
  const window = (now() - t0) / 1000;
  const cpu = meter.stop();
  const drained = await waitFor(() => pairs.every((p) => p.outstanding <= 0 || p.s.closed || p.r.closed), o.drain * 1000);
  await closeAll(setup.clients);
  return {
    scenario: "messages",
    params: { pairs: P, window: W, duration_s: o.duration, drain_s: o.drain, to: o.bare ? "bare" : "full", body_pad_bytes: o.bodyBytes, mech: o.mech, tls: o.tls },
    pairs_online: pairs.length,
    setup_failed: setup.failed,
    setup_errors: setup.errors,
    sending_window_s: r1(window),
    msgs_per_s: r1(receivedInWindow / window),
    sent,
    received,
    received_in_window: receivedInWindow,
    lost: sent - received,
    error_replies: errorReplies,
    errors: errors.toJSON(),
    drained,
    dropped_connections: dropReasons.total,
    dropped_reasons: dropReasons.toJSON(),
    latency: latency.summary(),
    cpu,
  };
}
