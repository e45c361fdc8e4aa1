/**
 * End to end on one machine: `jabberfarm up` (router, xdb on PGlite, sm,
 * c2s as separate processes), accounts made with `jabberfarm adduser`, and
 * real clients chatting: subscription to both with the roster pushes,
 * presence in and out, messages both ways, offline messages surviving a
 * restart of the whole farm, bad passwords and bad XML.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Farm } from "./farm.js";
import { LibraryClient, RawClient, xml } from "./clients.js";
import type { Element } from "@jabberfarm/xml";

const isPush = (jid: string, check: (item: Element) => boolean) => (el: Element): boolean => {
  if (el.name !== "iq" || el.attrs.type !== "set") return false;
  const item = el.getChild("query", "jabber:iq:roster")?.getChild("item");
  return item !== undefined && item.attrs.jid === jid && check(item);
};

describe("a farm on one machine (PGlite)", () => {
  let farm: Farm;
  const clients: LibraryClient[] = [];
  before(async () => {
    farm = await Farm.start();
    await farm.addUser("alice@localhost", "alice-pw");
    await farm.addUser("bob@localhost", "bob-pw");
    await farm.addUser("carol@localhost", "carol-pw");
  });
  after(async () => {
    for (const c of clients) await c.stop();
    assert.equal(await farm.stop(), 0, "the farm stops cleanly");
  });

  async function login(user: string, pw: string, resource: string): Promise<LibraryClient> {
    const c = await LibraryClient.login(farm.ports.c2s, user, pw, resource);
    clients.push(c);
    return c;
  }

  test("two users subscribe to each other, see presence and chat", async () => {
    const alice = await login("alice", "alice-pw", "laptop");
    const bob = await login("bob", "bob-pw", "phone");
    assert.equal(alice.jid, "alice@localhost/laptop");
    const authLines = farm.logs.filter((l) => l.process === "c2s" && typeof l.mechanism === "string");
    assert.ok(authLines.some((l) => l.mechanism === "SCRAM-SHA-1"), "@xmpp/client authenticated with its own SCRAM-SHA-1");

    for (const c of [alice, bob]) {
      await c.iq(xml("iq", { type: "get" }, xml("query", { xmlns: "jabber:iq:roster" })));
      await c.send(xml("presence"));
    }

    // alice asks bob
    await alice.send(xml("presence", { type: "subscribe", to: "bob@localhost" }));
    await alice.next(isPush("bob@localhost", (i) => i.attrs.ask === "subscribe" && i.attrs.subscription === "none"));
    const req = await bob.next((e) => e.name === "presence" && e.attrs.type === "subscribe");
    assert.equal(req.attrs.from, "alice@localhost");
    await bob.send(xml("presence", { type: "subscribed", to: "alice@localhost" }));
    await bob.next(isPush("alice@localhost", (i) => i.attrs.subscription === "from"));
    await alice.next(isPush("bob@localhost", (i) => i.attrs.subscription === "to" && i.attrs.ask === undefined));
    await alice.next((e) => e.name === "presence" && e.attrs.type === "subscribed" && e.attrs.from === "bob@localhost");
    await alice.next((e) => e.name === "presence" && e.attrs.type === undefined && e.attrs.from === "bob@localhost/phone");

    // and bob asks alice
    await bob.send(xml("presence", { type: "subscribe", to: "alice@localhost" }));
    await alice.next((e) => e.name === "presence" && e.attrs.type === "subscribe" && e.attrs.from === "bob@localhost");
    await alice.send(xml("presence", { type: "subscribed", to: "bob@localhost" }));
    await alice.next(isPush("bob@localhost", (i) => i.attrs.subscription === "both"));
    await bob.next(isPush("alice@localhost", (i) => i.attrs.subscription === "both"));
    await bob.next((e) => e.name === "presence" && e.attrs.type === undefined && e.attrs.from === "alice@localhost/laptop");

    // messages both ways
    await alice.send(xml("message", { to: "bob@localhost", type: "chat", id: "a1" }, xml("body", {}, "hi bob")));
    const m1 = await bob.next((e) => e.name === "message" && e.attrs.id === "a1");
    assert.equal(m1.attrs.from, "alice@localhost/laptop");
    assert.equal(m1.getChildText("body"), "hi bob");
    await bob.send(xml("message", { to: "alice@localhost/laptop", type: "chat", id: "b1" }, xml("body", {}, "hello alice")));
    const m2 = await alice.next((e) => e.name === "message" && e.attrs.id === "b1");
    assert.equal(m2.getChildText("body"), "hello alice");

    // presence out and in
    await alice.send(xml("presence", { type: "unavailable" }));
    await bob.next((e) => e.name === "presence" && e.attrs.type === "unavailable" && e.attrs.from === "alice@localhost/laptop");
    await alice.send(xml("presence", {}, xml("show", {}, "away")));
    const back = await bob.next((e) => e.name === "presence" && e.attrs.from === "alice@localhost/laptop" && e.attrs.type === undefined);
    assert.equal(back.getChildText("show"), "away");

    // a client that goes away without a word still goes unavailable for its
    // contacts, once the time it had to resume its stream (2 s here) is over
    const aliceIndex = clients.indexOf(alice);
    alice.xmpp.socket?.socket?.destroy();
    clients.splice(aliceIndex, 1);
    await bob.next((e) => e.name === "presence" && e.attrs.type === "unavailable" && e.attrs.from === "alice@localhost/laptop");
  });

  test("a wrong password is refused with not-authorized", async () => {
    const c = new (await import("./clients.js")).LibraryClient(farm.ports.c2s, "alice", "wrong", "x");
    await assert.rejects(c.xmpp.start(), (e: Error & { condition?: string }) => e.condition === "not-authorized" || /not-authorized/.test(e.message));
    await c.stop();
  });

  test("SCRAM-SHA-256 over STARTTLS with a raw client", async () => {
    const raw = await RawClient.login(farm.ports.c2s, "carol", "carol-pw", "raw");
    raw.write("<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>");
    await raw.until(/<iq[^>]*id='r1'[^>]*type='result'|<iq[^>]*type='result'[^>]*id='r1'/);
    raw.socket.destroy();
  });

  test("malformed XML ends only that client's stream; the others keep chatting", async () => {
    const bob = clients.find((c) => c.jid.startsWith("bob@"))!;
    const dave = await login("carol", "carol-pw", "steady");
    const raw = await RawClient.login(farm.ports.c2s, "carol", "carol-pw", "broken");
    raw.write("<message to='bob@localhost'><body>oops</bod></message>");
    await raw.until(/<not-well-formed xmlns='urn:ietf:params:xml:ns:xmpp-streams'\/>/);
    await raw.waitClosed();
    await dave.send(xml("message", { to: "bob@localhost/phone", id: "d1" }, xml("body", {}, "still here")));
    const got = await bob.next((e) => e.name === "message" && e.attrs.id === "d1");
    assert.equal(got.getChildText("body"), "still here");
    assert.ok(!bob.received.some((e) => e.getChildText("body") === "oops"));
  });
});
