import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { parseElement, stanzaErrorCondition, type Element } from "@jabberfarm/xml";
import { startSmFarm, type SmTestFarm, type TestSession } from "../testing.js";
import { eligible } from "./carbons.js";
import { availableSession, isMessage } from "./module-testing.js";

const NS = "urn:xmpp:carbons:2";
const isCarbon = (dir: "sent" | "received") => (e: Element): boolean => e.name === "message" && e.getChild(dir, NS) !== undefined;
const forwarded = (e: Element, dir: "sent" | "received"): Element =>
  e.getChild(dir, NS)!.getChild("forwarded", "urn:xmpp:forward:0")!.getChild("message", "jabber:client")!;
const plain = (e: Element): boolean => isMessage(e) && e.getChild("sent", NS) === undefined && e.getChild("received", NS) === undefined;

async function enable(s: TestSession, on = true): Promise<void> {
  const r = await s.iq(`<iq type='set'><${on ? "enable" : "disable"} xmlns='${NS}'/></iq>`);
  assert.equal(r.attrs.type, "result", r.toString());
}

describe("message carbons", () => {
  let farm: SmTestFarm;
  before(async () => {
    farm = await startSmFarm();
    for (const u of ["ann", "ben", "cat", "dan", "eva", "fox"]) await farm.addUser(u);
  });
  after(async () => farm.stop());

  test("sent and received copies reach every other enabled resource, never the one that sent or got it", async () => {
    const phone = await availableSession(farm, "ann@localhost/phone");
    const laptop = await availableSession(farm, "ann@localhost/laptop");
    const old = await availableSession(farm, "ann@localhost/old"); // never enables
    const ben = await availableSession(farm, "ben@localhost/pc");
    await enable(phone);
    await enable(laptop);

    phone.send("<message type='chat' to='ben@localhost/pc' id='s1'><body>from the phone</body></message>");
    assert.equal((await ben.next(isMessage)).attrs.id, "s1");
    const sent = await laptop.next(isCarbon("sent"));
    assert.equal(sent.attrs.from, "ann@localhost");
    assert.equal(sent.attrs.to, "ann@localhost/laptop");
    assert.equal(sent.attrs.type, "chat");
    const inner = forwarded(sent, "sent");
    assert.deepEqual([inner.attrs.id, inner.attrs.from, inner.attrs.to, inner.getChildText("body")], ["s1", "ann@localhost/phone", "ben@localhost/pc", "from the phone"]);

    // To one resource: the other enabled one gets a received copy.
    ben.send("<message type='chat' to='ann@localhost/laptop' id='r1'><body>to the laptop</body></message>");
    assert.equal((await laptop.next(plain)).attrs.id, "r1");
    const received = await phone.next(isCarbon("received"));
    assert.equal(forwarded(received, "received").attrs.id, "r1");
    assert.equal(forwarded(received, "received").attrs.from, "ben@localhost/pc");

    // To the bare JID: all three share priority 0 and get the message itself; no copies.
    ben.send("<message type='chat' to='ann@localhost' id='r2'><body>to all</body></message>");
    for (const s of [phone, laptop, old]) assert.equal((await s.next(plain)).attrs.id, "r2");
    await phone.nothing(isCarbon("received"), 150);
    await laptop.nothing(isCarbon("received"), 0);
    await phone.nothing(isCarbon("sent"), 0);
    await old.nothing((e) => isCarbon("sent")(e) || isCarbon("received")(e), 0);
    for (const s of [phone, laptop, old, ben]) s.end();
  });

  test("private, no-copy, headline and normal without a body are not copied; disable stops copies", async () => {
    const a = await availableSession(farm, "cat@localhost/a");
    const b = await availableSession(farm, "cat@localhost/b");
    const dan = await availableSession(farm, "dan@localhost/x");
    await enable(a);
    await enable(b);
    a.send(`<message type='chat' to='dan@localhost/x' id='p1'><body>secret</body><private xmlns='${NS}'/></message>`);
    a.send("<message type='chat' to='dan@localhost/x' id='p2'><body>x</body><no-copy xmlns='urn:xmpp:hints'/></message>");
    a.send("<message type='headline' to='dan@localhost/x' id='p3'><body>news</body></message>");
    a.send("<message to='dan@localhost/x' id='p4'><subject>no body</subject></message>");
    a.send("<message to='dan@localhost/x' id='p5'><body>normal with a body</body></message>");
    for (const id of ["p1", "p2", "p3", "p4", "p5"]) assert.equal((await dan.next(isMessage)).attrs.id, id);
    assert.equal(forwarded(await b.next(isCarbon("sent")), "sent").attrs.id, "p5");
    await b.nothing(isCarbon("sent"), 150);

    await enable(b, false);
    a.send("<message type='chat' to='dan@localhost/x' id='p6'><body>after disable</body></message>");
    dan.send("<message type='chat' to='cat@localhost/a' id='p7'><body>to a</body></message>");
    assert.equal((await dan.next(isMessage)).attrs.id, "p6");
    assert.equal((await a.next(plain)).attrs.id, "p7");
    await b.nothing(isMessage, 200);
    for (const s of [a, b, dan]) s.end();
  });

  test("enabled is kept on the session (saved for a takeover); bad requests are refused", async () => {
    const a = await availableSession(farm, "eva@localhost/a");
    await enable(a);
    const session = farm.sm.sm.sessions.byFullJid("eva@localhost", "a");
    assert.equal(session?.data.get("carbons"), true);
    const r = await a.iq(`<iq type='get'><enable xmlns='${NS}'/></iq>`);
    assert.equal(stanzaErrorCondition(r), "bad-request");
    // A carbon someone else sent us is not copied again.
    const f = await availableSession(farm, "fox@localhost/x");
    const b = await availableSession(farm, "eva@localhost/b");
    await enable(b);
    f.send(`<message type='chat' to='eva@localhost/a' id='forged'><sent xmlns='${NS}'><forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' type='chat'><body>x</body></message></forwarded></sent></message>`);
    assert.equal((await a.next(isMessage)).attrs.id, "forged");
    await b.nothing(isMessage, 150);
    for (const s of [a, b, f]) s.end();
  });

  test("the server's disco#info lists the feature", async () => {
    const a = await farm.driver.open("ann@localhost/disco");
    const r = await a.iq("<iq type='get' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
    assert.ok(r.getChild("query")!.getChildren("feature").some((f) => f.attrs.var === NS));
    a.end();
  });
});

describe("carbons: which messages are eligible", () => {
  const el = (s: string): Element => parseElement(s, "jabber:client");
  test("XEP-0280 §6 rules", () => {
    assert.equal(eligible(el("<message type='chat'/>")), true);
    assert.equal(eligible(el("<message><body>x</body></message>")), true);
    assert.equal(eligible(el("<message/>")), false);
    assert.equal(eligible(el("<message type='groupchat'><body>x</body></message>")), false);
    assert.equal(eligible(el("<message type='error'><body>x</body></message>")), false);
    assert.equal(eligible(el(`<message type='chat'><private xmlns='${NS}'/></message>`)), false);
    assert.equal(eligible(el("<message type='chat'><x xmlns='http://jabber.org/protocol/muc#user'/></message>")), false);
  });
});
