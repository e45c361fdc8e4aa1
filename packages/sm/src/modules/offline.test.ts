import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { ENVELOPE_NS } from "@jabberfarm/envelope";
import { parseElement, stanzaErrorCondition, type Element } from "@jabberfarm/xml";
import { startSmFarm, type SmTestFarm } from "../testing.js";
import { archiveStore, availableSession, eventually, isMessage } from "./module-testing.js";
import { withDelay, worthStoring } from "./offline.js";

const LIMIT = 5;
const STAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

const delays = (e: Element): Element[] => e.getChildren("delay", "urn:xmpp:delay");

describe("offline storage", () => {
  let farm: SmTestFarm;
  before(async () => {
    farm = await startSmFarm({ offline: { limit: LIMIT } });
    for (const u of ["sender", "carol", "dave", "erin", "flo", "gus", "hana", "ivan"]) await farm.addUser(u);
  });
  after(async () => farm.stop());

  const stored = async (user: string): Promise<number> => (await archiveStore(farm, "offline").count(user)).count;

  test("stored with one delay stamp, delivered in order at the next initial presence, then acked", async () => {
    const s = await farm.driver.open("sender@localhost/a");
    const before = Date.now();
    for (let i = 1; i <= 3; i++) s.send(`<message type='chat' to='carol@localhost' id='c${i}'><body>${i}</body></message>`);
    await eventually(async () => (await stored("carol@localhost")) === 3, 3000, "3 stored messages");
    const after = Date.now();
    for (const m of (await archiveStore(farm, "offline").query("carol@localhost")).items) {
      const el = parseElement(m.value, "jabber:client");
      const [d, ...more] = delays(el);
      assert.ok(d, "a delay element");
      assert.equal(more.length, 0);
      assert.equal(d.attrs.from, "localhost");
      assert.equal(d.text(), "Offline Storage");
      const stamp = d.attrs.stamp ?? "";
      assert.match(stamp, STAMP);
      const t = Date.parse(stamp);
      assert.ok(t >= before - 1000 && t <= after + 1000, `stamp ${stamp} within the test`);
    }
    // Not yet: a session without initial presence gets nothing.
    const bound = await farm.driver.open("carol@localhost/bound");
    await bound.nothing(isMessage, 150);
    const c = await availableSession(farm, "carol@localhost/phone");
    for (let i = 1; i <= 3; i++) {
      const m = await c.next(isMessage);
      assert.equal(m.attrs.id, `c${i}`);
      assert.equal(m.getChildText("body"), String(i));
      assert.equal(m.attrs.from, "sender@localhost/a");
      assert.equal(delays(m).length, 1);
    }
    await eventually(async () => (await stored("carol@localhost")) === 0, 3000, "the ack");
    c.end();
    bound.end();
    // Acked means never again.
    const again = await availableSession(farm, "carol@localhost/pc");
    await again.nothing(isMessage, 200);
    again.end();
    s.end();
  });

  test("the quota: beyond the limit the sender gets service-unavailable", async () => {
    const s = await farm.driver.open("sender@localhost/b");
    for (let i = 1; i <= LIMIT; i++) s.send(`<message to='dave@localhost' id='q${i}'><body>${i}</body></message>`);
    await eventually(async () => (await stored("dave@localhost")) === LIMIT, 3000, "a full store");
    s.send("<message type='chat' to='dave@localhost' id='over'><body>one too many</body></message>");
    const bounce = await s.next((e) => e.attrs.id === "over");
    assert.equal(bounce.attrs.type, "error");
    assert.equal(bounce.attrs.from, "dave@localhost");
    assert.equal(stanzaErrorCondition(bounce), "service-unavailable");
    assert.equal(await stored("dave@localhost"), LIMIT);
    await s.nothing((e) => /^q\d$/.test(e.attrs.id ?? ""), 0);
    s.end();
  });

  test("a negative-priority session neither receives stored messages nor stops storage", async () => {
    const s = await farm.driver.open("sender@localhost/c");
    s.send("<message type='chat' to='erin@localhost' id='e1'><body>first</body></message>");
    await eventually(async () => (await stored("erin@localhost")) === 1, 3000, "1 stored");
    const hidden = await availableSession(farm, "erin@localhost/hidden", -1);
    await hidden.nothing(isMessage, 150);
    s.send("<message type='chat' to='erin@localhost' id='e2'><body>second</body></message>");
    await eventually(async () => (await stored("erin@localhost")) === 2, 3000, "2 stored");
    await hidden.nothing(isMessage, 0);
    const shown = await availableSession(farm, "erin@localhost/shown", 0);
    assert.equal((await shown.next(isMessage)).attrs.id, "e1");
    assert.equal((await shown.next(isMessage)).attrs.id, "e2");
    await hidden.nothing(isMessage, 100);
    for (const x of [s, hidden, shown]) x.end();
  });

  test("a message for an unbound full JID is stored like one for the bare JID", async () => {
    const s = await farm.driver.open("sender@localhost/d");
    s.send("<message type='chat' to='flo@localhost/laptop' id='f1'><body>later</body></message>");
    await eventually(async () => (await stored("flo@localhost")) === 1, 3000, "1 stored");
    const f = await availableSession(farm, "flo@localhost/phone");
    const m = await f.next(isMessage);
    assert.equal(m.attrs.id, "f1");
    f.end();
    s.end();
  });

  test("headlines, typing notifications and no-store hints are not stored, and not bounced", async () => {
    const s = await farm.driver.open("sender@localhost/e");
    s.send("<message type='headline' to='gus@localhost' id='g1'><body>news</body></message>");
    s.send("<message type='chat' to='gus@localhost' id='g2'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>");
    s.send("<message type='chat' to='gus@localhost' id='g3'><body>secret</body><no-store xmlns='urn:xmpp:hints'/></message>");
    s.send("<message type='chat' to='gus@localhost' id='g4'/>");
    // A body with a chat state is a message like any other.
    s.send("<message type='chat' to='gus@localhost' id='g5'><body>kept</body><active xmlns='http://jabber.org/protocol/chatstates'/></message>");
    await eventually(async () => (await stored("gus@localhost")) === 1, 3000, "1 stored");
    await s.nothing((e) => /^g\d$/.test(e.attrs.id ?? ""), 200);
    const [only] = (await archiveStore(farm, "offline").query("gus@localhost")).items;
    assert.equal(parseElement(only!.value, "jabber:client").attrs.id, "g5");
    s.end();
  });

  test("a message arriving while stored ones are delivered comes after them", async () => {
    const s = await farm.driver.open("sender@localhost/f");
    for (let i = 1; i <= 3; i++) s.send(`<message type='chat' to='hana@localhost' id='h${i}'><body>${i}</body></message>`);
    await eventually(async () => (await stored("hana@localhost")) === 3, 3000, "3 stored");
    // h4 races the login: stored and flushed with the rest, or delivered live after the flush.
    const pending = availableSession(farm, "hana@localhost/x");
    s.send("<message type='chat' to='hana@localhost' id='h4'><body>4</body></message>");
    const h = await pending;
    const ids: string[] = [];
    while (ids.length < 4) ids.push((await h.next(isMessage)).attrs.id ?? "");
    assert.deepEqual(ids, ["h1", "h2", "h3", "h4"]);
    await eventually(async () => (await stored("hana@localhost")) === 0, 3000, "the ack");
    h.end();
    s.end();
  });

  test("a message its c2s bounces after the session ended there is stored, not dropped", async () => {
    // A c2s closing a stream says `end` at once, then bounces what was still on its way to that session.
    const i = await availableSession(farm, "ivan@localhost/gone");
    i.end();
    await eventually(() => farm.sm.sm.sessions.of("ivan@localhost").length === 0, 3000, "the session ended");
    farm.driver.component.send(`<route xmlns='${ENVELOPE_NS}' type='error' from='${farm.driver.address}' to='${farm.sm.sm.address}' sid='${i.sid}' seq='0badcafe.1'>` +
      "<message xmlns='jabber:client' type='chat' from='sender@localhost/g' to='ivan@localhost' id='late'><body>late</body></message>" +
      "<error type='cancel'><recipient-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></route>");
    await eventually(async () => (await stored("ivan@localhost")) === 1, 3000, "the bounced message stored");
  });
});

describe("offline: delivery in pages", () => {
  let farm: SmTestFarm;
  before(async () => {
    farm = await startSmFarm({ offline: { limit: 1000, maxBytes: 4 * 1024 * 1024, pageMessages: 50, pageBytes: 64 * 1024 } });
    for (const u of ["many", "large", "twice"]) await farm.addUser(u);
  });
  after(async () => farm.stop());

  const stored = async (user: string): Promise<number> => (await archiveStore(farm, "offline").count(user)).count;

  async function sendAndLogin(user: string, n: number, body: (i: number) => string): Promise<void> {
    const s = await farm.driver.open(`sender@localhost/${user}`);
    for (let i = 0; i < n; i++) s.send(`<message type='chat' to='${user}@localhost' id='p${i}'><body>${body(i)}</body></message>`);
    await eventually(async () => (await stored(`${user}@localhost`)) === n, 10_000, `${n} stored`);
    const r = await availableSession(farm, `${user}@localhost/phone`);
    for (let i = 0; i < n; i++) assert.equal((await r.next(isMessage, 10_000)).attrs.id, `p${i}`);
    await eventually(async () => (await stored(`${user}@localhost`)) === 0, 3000, "every page acknowledged");
    await r.nothing(isMessage, 100);
    r.end();
    s.end();
  }

  test("more messages than one page holds are delivered whole and in order", async () => {
    await sendAndLogin("many", 120, (i) => `${i}`);
  });

  test("more bytes than one storage answer could carry are delivered whole and in order", async () => {
    // 150 × 10 KB: 1.5 MB, more than a farm link takes (1 MiB), in pages of 64 KiB.
    await sendAndLogin("large", 150, (i) => `${i} ${"x".repeat(10_000)}`);
  });

  test("a message with an id that arrives twice (a route delivered again) is stored once", async () => {
    const s = await farm.driver.open("sender@localhost/twice");
    const msg = "<message type='chat' to='twice@localhost' id='same'><body>once</body></message>";
    s.send(msg);
    s.send(msg);
    s.send("<message type='chat' to='twice@localhost'><body>no id</body></message>");
    s.send("<message type='chat' to='twice@localhost'><body>no id</body></message>");
    await eventually(async () => (await stored("twice@localhost")) === 3, 3000, "3 stored");
    await s.nothing((e) => e.attrs.type === "error", 100);
    assert.equal(await stored("twice@localhost"), 3);
    s.end();
  });
});

describe("offline: delay stamping of the raw text", () => {
  const now = new Date("2024-02-03T04:05:06.789Z");

  test("inserted before the closing tag, the rest untouched", () => {
    const raw = "<message xmlns='jabber:client' to='a@localhost' from='b@x/y'><body>hi &amp; bye</body></message>";
    const out = withDelay(parseElement(raw, "jabber:client"), raw, "localhost", now);
    assert.equal(out, "<message xmlns='jabber:client' to='a@localhost' from='b@x/y'><body>hi &amp; bye</body>"
      + "<delay xmlns='urn:xmpp:delay' from='localhost' stamp='2024-02-03T04:05:06.789Z'>Offline Storage</delay></message>");
  });

  test("an empty element is opened; another entity's delay stays, ours is never doubled", () => {
    const empty = "<message xmlns='jabber:client' to='a@localhost'/>";
    assert.equal(withDelay(parseElement(empty, "jabber:client"), empty, "localhost", now),
      "<message xmlns='jabber:client' to='a@localhost'><delay xmlns='urn:xmpp:delay' from='localhost' stamp='2024-02-03T04:05:06.789Z'>Offline Storage</delay></message>");
    const theirs = "<message xmlns='jabber:client'><body>x</body><delay xmlns='urn:xmpp:delay' from='muc.example' stamp='2020-01-01T00:00:00Z'/></message>";
    const once = withDelay(parseElement(theirs, "jabber:client"), theirs, "localhost", now);
    assert.equal(parseElement(once, "jabber:client").getChildren("delay", "urn:xmpp:delay").length, 2);
    assert.equal(withDelay(parseElement(once, "jabber:client"), once, "localhost", now), once);
  });

  test("what is worth storing", () => {
    const el = (s: string): Element => parseElement(s, "jabber:client");
    assert.equal(worthStoring(el("<message><body>x</body></message>")), true);
    assert.equal(worthStoring(el("<message><received xmlns='urn:xmpp:receipts' id='1'/></message>")), true);
    assert.equal(worthStoring(el("<message><gone xmlns='http://jabber.org/protocol/chatstates'/></message>")), false);
    assert.equal(worthStoring(el("<message><body>x</body><no-store xmlns='urn:xmpp:hints'/></message>")), false);
    assert.equal(worthStoring(el("<message><store xmlns='urn:xmpp:hints'/></message>")), true);
    assert.equal(worthStoring(el("<message/>")), false);
  });
});
