// rooms: group chat fan-out (XEP-0045). R rooms of M occupants each; every
// occupant logs in and enters its room (the first creates it and takes the
// default configuration, an instant room); in each room one sender keeps at
// most W groupchat messages outstanding (sent, not yet reflected back to it)
// for D seconds, then stops and drains. Every occupant, the sender included,
// gets each message: deliveries = messages x M. The body carries the send
// time, so each receiver measures latency on the generator's clock.
import { CpuMeter } from "../procstat.mjs";
import { now } from "../client.mjs";
import { Counter, Samples, r1, sleep } from "../stats.mjs";
import { attr, childText, errorCondition, escapeXml } from "../xml.mjs";
import { closeAll, loginMany, sendPresence, stamp, waitFor } from "./common.mjs";

const MUC = "http://jabber.org/protocol/muc";

export async function rooms(ctx) {
  const { o } = ctx;
  const R = o.rooms;
  const M = o.occupants;
  const W = o.window;
  const service = o.roomService || `conference.${o.domain}`;
  const run = Math.random().toString(36).slice(2, 8);
  const setup = await loginMany(ctx, R * M, { accountOf: ctx.account, concurrency: o.concurrency, keep: true, after: (c) => sendPresence(c) });
  const byIndex = new Map();
  setup.clients.forEach((c) => byIndex.set(c.o.user, c));
  const roomList = [];
  for (let r = 0; r < R; r++) {
    const members = [];
    for (let m = 0; m < M; m++) {
      const c = byIndex.get(ctx.account(r * M + m));
      if (c) members.push(c);
    }
    if (members.length > 0) roomList.push({ jid: `bench${run}r${r}@${service}`, members, outstanding: 0, seq: 0 });
  }
  const joinErrors = new Counter();
  // Enter: wait for the subject (the end of a join, XEP-0045 §7.2.15) or an error.
  const enter = (room, c, k) => new Promise((resolve) => {
    const nick = `o${k}`;
    let created = false;
    const timer = setTimeout(() => done("timeout"), 30_000);
    const done = (err) => {
      clearTimeout(timer);
      c.onStanza = () => {};
      if (err) joinErrors.add(err);
      resolve({ ok: !err, created });
    };
    c.onStanza = (el) => {
      const from = attr(el.head, "from") ?? "";
      if (!from.startsWith(room.jid)) return;
      if (el.name === "presence" && attr(el.head, "type") === "error") return done(`join: ${errorCondition(el.raw)}`);
      if (el.name === "presence" && (el.raw.includes("code='201'") || el.raw.includes('code="201"'))) created = true;
      if (el.name === "message" && el.raw.includes("<subject")) done();
    };
    c.send(`<presence to='${escapeXml(`${room.jid}/${nick}`)}'><x xmlns='${MUC}'><history maxstanzas='0'/></x></presence>`);
  });
  const t0 = now();
  await Promise.all(roomList.map(async (room) => {
    const [first, ...rest] = room.members;
    const r = await enter(room, first, 0);
    if (r.created) {
      // An instant room (XEP-0045 §10.1.2): the default configuration, unlocked.
      await first.iq("set", `<query xmlns='${MUC}#owner'><x xmlns='jabber:x:data' type='submit'/></query>`, room.jid).catch(() => joinErrors.add("instant room refused"));
    }
    await Promise.all(rest.map((c, i) => enter(room, c, i + 1)));
  }));
  const joinS = (now() - t0) / 1000;
  await sleep(o.settleMs);

  const latency = new Samples(1 << 16);
  const errors = new Counter();
  const dropReasons = new Counter();
  let sending = false;
  let sent = 0;
  let accepted = 0;
  let deliveries = 0;
  let deliveriesInWindow = 0;
  let tEnd = Infinity;
  const pad = o.bodyBytes > 0 ? " " + "x".repeat(o.bodyBytes) : "";
  const pump = (room) => {
    const s = room.members[0];
    if (!sending || s.closed) return;
    let text = "";
    while (room.outstanding < W) {
      room.seq++;
      room.outstanding++;
      sent++;
      text += `<message to='${room.jid}' type='groupchat' id='g${room.seq}'><body>${room.seq} ${stamp()}${pad}</body></message>`;
    }
    if (text) s.send(text);
  };
  for (const room of roomList) {
    room.members.forEach((c, k) => {
      c.onStanza = (el) => {
        if (el.name !== "message") return;
        if (attr(el.head, "type") === "error") {
          errors.add(errorCondition(el.raw));
          if (k === 0) {
            room.outstanding--;
            pump(room);
          }
          return;
        }
        const body = childText(el.raw, "body");
        if (body === undefined) return;
        const t = now();
        const ts = Number(body.split(" ")[1]);
        if (Number.isFinite(ts)) latency.add(t - ts);
        deliveries++;
        if (t <= tEnd) deliveriesInWindow++;
        if (k === 0) {
          accepted++;
          room.outstanding--;
          pump(room);
        }
      };
      c.onClose = (why) => dropReasons.add(why);
    });
  }
  const meter = new CpuMeter(ctx.procs).start();
  const start = now();
  tEnd = start + o.duration * 1000;
  sending = true;
  for (const room of roomList) pump(room);
  while (now() < tEnd && !ctx.expired()) await sleep(Math.min(200, Math.max(1, tEnd - now())));
  sending = false;
  const window = (now() - start) / 1000;
  const cpu = meter.stop();
  const drained = await waitFor(() => roomList.every((r) => r.outstanding <= 0 || r.members[0].closed), o.drain * 1000);
  // Everyone else gets what the sender got back; give the last fan-outs a moment to land.
  await waitFor(() => deliveries >= accepted * M, o.drain * 1000);
  await closeAll(setup.clients);
  return {
    scenario: "rooms",
    params: { rooms: R, occupants: M, window: W, duration_s: o.duration, drain_s: o.drain, service, body_pad_bytes: o.bodyBytes, mech: o.mech, tls: o.tls },
    rooms_joined: roomList.length,
    setup_failed: setup.failed,
    setup_errors: setup.errors,
    join_s: r1(joinS),
    join_errors: joinErrors.toJSON(),
    sending_window_s: r1(window),
    room_msgs_per_s: r1(accepted / window),
    deliveries_per_s: r1(deliveriesInWindow / window),
    sent,
    accepted,
    deliveries,
    missing_deliveries: accepted * M - deliveries,
    errors: errors.toJSON(),
    drained,
    dropped_connections: dropReasons.total,
    dropped_reasons: dropReasons.toJSON(),
    latency: latency.summary(),
    cpu,
  };
}
