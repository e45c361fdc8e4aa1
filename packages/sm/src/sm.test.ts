import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { relayEnvelope, routeEnvelope } from "@jabberfarm/envelope";
import { stanzaErrorCondition } from "@jabberfarm/xml";
import { startSmFarm, type SmTestFarm } from "./testing.js";

describe("sm core", () => {
  let farm: SmTestFarm;
  before(async () => {
    farm = await startSmFarm({ modules: [] });
    await farm.addUser("alice");
    await farm.addUser("bob");
  });
  after(async () => farm.stop());

  test("a session starts, and an iq for a namespace nobody handles gets service-unavailable", async () => {
    const a = await farm.driver.open("alice@localhost/phone");
    const reply = await a.iq("<iq type='get' id='u1'><query xmlns='urn:example:unknown'/></iq>");
    assert.equal(reply.attrs.type, "error");
    assert.equal(stanzaErrorCondition(reply), "service-unavailable");
    const host = await a.iq("<iq type='get' to='localhost' id='u2'><query xmlns='urn:example:unknown'/></iq>");
    assert.equal(stanzaErrorCondition(host), "service-unavailable");
    assert.equal(host.attrs.from, "localhost");
    a.end();
  });

  test("an iq get with two payloads is a bad-request", async () => {
    const a = await farm.driver.open("alice@localhost/pc");
    const reply = await a.iq("<iq type='get' id='b1'><a xmlns='urn:x'/><b xmlns='urn:x'/></iq>");
    assert.equal(stanzaErrorCondition(reply), "bad-request");
    a.end();
  });

  test("a second session with the same full JID replaces the first, which is kicked with conflict", async () => {
    const first = await farm.driver.open("bob@localhost/same");
    const second = await farm.driver.open("bob@localhost/same");
    for (let i = 0; i < 50 && first.kicked === undefined; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(first.kicked, "conflict");
    assert.equal(second.kicked, undefined);
    assert.equal(farm.sm.sm.sessions.of("bob@localhost").length, 1);
    second.end();
  });

  test("a relay queued behind its recipient's other work is acknowledged only once it ran", async () => {
    const b = await farm.driver.open("bob@localhost/queued");
    const a = await farm.driver.open("alice@localhost/other");
    // bob's queue is busy (an xdb read, a takeover...) until `release`.
    let release!: () => void;
    const busy = farm.sm.sm.queue.serial("bob@localhost", () => new Promise<void>((r) => (release = r)));
    const relay = (to: string, n: number) => farm.driver.component.send(relayEnvelope(farm.driver.address, to.replace(/\/.*/, ""),
      `<message xmlns='jabber:client' from='carol@localhost/x' to='${to}' id='q${n}'><body>${n}</body></message>`, ` seq='feedbeef.${n}' low='1'`));
    relay("bob@localhost/queued", 1);
    relay("alice@localhost/other", 2);
    await a.next((e) => e.attrs.id === "q2");
    const ackedNow = (n: number): boolean => farm.driver.acks.some((e) => e.attrs.ep === "feedbeef" && e.text().split(" ").includes(String(n)));
    const acked = async (n: number): Promise<boolean> => {
      for (let i = 0; i < 250 && !ackedNow(n); i++) await new Promise((r) => setTimeout(r, 20));
      return ackedNow(n);
    };
    assert.ok(await acked(2), "the relay to alice, whose queue was free, is acknowledged");
    // Acknowledgements leave in the order the work settled: had 1 been acknowledged at once, it would be here by now.
    assert.equal(ackedNow(1), false, "not acknowledged while it waits in bob's queue");
    release();
    await busy;
    await b.next((e) => e.attrs.id === "q1");
    assert.ok(await acked(1), "acknowledged once delivered");
    a.end();
    b.end();
  });

  test("an iq to a full JID that is online is delivered; to one that is not, service-unavailable", async () => {
    const a = await farm.driver.open("alice@localhost/one");
    const b = await farm.driver.open("bob@localhost/two");
    a.send("<iq type='get' to='bob@localhost/two' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>");
    const got = await b.next((e) => e.attrs.id === "p1");
    assert.equal(got.attrs.from, "alice@localhost/one");
    const gone = await a.iq("<iq type='get' to='bob@localhost/nowhere' id='p2'><ping xmlns='urn:xmpp:ping'/></iq>");
    assert.equal(stanzaErrorCondition(gone), "service-unavailable");
    const nobody = await a.iq("<iq type='get' to='nobody@localhost' id='p3'><query xmlns='urn:x'/></iq>");
    assert.equal(stanzaErrorCondition(nobody), "service-unavailable");
    a.end();
    b.end();
  });
});

describe("sm: its own routes' window", () => {
  let farm: SmTestFarm;
  before(async () => {
    farm = await startSmFarm({ modules: [], maxUnconfirmedRoutes: 16 });
    await farm.addUser("alice");
    await farm.addUser("bob");
  });
  after(async () => {
    await farm.stop();
  });

  test("with maxUnconfirmedRoutes of its deliveries unacknowledged, a session's routes are acknowledged only once half are", async () => {
    const a = await farm.driver.open("alice@localhost/w");
    const b = await farm.driver.open("bob@localhost/w");
    // The c2s is behind: it gets bob's messages but acknowledges none yet.
    farm.driver.heldAcks = [];
    const N = 20;
    for (let n = 1; n <= N; n++) {
      farm.driver.component.send(routeEnvelope(farm.driver.address, "alice@localhost", a.sid,
        `<message xmlns='jabber:client' from='alice@localhost/w' to='bob@localhost/w' id='w${n}'><body>${n}</body></message>`, ` seq='abcd0123.${n}' low='1'`));
    }
    for (let n = 1; n <= N; n++) await b.next((e) => e.attrs.id === `w${n}`);
    const acked = (): Set<number> => new Set(farm.driver.acks.filter((e) => e.attrs.ep === "abcd0123").flatMap((e) => e.text().split(" ").map(Number)));
    for (let i = 0; i < 250 && !acked().has(15); i++) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual([...acked()].sort((x, y) => x - y), Array.from({ length: 15 }, (_, i) => i + 1),
      "acknowledged while fewer than 16 deliveries waited; the rest held (they would have left with the 15th)");
    // The c2s catches up: the held acknowledgements follow.
    const held = farm.driver.heldAcks;
    farm.driver.heldAcks = undefined;
    for (const ack of held) ack();
    for (let i = 0; i < 250 && acked().size < N; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(acked().size, N);
    a.end();
    b.end();
  });
});

describe("sessions per account", () => {
  let farm: SmTestFarm;
  before(async () => {
    farm = await startSmFarm({ modules: [], maxSessionsPerUser: 2 });
    await farm.addUser("carol");
  });
  after(async () => farm.stop());

  test("one more than maxSessionsPerUser is refused with resource-constraint; the same resource replaces; an end makes room", async () => {
    const one = await farm.driver.open("carol@localhost/one");
    await farm.driver.open("carol@localhost/two");
    await assert.rejects(farm.driver.open("carol@localhost/three"), /session refused: resource-constraint/);
    assert.equal(farm.sm.sm.sessions.of("carol@localhost").length, 2);
    // A new session for a resource the account holds replaces that one: no more sessions than before.
    const again = await farm.driver.open("carol@localhost/two");
    assert.equal(farm.sm.sm.sessions.of("carol@localhost").length, 2);
    one.end();
    for (let i = 0; i < 100 && farm.sm.sm.sessions.of("carol@localhost").length > 1; i++) await new Promise((r) => setTimeout(r, 20));
    const three = await farm.driver.open("carol@localhost/three");
    assert.equal(farm.sm.sm.sessions.of("carol@localhost").length, 2);
    again.end();
    three.end();
  });
});
