/**
 * The SM's half of stream management (XEP-0198) and client state (XEP-0352),
 * driven as a c2s drives it: `<session/>` envelopes, routes to sessions.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { ENVELOPE_NS, readSession, sessionEnvelope, type SessionEnvelope } from "@jabberfarm/envelope";
import type { Element } from "@jabberfarm/xml";
import { startSmFarm, type SmTestFarm, type TestSession } from "../testing.js";
import { eventually } from "./module-testing.js";

const isMessage = (id: string) => (e: Element): boolean => e.name === "message" && e.attrs.id === id;

describe("stream management and client state, the SM's half", () => {
  let farm: SmTestFarm;
  /** Session envelopes the SM sent the driver's c2s. */
  const controls: SessionEnvelope[] = [];
  before(async () => {
    farm = await startSmFarm({ streamManagement: { resumeTimeoutSeconds: 2 } });
    farm.driver.component.on("stanza", (el) => {
      if (el.local === "session" && el.ns === ENVELOPE_NS) controls.push(readSession(el));
    });
  });
  after(async () => farm.stop());

  const control = (s: TestSession, e: Partial<SessionEnvelope> & { type: SessionEnvelope["type"] }): void => {
    farm.driver.component.send(sessionEnvelope({ from: farm.driver.address, to: s.bare, sid: s.sid, ...e }));
  };
  const answer = async (pred: (e: SessionEnvelope) => boolean): Promise<SessionEnvelope> => {
    await eventually(() => controls.some(pred), 3000, "an answer from the SM");
    return controls.splice(controls.findIndex(pred), 1)[0]!;
  };

  async function enabled(s: TestSession): Promise<SessionEnvelope> {
    control(s, { type: "sm-enable", id: "e1", resume: "true" });
    return answer((e) => e.type === "sm-enabled" && e.sid === s.sid);
  }

  test("the stream features include sm and csi", async () => {
    const features = farm.sm.sm.streamFeatures().map((f) => `${f.name} ${f.attrs.xmlns}`);
    assert.ok(features.includes("sm urn:xmpp:sm:3"));
    assert.ok(features.includes("csi urn:xmpp:csi:0"));
  });

  test("enabled with a resumption id that names the user; a second enable is refused", async () => {
    const u = await farm.addUser("smen");
    const s = await farm.driver.online(`${u}/a`);
    const e = await enabled(s);
    assert.ok(e.previd);
    assert.equal(Buffer.from(e.previd.split(".")[0]!, "base64url").toString(), u);
    assert.equal(e.max, "2");
    control(s, { type: "sm-enable", id: "e2", resume: "true" });
    assert.equal((await answer((x) => x.type === "error" && x.sid === s.sid)).condition, "unexpected-request");
    s.end();
  });

  test("a detached session holds what comes for it, and gives it all back on resumption at another c2s", async () => {
    const u = await farm.addUser("smres");
    const peer = await farm.addUser("smpeer");
    const s = await farm.driver.online(`${u}/phone`);
    const p = await farm.driver.online(`${peer}/pc`);
    const e = await enabled(s);
    p.send(`<message to='${u}/phone' id='m1' type='chat'><body>one</body></message>`);
    await s.next(isMessage("m1"));
    // The client acknowledged nothing; its connection drops.
    control(s, { type: "detach", reason: "socket" });
    await eventually(() => farm.sm.sm.sessions.get(s.sid)?.data.has("sm") === true, 3000, "the session kept");
    p.send(`<message to='${u}/phone' id='m2' type='chat'><body>two</body></message>`);
    p.send(`<message to='${u}' id='m3' type='chat'><body>three</body></message>`);
    await s.nothing(isMessage("m2"), 200);
    assert.equal(await farm.storage.storeRead({ kind: "archive.count", user: u, store: "offline" }).then((r) => ("count" in r ? r.count : -1)), 0, "held, not stored offline");
    assert.equal(farm.sm.sm.sessions.get(s.sid)?.available, true, "contacts still see it");

    // The client resumes, on "another c2s" (a new session id), having handled m1 (h=1).
    const resumedSid = `${s.sid}-again`;
    // Listening before asking: what was held follows the answer at once.
    const again = farm.driver.attach(resumedSid, s.jid);
    farm.driver.component.send(sessionEnvelope({ type: "resume", id: "r1", from: farm.driver.address, to: u, sid: resumedSid, previd: e.previd, h: "1" }));
    const r = await answer((x) => x.type === "resumed" && x.sid === resumedSid);
    assert.equal(r.jid, `${u}/phone`);
    assert.equal(r.h, "0", "the client sent nothing since it enabled stream management");
    await again.next(isMessage("m2"));
    await again.next(isMessage("m3"));
    await again.nothing(isMessage("m1"), 100);
    again.end();
    p.end();
  });

  test("a wrong or another user's resumption id, or an h above what was sent, is refused", async () => {
    const u = await farm.addUser("smbad");
    const other = await farm.addUser("smother");
    const s = await farm.driver.online(`${u}/x`);
    const e = await enabled(s);
    const resume = (to: string, previd: string, h: string, sid: string): void => {
      farm.driver.component.send(sessionEnvelope({ type: "resume", id: sid, from: farm.driver.address, to, sid, previd, h }));
    };
    resume(u, e.previd!.slice(0, -2) + "xx", "0", "bad1");
    assert.equal((await answer((x) => x.sid === "bad1")).condition, "item-not-found");
    resume(other, e.previd!, "0", "bad2");
    assert.equal((await answer((x) => x.sid === "bad2")).condition, "item-not-found");
    resume(u, e.previd!, "7", "bad3");
    const high = await answer((x) => x.sid === "bad3");
    assert.equal(high.condition, "handled-count-too-high");
    assert.equal(high.h, "0");
    assert.ok(farm.sm.sm.sessions.get(s.sid), "the session is untouched");
    s.end();
  });

  test("not resumed in time: the session ends and what it held goes to offline storage", async () => {
    const u = await farm.addUser("smgone");
    const peer = await farm.addUser("smgp");
    const s = await farm.driver.online(`${u}/m`);
    const p = await farm.driver.online(`${peer}/pc`);
    await enabled(s);
    control(s, { type: "detach" });
    await eventually(() => farm.sm.sm.sessions.get(s.sid)?.data.has("sm") === true, 3000, "the session kept");
    p.send(`<message to='${u}/m' id='held' type='chat'><body>later</body></message>`);
    await eventually(() => farm.sm.sm.sessions.of(u).length === 0, 6000, "the session to end after 2 s");
    await eventually(async () => {
      const r = await farm.storage.storeRead({ kind: "archive.count", user: u, store: "offline" });
      return "count" in r && r.count === 1;
    }, 3000, "the held message in offline storage");
    const back = await farm.driver.online(`${u}/m2`);
    await back.next(isMessage("held"));
    back.end();
    p.end();
  });

  test("inactive: presence waits (the latest per sender), a message with a body does not; active sends what waited", async () => {
    const u = await farm.addUser("csiu");
    const c = await farm.addUser("csic");
    await farm.storage.setRosterItem(u, { jid: c, subscription: "both", groups: [] });
    await farm.storage.setRosterItem(c, { jid: u, subscription: "both", groups: [] });
    const s = await farm.driver.online(`${u}/phone`);
    const cs = await farm.driver.online(`${c}/pc`);
    await s.next((e) => e.name === "presence" && e.attrs.from === cs.full);
    control(s, { type: "csi", state: "inactive" });
    await eventually(() => (farm.sm.sm.sessions.get(s.sid)?.data.get("csi") as { inactive?: boolean } | undefined)?.inactive === true, 3000, "inactive");
    cs.send("<presence><show>away</show></presence>");
    cs.send("<presence><show>dnd</show></presence>");
    cs.send(`<message to='${u}/phone' id='typing' type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>`);
    await s.nothing((e) => (e.name === "presence" && e.attrs.from === cs.full) || isMessage("typing")(e), 200);
    cs.send(`<message to='${u}/phone' id='body' type='chat'><body>hi</body></message>`);
    // What waited first, then the message: the latest presence only.
    await s.next(isMessage("body"));
    const presences = s.received.filter((e) => e.name === "presence" && e.attrs.from === cs.full);
    assert.equal(presences.length, 1);
    assert.equal(presences[0]!.getChildText("show"), "dnd");
    cs.send("<presence><show>xa</show></presence>");
    await s.nothing((e) => e.name === "presence" && e.getChildText("show") === "xa", 150);
    control(s, { type: "csi", state: "active" });
    await s.next((e) => e.name === "presence" && e.getChildText("show") === "xa");
    s.end();
    cs.end();
  });
});
