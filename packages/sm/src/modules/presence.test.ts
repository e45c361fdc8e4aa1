import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { parseElement, stanzaErrorCondition, type Element } from "@jabberfarm/xml";
import type { Subscription } from "@jabberfarm/xdb";
import { startSmFarm, type SmTestFarm } from "../testing.js";
import { readPriority } from "./presence.js";

const isPresence = (type: string | undefined, from: string) => (e: Element): boolean =>
  e.name === "presence" && e.attrs.type === type && e.attrs.from === from;
const fromUser = (bare: string) => (e: Element): boolean =>
  e.name === "presence" && (e.attrs.from === bare || (e.attrs.from ?? "").startsWith(`${bare}/`));

describe("presence module", () => {
  let farm: SmTestFarm;
  before(async () => {
    farm = await startSmFarm({ modules: ["roster", "subscription", "presence"] });
  });
  after(async () => farm.stop());

  /** Sets both sides' roster items directly in storage: `ab` is a's item for b. */
  async function relate(a: string, b: string, ab: Subscription, ba: Subscription): Promise<void> {
    await farm.storage.setRosterItem(a, { jid: b, subscription: ab, groups: [] });
    await farm.storage.setRosterItem(b, { jid: a, subscription: ba, groups: [] });
  }

  test("readPriority accepts -128..127 and nothing else", () => {
    const p = (x: string) => readPriority(parseElement(`<presence>${x}</presence>`, "jabber:client"));
    assert.equal(p(""), 0);
    assert.equal(p("<priority>5</priority>"), 5);
    assert.equal(p("<priority> -128 </priority>"), -128);
    assert.equal(p("<priority>127</priority>"), 127);
    assert.equal(p("<priority>+3</priority>"), 3);
    for (const bad of ["128", "-129", "abc", "1.5", "", "99999"]) assert.equal(p(`<priority>${bad}</priority>`), null, bad);
  });

  test("presence goes to subscribers (from/both) and the user's resources, and probes fetch the contacts' presence", async () => {
    const u = await farm.addUser("bcu");
    const both = await farm.addUser("bcboth");
    const to = await farm.addUser("bcto"); // u receives to's presence, not the other way round
    const from = await farm.addUser("bcfrom"); // from receives u's presence, u does not receive from's
    const stranger = await farm.addUser("bcstranger");
    await relate(u, both, "both", "both");
    await relate(u, to, "to", "from");
    await relate(u, from, "from", "to");
    const bs = await farm.driver.online(`${both}/pc`);
    const ts = await farm.driver.online(`${to}/pc`);
    const fs = await farm.driver.online(`${from}/pc`);
    const ss = await farm.driver.online(`${stranger}/pc`);

    const us = await farm.driver.online(`${u}/pc`, "<presence><show>away</show></presence>");
    for (const s of [bs, fs]) {
      const got = await s.next(isPresence(undefined, us.full));
      assert.equal(got.attrs.to, s.bare);
      assert.equal(got.getChildText("show"), "away");
    }
    const echo = await us.next(isPresence(undefined, us.full));
    assert.equal(echo.attrs.to, us.full);
    // Probes at login: both and to answer, from and the stranger do not.
    await us.next(isPresence(undefined, bs.full));
    await us.next(isPresence(undefined, ts.full));
    await us.nothing(fromUser(from), 200);
    await us.nothing(fromUser(stranger), 0);
    await ts.nothing(fromUser(u), 0);
    await ss.nothing(fromUser(u), 0);

    // A later presence is broadcast the same way (and probes nobody).
    us.send("<presence><status>later</status></presence>");
    for (const s of [bs, fs, us]) {
      const got = await s.next(isPresence(undefined, us.full));
      assert.equal(got.getChildText("status"), "later");
    }
    await us.nothing(fromUser(both), 200);
    await ts.nothing(fromUser(u), 0);
    await ss.nothing(fromUser(u), 0);
    for (const s of [us, bs, ts, fs, ss]) s.end();
  });

  test("a contact online before the user logs in, and the user's other resources, see presence both ways", async () => {
    const u = await farm.addUser("probeu");
    const c = await farm.addUser("probec");
    await relate(u, c, "both", "both");
    const c1 = await farm.driver.online(`${c}/one`, "<presence><priority>3</priority></presence>");
    const c2 = await farm.driver.online(`${c}/two`);
    await c2.next(isPresence(undefined, c1.full)); // a new resource sees the earlier one

    const u1 = await farm.driver.online(`${u}/a`);
    const got = await u1.next(isPresence(undefined, c1.full));
    assert.equal(got.getChildText("priority"), "3");
    await u1.next(isPresence(undefined, c2.full));
    await c1.next(isPresence(undefined, u1.full));
    await c2.next(isPresence(undefined, u1.full));

    const u2 = await farm.driver.online(`${u}/b`);
    await u2.next(isPresence(undefined, u1.full));
    await u1.next(isPresence(undefined, u2.full));
    await u2.next(isPresence(undefined, c1.full));
    await c1.next(isPresence(undefined, u2.full));
    for (const s of [u1, u2, c1, c2]) s.end();
  });

  test("a session that ends without unavailable presence is announced unavailable to subscribers and the other resources", async () => {
    const u = await farm.addUser("endu");
    const c = await farm.addUser("endc");
    await relate(u, c, "both", "both");
    const cs = await farm.driver.online(`${c}/pc`);
    const u1 = await farm.driver.online(`${u}/a`);
    const u2 = await farm.driver.online(`${u}/b`);
    await cs.next(isPresence(undefined, u1.full));
    await cs.next(isPresence(undefined, u2.full));

    u1.end();
    await cs.next(isPresence("unavailable", u1.full));
    const own = await u2.next(isPresence("unavailable", u1.full));
    assert.equal(own.attrs.to, u2.full);
    assert.equal(farm.sm.sm.sessions.available(u).length, 1);

    // A session that never became available announces nothing.
    const u3 = await farm.driver.open(`${u}/silent`);
    u3.end();
    await cs.nothing(fromUser(u), 300);
    u2.end();
    await cs.next(isPresence("unavailable", u2.full));
    cs.end();
  });

  test("an unavailable presence is broadcast once; the end that follows sends nothing; the next presence is initial again", async () => {
    const u = await farm.addUser("unavu");
    const c = await farm.addUser("unavc");
    await relate(u, c, "both", "both");
    const cs = await farm.driver.online(`${c}/pc`);
    const us = await farm.driver.online(`${u}/pc`);
    await cs.next(isPresence(undefined, us.full));
    await us.next(isPresence(undefined, cs.full));

    us.send("<presence type='unavailable'><status>bye</status></presence>");
    const gone = await cs.next(isPresence("unavailable", us.full));
    assert.equal(gone.getChildText("status"), "bye");
    await us.next(isPresence("unavailable", us.full));
    assert.equal(farm.sm.sm.sessions.available(u).length, 0);

    // Back again: a new initial presence, so the contact is probed again.
    us.send("<presence/>");
    await cs.next(isPresence(undefined, us.full));
    await us.next(isPresence(undefined, cs.full));
    us.send("<presence type='unavailable'/>");
    await cs.next(isPresence("unavailable", us.full));
    us.end();
    await cs.nothing(fromUser(u), 300);
    cs.end();
  });

  test("directed presence reaches a non-contact's full JID, who gets an unavailable at the end; a directed unavailable ends that", async () => {
    const u = await farm.addUser("diru");
    const x = await farm.addUser("dirx");
    const y = await farm.addUser("diry");
    const c = await farm.addUser("dirc");
    await relate(u, c, "both", "both");
    const xs = await farm.driver.online(`${x}/pc`);
    const ys = await farm.driver.online(`${y}/pc`);
    const cs = await farm.driver.online(`${c}/pc`);
    const us = await farm.driver.online(`${u}/pc`);
    await cs.next(isPresence(undefined, us.full));

    us.send(`<presence to='${xs.full}'><show>chat</show></presence>`);
    const got = await xs.next(isPresence(undefined, us.full));
    assert.equal(got.attrs.to, xs.full);
    assert.equal(got.getChildText("show"), "chat");
    us.send(`<presence to='${ys.full}'/>`);
    await ys.next(isPresence(undefined, us.full));
    us.send(`<presence type='unavailable' to='${ys.full}'/>`);
    await ys.next(isPresence("unavailable", us.full));
    await cs.nothing(fromUser(u), 200); // directed presence is not broadcast

    us.end();
    await xs.next(isPresence("unavailable", us.full));
    await cs.next(isPresence("unavailable", us.full));
    await ys.nothing(fromUser(u), 300);
    for (const s of [xs, ys, cs]) s.end();
  });

  test("presence to the bare JID is delivered only from contacts the user is subscribed to (and errors from anyone)", async () => {
    const u = await farm.addUser("inu");
    const t = await farm.addUser("int");
    const f = await farm.addUser("inf");
    const s = await farm.addUser("ins");
    await relate(u, t, "to", "from");
    await relate(u, f, "from", "to");
    const ts = await farm.driver.online(`${t}/pc`);
    const fs = await farm.driver.online(`${f}/pc`);
    const ss = await farm.driver.online(`${s}/pc`);
    const us = await farm.driver.online(`${u}/pc`);
    await us.next(isPresence(undefined, ts.full)); // probe answer
    await fs.next(isPresence(undefined, us.full));

    ss.send(`<presence to='${u}'><status>spam</status></presence>`);
    fs.send(`<presence to='${u}'><status>not subscribed to f</status></presence>`);
    ts.send(`<presence to='${u}'><status>hello</status></presence>`);
    const ok = await us.next((e) => e.getChildText("status") === "hello");
    assert.equal(ok.attrs.from, ts.full);
    await us.nothing((e) => e.attrs.from === ss.full || e.attrs.from === fs.full, 200);

    // To the full JID, directed presence arrives from anyone.
    ss.send(`<presence to='${us.full}'><status>direct</status></presence>`);
    await us.next((e) => e.getChildText("status") === "direct" && e.attrs.from === ss.full);
    // And so do presence errors.
    ss.send(`<presence type='error' to='${u}'><error type='cancel'><remote-server-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>`);
    await us.next(isPresence("error", ss.full));
    for (const x of [us, ts, fs, ss]) x.end();
  });

  test("probes are answered for subscribers only, to the prober's JID", async () => {
    const u = await farm.addUser("pru");
    const c = await farm.addUser("prc");
    const s = await farm.addUser("prs");
    await relate(u, c, "from", "to");
    const us = await farm.driver.online(`${u}/pc`, "<presence><show>dnd</show></presence>");
    const cs = await farm.driver.online(`${c}/pc`);
    const ss = await farm.driver.online(`${s}/pc`);
    await cs.next(isPresence(undefined, us.full)); // the login probe
    cs.send(`<presence type='probe' to='${u}'/>`);
    const answer = await cs.next(isPresence(undefined, us.full));
    assert.equal(answer.attrs.to, cs.full);
    assert.equal(answer.getChildText("show"), "dnd");
    ss.send(`<presence type='probe' to='${u}'/>`);
    await ss.nothing(fromUser(u), 300);
    for (const x of [us, cs, ss]) x.end();
  });

  test("a priority out of range is rejected and the session stays unavailable", async () => {
    const u = await farm.addUser("priou");
    const us = await farm.driver.open(`${u}/pc`);
    for (const bad of ["128", "-129", "high"]) {
      us.send(`<presence id='p${bad}'><priority>${bad}</priority></presence>`);
      const err = await us.next((e) => e.attrs.id === `p${bad}`);
      assert.equal(err.attrs.type, "error");
      assert.equal(stanzaErrorCondition(err), "bad-request");
    }
    const session = farm.sm.sm.sessions.byFullJid(u, "pc")!;
    assert.equal(session.available, false);
    us.send("<presence><priority>-128</priority></presence>");
    await us.next(isPresence(undefined, us.full));
    assert.equal(session.available, true);
    assert.equal(session.priority, -128);
    us.send("<presence><priority>127</priority></presence>");
    await us.next(isPresence(undefined, us.full));
    assert.equal(session.priority, 127);
    us.end();
  });

  test("presence to an account that does not exist, or to an offline resource, is dropped silently", async () => {
    const u = await farm.addUser("ghostu");
    const off = await farm.addUser("ghostoff");
    const us = await farm.driver.online(`${u}/pc`);
    us.send("<presence to='nobody@localhost'/>");
    us.send(`<presence to='${off}/gone'/>`);
    us.send(`<presence type='probe' to='${off}'/>`);
    await us.nothing((e) => e.attrs.type === "error", 300);
    us.end();
  });
});
