import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { parseElement, stanzaErrorCondition, type Element } from "@jabberfarm/xml";
import { startSmFarm, type SmTestFarm } from "../testing.js";
import { BUILTIN_MODULES } from "./index.js";
import { availableSession, eventually, isMessage } from "./module-testing.js";

const body = (e: Element): string | undefined => e.getChildText("body");

// Without offline.ts, so that what message.ts declines shows as the core's
// service-unavailable: that is the extension point offline.ts plugs into.
// Without mam.ts, which stamps stanza ids into what it archives (mam.test.ts
// checks the rest of the text still goes through byte for byte).
describe("message routing (without offline storage)", () => {
  let farm: SmTestFarm;
  before(async () => {
    farm = await startSmFarm({ modules: Object.keys(BUILTIN_MODULES).filter((m) => m !== "offline" && m !== "mam") });
    for (const u of ["alice", "bob", "carl", "dora", "eve", "fred", "gina", "hal", "ivy", "jon"]) await farm.addUser(u);
  });
  after(async () => farm.stop());

  test("to a bound full JID: only that resource gets it, byte for byte", async () => {
    const a = await farm.driver.open("alice@localhost/phone");
    const pc = await availableSession(farm, "bob@localhost/pc");
    const tab = await availableSession(farm, "bob@localhost/tablet", 5);
    const sent = "<message type='chat' to='bob@localhost/pc' id='m1'><body>to the pc</body><x xmlns='urn:example:x' a='1'/></message>";
    a.send(sent);
    await eventually(() => pc.received.some(isMessage), 3000, "the message");
    // What c2s stamped and sent is what reaches the other c2s: never re-serialised on the way.
    const expected = parseElement(sent, "jabber:client");
    expected.attrs.from = a.full;
    expected.attrs.xmlns = "jabber:client";
    assert.equal(pc.raws[pc.received.findIndex(isMessage)], expected.toString());
    const got = await pc.next(isMessage);
    assert.equal(got.attrs.from, "alice@localhost/phone");
    assert.equal(got.attrs.to, "bob@localhost/pc");
    assert.equal(body(got), "to the pc");
    assert.ok(got.getChild("x", "urn:example:x"));
    await tab.nothing(isMessage);
    for (const s of [a, pc, tab]) s.end();
  });

  test("to the bare JID: the highest non-negative priority wins", async () => {
    const a = await farm.driver.open("alice@localhost/p2");
    const low = await availableSession(farm, "carl@localhost/low", 1);
    const high = await availableSession(farm, "carl@localhost/high", 7);
    const neg = await availableSession(farm, "carl@localhost/neg", -3);
    for (const type of ["chat", "normal", undefined]) {
      a.send(`<message ${type ? `type='${type}'` : ""} to='carl@localhost'><body>${type ?? "none"}</body></message>`);
      assert.equal(body(await high.next(isMessage)), type ?? "none");
    }
    // An unknown type is normal (RFC 6121 §5.2.2).
    a.send("<message type='strange' to='carl@localhost'><body>odd</body></message>");
    assert.equal(body(await high.next(isMessage)), "odd");
    await low.nothing(isMessage, 100);
    await neg.nothing(isMessage, 100);
    for (const s of [a, low, high, neg]) s.end();
  });

  test("to the bare JID: resources tied at the top all get it", async () => {
    const a = await farm.driver.open("alice@localhost/p3");
    const one = await availableSession(farm, "dora@localhost/one", 3);
    const two = await availableSession(farm, "dora@localhost/two", 3);
    const lower = await availableSession(farm, "dora@localhost/three", 2);
    a.send("<message type='chat' to='dora@localhost'><body>both</body></message>");
    assert.equal(body(await one.next(isMessage)), "both");
    assert.equal(body(await two.next(isMessage)), "both");
    await lower.nothing(isMessage, 100);
    for (const s of [a, one, two, lower]) s.end();
  });

  test("only negative-priority or unavailable resources: chat is service-unavailable here; headline is dropped", async () => {
    const a = await farm.driver.open("alice@localhost/p4");
    const neg = await availableSession(farm, "eve@localhost/neg", -1);
    const unavailable = await farm.driver.open("eve@localhost/silent");
    a.send("<message type='chat' to='eve@localhost' id='n1'><body>anyone?</body></message>");
    const bounce = await a.next((e) => isMessage(e) && e.attrs.id === "n1");
    assert.equal(bounce.attrs.type, "error");
    assert.equal(bounce.attrs.from, "eve@localhost");
    assert.equal(stanzaErrorCondition(bounce), "service-unavailable");
    a.send("<message type='headline' to='eve@localhost' id='h1'><body>news</body></message>");
    await a.nothing((e) => e.attrs.id === "h1", 200);
    await neg.nothing(isMessage, 0);
    await unavailable.nothing(isMessage, 0);
    for (const s of [a, neg, unavailable]) s.end();
  });

  test("headline to the bare JID goes to every non-negative available resource", async () => {
    const a = await farm.driver.open("alice@localhost/p5");
    const r1 = await availableSession(farm, "fred@localhost/r1", 0);
    const r2 = await availableSession(farm, "fred@localhost/r2", 9);
    const neg = await availableSession(farm, "fred@localhost/neg", -1);
    const quiet = await farm.driver.open("fred@localhost/quiet");
    a.send("<message type='headline' to='fred@localhost'><body>extra</body></message>");
    assert.equal(body(await r1.next(isMessage)), "extra");
    assert.equal(body(await r2.next(isMessage)), "extra");
    await neg.nothing(isMessage, 150);
    await quiet.nothing(isMessage, 0);
    for (const s of [a, r1, r2, neg, quiet]) s.end();
  });

  test("to an unbound full JID: chat, normal and headline as to the bare JID; groupchat bounced; error dropped", async () => {
    const a = await farm.driver.open("alice@localhost/p6");
    const here = await availableSession(farm, "gina@localhost/here");
    for (const type of ["chat", "normal", "headline"]) {
      a.send(`<message type='${type}' to='gina@localhost/gone'><body>${type}</body></message>`);
      const got = await here.next(isMessage);
      assert.equal(body(got), type);
      assert.equal(got.attrs.to, "gina@localhost/gone");
    }
    a.send("<message type='groupchat' to='gina@localhost/gone' id='g1'><body>room</body></message>");
    const bounce = await a.next((e) => e.attrs.id === "g1");
    assert.equal(stanzaErrorCondition(bounce), "service-unavailable");
    a.send("<message type='error' to='gina@localhost/gone' id='e1'><error type='cancel'><gone xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>");
    await here.nothing(isMessage, 200);
    await a.nothing((e) => e.attrs.id === "e1", 0);
    for (const s of [a, here]) s.end();
  });

  test("groupchat to the bare JID is bounced, to a bound full JID delivered; errors only reach a bound full JID", async () => {
    const a = await farm.driver.open("alice@localhost/p7");
    const h = await availableSession(farm, "hal@localhost/desk", 4);
    a.send("<message type='groupchat' to='hal@localhost' id='g2'><body>room</body></message>");
    assert.equal(stanzaErrorCondition(await a.next((e) => e.attrs.id === "g2")), "service-unavailable");
    a.send("<message type='groupchat' to='hal@localhost/desk' id='g3'><body>room</body></message>");
    assert.equal((await h.next(isMessage)).attrs.id, "g3");
    a.send("<message type='error' to='hal@localhost' id='e2'><error type='cancel'><gone xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>");
    await h.nothing((e) => e.attrs.id === "e2", 200);
    await a.nothing((e) => e.attrs.id === "e2", 0);
    a.send("<message type='error' to='hal@localhost/desk' id='e3'><error type='cancel'><gone xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>");
    assert.equal((await h.next(isMessage)).attrs.id, "e3");
    for (const s of [a, h]) s.end();
  });

  test("to a user that does not exist: service-unavailable, never for an error", async () => {
    const a = await farm.driver.open("alice@localhost/p8");
    for (const to of ["nobody@localhost", "nobody@localhost/res"]) {
      a.send(`<message type='chat' to='${to}' id='x-${to}'><body>hello?</body></message>`);
      const bounce = await a.next((e) => e.attrs.id === `x-${to}`);
      assert.equal(bounce.attrs.type, "error");
      assert.equal(bounce.attrs.from, to);
      assert.equal(stanzaErrorCondition(bounce), "service-unavailable");
    }
    a.send("<message type='error' to='nobody@localhost' id='x-err'><error type='cancel'><gone xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>");
    await a.nothing((e) => e.attrs.id === "x-err", 200);
    a.end();
  });

  test("a message without 'to' is for the sender's own bare JID", async () => {
    const i1 = await availableSession(farm, "ivy@localhost/one", 1);
    const i2 = await availableSession(farm, "ivy@localhost/two", 2);
    i1.send("<message type='chat' id='self1'><body>note to self</body></message>");
    const got = await i2.next(isMessage);
    assert.equal(got.attrs.id, "self1");
    assert.equal(got.attrs.to, "ivy@localhost");
    assert.equal(got.attrs.from, "ivy@localhost/one");
    await i1.nothing(isMessage, 100);
    for (const s of [i1, i2]) s.end();
  });

  test("a malformed 'to' is jid-malformed", async () => {
    const j = await farm.driver.open("jon@localhost/x");
    j.send("<message type='chat' to='@@bad' id='bad1'><body>?</body></message>");
    const bounce = await j.next((e) => e.attrs.id === "bad1");
    assert.equal(stanzaErrorCondition(bounce), "jid-malformed");
    j.end();
  });
});
