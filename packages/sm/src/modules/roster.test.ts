import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { stanzaErrorCondition, type Element } from "@jabberfarm/xml";
import { startSmFarm, type SmTestFarm, type TestSession } from "../testing.js";
import { keyedStore, storedRosterItem } from "./module-testing.js";

const NS = "jabber:iq:roster";

const isPush = (e: Element): boolean => e.name === "iq" && e.attrs.type === "set" && e.getChild("query", NS) !== undefined;
const isPresence = (type: string | undefined, from: string) => (e: Element): boolean =>
  e.name === "presence" && e.attrs.type === type && e.attrs.from === from;

function queryOf(e: Element): Element {
  const q = e.getChild("query", NS);
  assert.ok(q, `no roster query in ${e.toString()}`);
  return q;
}

function onlyItem(e: Element): Element {
  const items = queryOf(e).getChildren("item");
  assert.equal(items.length, 1, e.toString());
  return items[0]!;
}

function groupsOf(item: Element): string[] {
  return item.getChildren("group").map((g) => g.text());
}

async function rosterGet(s: TestSession, ver?: string): Promise<Element> {
  const verAttr = ver === undefined ? "" : ` ver='${ver}'`;
  const reply = await s.iq(`<iq type='get'><query xmlns='${NS}'${verAttr}/></iq>`);
  assert.equal(reply.attrs.type, "result", reply.toString());
  return reply;
}

async function rosterSet(s: TestSession, item: string): Promise<Element> {
  return s.iq(`<iq type='set'><query xmlns='${NS}'>${item}</query></iq>`);
}

describe("roster module", () => {
  let farm: SmTestFarm;
  before(async () => {
    // Items as large as RFC 6121's field limits allow here (the default maxItemBytes is far smaller; quotas.test.ts).
    farm = await startSmFarm({ modules: ["roster", "subscription", "presence"], roster: { maxItems: 100, maxItemBytes: 8000 } });
  });
  after(async () => farm.stop());

  test("advertises jabber:iq:roster", () => {
    assert.ok(farm.sm.sm.features().includes(NS));
  });

  test("get: an empty roster carries a ver; the same ver gets an empty result, another one the roster", async () => {
    const u = await farm.addUser("rempty");
    const s = await farm.driver.open(`${u}/pc`);
    const first = await rosterGet(s);
    const ver = queryOf(first).attrs.ver;
    assert.ok(ver !== undefined && ver !== "");
    assert.equal(queryOf(first).getChildren("item").length, 0);
    assert.equal(first.attrs.to, s.full);

    const same = await rosterGet(s, ver);
    assert.equal(same.getChildren().length, 0, "an up-to-date client gets an empty result");
    const stale = await rosterGet(s, "not-a-ver");
    assert.equal(queryOf(stale).attrs.ver, ver);
    const empty = await rosterGet(s, "");
    assert.equal(queryOf(empty).attrs.ver, ver, "ver='' asks for the whole roster");
    s.end();
  });

  test("set adds an item, pushes it to interested resources only, and get returns it", async () => {
    const u = await farm.addUser("radd");
    const contact = "bob@example.org";
    const a = await farm.driver.open(`${u}/a`);
    await rosterGet(a);
    const b = await farm.driver.open(`${u}/b`); // never asked for the roster: not interested
    const c = await farm.driver.open(`${u}/c`);
    await rosterGet(c);

    const reply = await rosterSet(a, `<item jid='${contact}' name='Bob'><group>Friends</group><group>Work</group></item>`);
    assert.equal(reply.attrs.type, "result", reply.toString());
    assert.equal(reply.getChildren().length, 0);

    for (const s of [a, c]) {
      const push = await s.next(isPush);
      assert.equal(push.attrs.to, s.full);
      assert.ok(push.attrs.from === undefined || push.attrs.from === u, "a push comes from the account itself");
      const item = onlyItem(push);
      assert.deepEqual(item.attrs, { jid: contact, name: "Bob", subscription: "none" });
      assert.deepEqual(groupsOf(item), ["Friends", "Work"]);
      assert.ok(queryOf(push).attrs.ver);
    }
    await b.nothing(isPush);

    const roster = await rosterGet(b);
    const item = onlyItem(roster);
    assert.deepEqual(item.attrs, { jid: contact, name: "Bob", subscription: "none" });
    assert.deepEqual(groupsOf(item), ["Friends", "Work"]);

    // The update replaces name and groups; b is interested now.
    assert.equal((await rosterSet(c, `<item jid='${contact}'><group>Work</group></item>`)).attrs.type, "result");
    for (const s of [a, b, c]) {
      const push = await s.next(isPush);
      assert.deepEqual(onlyItem(push).attrs, { jid: contact, subscription: "none" });
      assert.deepEqual(groupsOf(onlyItem(push)), ["Work"]);
    }
    const stored = await storedRosterItem(farm, u, contact);
    assert.deepEqual(stored, { jid: contact, subscription: "none", groups: ["Work"] });
    for (const s of [a, b, c]) s.end();
  });

  test("set normalises the jid and treats name='' as no name", async () => {
    const u = await farm.addUser("rnorm");
    const s = await farm.driver.open(`${u}/pc`);
    await rosterGet(s);
    assert.equal((await rosterSet(s, "<item jid='Bob@EXAMPLE.org' name=''/>")).attrs.type, "result");
    const push = await s.next(isPush);
    assert.deepEqual(onlyItem(push).attrs, { jid: "bob@example.org", subscription: "none" });
    s.end();
  });

  test("set keeps the stored subscription, ask and approval and ignores the states a client sends", async () => {
    const u = await farm.addUser("rkeep");
    await farm.storage.setRosterItem(u, { jid: "both@example.org", subscription: "both", groups: [] });
    await farm.storage.setRosterItem(u, { jid: "asking@example.org", subscription: "from", ask: "subscribe", groups: [] });
    const s = await farm.driver.open(`${u}/pc`);
    await rosterGet(s);

    await rosterSet(s, "<item jid='both@example.org' name='B' subscription='none' ask='subscribe' approved='true'/>");
    assert.deepEqual(onlyItem(await s.next(isPush)).attrs, { jid: "both@example.org", name: "B", subscription: "both" });

    await rosterSet(s, "<item jid='asking@example.org' subscription='both'><group>G</group></item>");
    assert.deepEqual(onlyItem(await s.next(isPush)).attrs, { jid: "asking@example.org", subscription: "from", ask: "subscribe" });

    await rosterSet(s, "<item jid='new@example.org' subscription='both'/>");
    assert.deepEqual(onlyItem(await s.next(isPush)).attrs, { jid: "new@example.org", subscription: "none" });

    assert.equal((await storedRosterItem(farm, u, "both@example.org"))?.subscription, "both");
    assert.equal((await storedRosterItem(farm, u, "new@example.org"))?.subscription, "none");
    s.end();
  });

  test("ver: every change gets a new ver; a client with an old ver gets the whole roster", async () => {
    const u = await farm.addUser("rver");
    const s = await farm.driver.open(`${u}/pc`);
    const v0 = queryOf(await rosterGet(s)).attrs.ver!;
    await rosterSet(s, "<item jid='one@example.org'/>");
    const v1 = queryOf(await s.next(isPush)).attrs.ver!;
    await rosterSet(s, "<item jid='two@example.org'/>");
    const v2 = queryOf(await s.next(isPush)).attrs.ver!;
    assert.equal(new Set([v0, v1, v2]).size, 3);

    assert.equal((await rosterGet(s, v2)).getChildren().length, 0);
    const full = await rosterGet(s, v1);
    assert.equal(queryOf(full).attrs.ver, v2);
    assert.deepEqual(queryOf(full).getChildren("item").map((i) => i.attrs.jid).sort(), ["one@example.org", "two@example.org"]);

    // Another session, and the stored ver, agree.
    const t = await farm.driver.open(`${u}/tablet`);
    assert.equal((await rosterGet(t, v2)).getChildren().length, 0);
    assert.equal((await farm.storage.getRoster(u)).ver, v2);
    s.end();
    t.end();
  });

  test("remove: item-not-found for an unknown item; a removal is pushed with subscription='remove'", async () => {
    const u = await farm.addUser("rremove");
    const a = await farm.driver.open(`${u}/a`);
    const b = await farm.driver.open(`${u}/b`);
    await rosterGet(a);
    await rosterGet(b);
    const missing = await rosterSet(a, "<item jid='nobody@example.org' subscription='remove'/>");
    assert.equal(stanzaErrorCondition(missing), "item-not-found");

    await rosterSet(a, "<item jid='gone@example.org' name='G'><group>X</group></item>");
    await a.next(isPush);
    await b.next(isPush);
    const reply = await rosterSet(b, "<item jid='gone@example.org' subscription='remove'/>");
    assert.equal(reply.attrs.type, "result");
    for (const s of [a, b]) {
      assert.deepEqual(onlyItem(await s.next(isPush)).attrs, { jid: "gone@example.org", subscription: "remove" });
    }
    assert.equal(queryOf(await rosterGet(a)).getChildren("item").length, 0);
    assert.equal(await storedRosterItem(farm, u, "gone@example.org"), null);
    // A contact with no subscription hears nothing about it.
    await a.nothing((e) => e.name === "presence");
    a.end();
    b.end();
  });

  test("removing a contact with subscription both sends unsubscribe, unavailable and unsubscribed", async () => {
    const u = await farm.addUser("rrmboth");
    const k = await farm.addUser("rrmbothk");
    await farm.storage.setRosterItem(u, { jid: k, subscription: "both", groups: [] });
    await farm.storage.setRosterItem(k, { jid: u, subscription: "both", groups: [] });
    const ks = await farm.driver.online(`${k}/pc`);
    const us = await farm.driver.online(`${u}/pc`);
    await ks.next(isPresence(undefined, us.full)); // u's initial presence reached k

    assert.equal((await rosterSet(us, `<item jid='${k}' subscription='remove'/>`)).attrs.type, "result");
    assert.deepEqual(onlyItem(await us.next(isPush)).attrs, { jid: k, subscription: "remove" });

    await ks.next(isPresence("unsubscribe", u));
    await ks.next(isPresence("unavailable", us.full));
    await ks.next(isPresence("unsubscribed", u));
    // k's side: u no longer subscribes to k (both -> to), then k loses u (to -> none).
    assert.deepEqual(onlyItem(await ks.next(isPush)).attrs, { jid: u, subscription: "to" });
    assert.deepEqual(onlyItem(await ks.next(isPush)).attrs, { jid: u, subscription: "none" });
    assert.equal(await storedRosterItem(farm, u, k), null);
    assert.deepEqual(await storedRosterItem(farm, k, u), { jid: u, subscription: "none", groups: [] });
    us.end();
    ks.end();
  });

  test("removing a contact whose request is pending denies it; an outgoing request is cancelled", async () => {
    const u = await farm.addUser("rrmpend");
    const w = await farm.addUser("rrmpendw");
    const x = await farm.addUser("rrmpendx");
    // w asked u (pending in at u); u asked x (pending out at u).
    await farm.storage.setRosterItem(w, { jid: u, subscription: "none", ask: "subscribe", groups: [] });
    await keyedStore(farm, "subscription-requests").set(u, w, `<presence xmlns='jabber:client' type='subscribe' from='${w}' to='${u}'/>`);
    await farm.storage.setRosterItem(u, { jid: w, subscription: "none", groups: [] });
    await farm.storage.setRosterItem(u, { jid: x, subscription: "none", ask: "subscribe", groups: [] });
    await keyedStore(farm, "subscription-requests").set(x, u, `<presence xmlns='jabber:client' type='subscribe' from='${u}' to='${x}'/>`);
    const ws = await farm.driver.online(`${w}/pc`);
    const us = await farm.driver.open(`${u}/pc`);
    await rosterGet(us);

    await rosterSet(us, `<item jid='${w}' subscription='remove'/>`);
    await ws.next(isPresence("unsubscribed", u));
    assert.deepEqual(onlyItem(await ws.next(isPush)).attrs, { jid: u, subscription: "none" });
    await rosterSet(us, `<item jid='${x}' subscription='remove'/>`);
    await us.next(isPush);
    await us.next(isPush);
    // Both answers were processed by now on the contacts' side (same SM, in order).
    for (let i = 0; i < 50 && (await keyedStore(farm, "subscription-requests").list(x)).items.length > 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual((await keyedStore(farm, "subscription-requests").list(u)).items, []);
    assert.deepEqual((await keyedStore(farm, "subscription-requests").list(x)).items, []);
    us.end();
    ws.end();
  });

  test("set errors: item count, subscription value, groups, lengths, jids", async () => {
    const u = await farm.addUser("rerrors");
    const s = await farm.driver.open(`${u}/pc`);
    await rosterGet(s);
    const long = "n".repeat(1024);
    const cases: Array<[string, string]> = [
      ["", "bad-request"],
      ["<item jid='a@example.org'/><item jid='b@example.org'/>", "bad-request"],
      ["<item jid='a@example.org' subscription='bogus'/>", "bad-request"],
      ["<item jid='a@example.org'><group>G</group><group>G</group></item>", "bad-request"],
      ["<item jid='a@example.org'><group/></item>", "not-acceptable"],
      [`<item jid='a@example.org' name='${long}'/>`, "not-acceptable"],
      [`<item jid='a@example.org'><group>${long}</group></item>`, "not-acceptable"],
      ["<item jid='a@b@c'/>", "jid-malformed"],
      ["<item jid='a b@example.org'/>", "jid-malformed"],
      ["<item name='no jid'/>", "bad-request"],
      ["<item jid='a@example.org/res'/>", "bad-request"],
    ];
    for (const [item, condition] of cases) {
      const reply = await rosterSet(s, item);
      assert.equal(reply.attrs.type, "error", item);
      assert.equal(stanzaErrorCondition(reply), condition, item);
      assert.equal(reply.attrs.to, s.full);
    }
    // The longest acceptable name and group are accepted.
    const max = "m".repeat(1023);
    assert.equal((await rosterSet(s, `<item jid='a@example.org' name='${max}'><group>${max}</group></item>`)).attrs.type, "result");
    const push = await s.next(isPush);
    assert.equal(onlyItem(push).attrs.name, max);
    await s.nothing(isPush, 100);
    assert.equal((await farm.storage.getRoster(u)).items.length, 1);
    s.end();
  });
});
