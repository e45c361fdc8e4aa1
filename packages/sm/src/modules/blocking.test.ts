import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Jid } from "@jabberfarm/jid";
import { stanzaErrorCondition, type Element } from "@jabberfarm/xml";
import { startSmFarm, type SmTestFarm, type TestSession } from "../testing.js";
import { NS_BLOCKING, NS_BLOCKING_ERRORS, isBlocked } from "./blocking.js";

const isMessage = (id: string) => (e: Element): boolean => e.name === "message" && e.attrs.id === id;
const isPush = (op: string) => (e: Element): boolean => e.name === "iq" && e.attrs.type === "set" && e.getChild(op, NS_BLOCKING) !== undefined;
const ok = (e: Element): Element => {
  assert.equal(e.attrs.type, "result", e.toString());
  return e;
};

describe("blocking (XEP-0191): JID matching", () => {
  test("full, bare, domain/resource, domain and its subdomains, in the XEP's order", () => {
    const list = new Set(["a@x.example/r", "b@x.example", "x.example/svc", "evil.example"]);
    const b = (j: string): boolean => isBlocked(list, Jid.parse(j));
    assert.ok(b("a@x.example/r"));
    assert.ok(!b("a@x.example/other"));
    assert.ok(!b("a@x.example"));
    assert.ok(b("b@x.example"));
    assert.ok(b("b@x.example/any"));
    assert.ok(b("x.example/svc"));
    assert.ok(!b("x.example"));
    assert.ok(b("evil.example"));
    assert.ok(b("u@evil.example/r"));
    assert.ok(b("u@sub.evil.example"));
    assert.ok(!b("u@notevil.example"));
    assert.ok(!isBlocked(new Set(), Jid.parse("b@x.example")));
  });
});

describe("blocking (XEP-0191) on one SM", () => {
  let farm: SmTestFarm;
  before(async () => {
    farm = await startSmFarm({ blocking: { maxItems: 3 } });
  });
  after(async () => farm.stop());

  async function pair(a: string, b: string): Promise<[TestSession, TestSession]> {
    const ua = await farm.addUser(a);
    const ub = await farm.addUser(b);
    await farm.storage.setRosterItem(ua, { jid: ub, subscription: "both", groups: [] });
    await farm.storage.setRosterItem(ub, { jid: ua, subscription: "both", groups: [] });
    const sa = await farm.driver.online(`${ua}/pc`);
    const sb = await farm.driver.online(`${ub}/pc`);
    await sa.next((e) => e.name === "presence" && e.attrs.from === sb.full);
    await sb.next((e) => e.name === "presence" && e.attrs.from === sa.full);
    return [sa, sb];
  }

  test("the server advertises urn:xmpp:blocking", async () => {
    const u = await farm.addUser("bdisco");
    const s = await farm.driver.open(`${u}/r`);
    const info = ok(await s.iq("<iq type='get' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"));
    assert.ok(info.getChild("query")!.getChildren("feature").some((f) => f.attrs.var === NS_BLOCKING));
    s.end();
  });

  test("block, get, unblock: results, pushes to the resources that asked, errors for bad requests", async () => {
    const u = await farm.addUser("blister");
    const asked = await farm.driver.open(`${u}/asked`);
    const quiet = await farm.driver.open(`${u}/quiet`);
    const empty = ok(await asked.iq(`<iq type='get'><blocklist xmlns='${NS_BLOCKING}'/></iq>`));
    assert.equal(empty.getChild("blocklist", NS_BLOCKING)!.getChildren("item").length, 0);
    assert.equal(stanzaErrorCondition(await asked.iq(`<iq type='set'><block xmlns='${NS_BLOCKING}'/></iq>`)), "bad-request");
    assert.equal(stanzaErrorCondition(await asked.iq(`<iq type='set'><block xmlns='${NS_BLOCKING}'><item jid='@@'/></block></iq>`)), "jid-malformed");
    ok(await quiet.iq(`<iq type='set'><block xmlns='${NS_BLOCKING}'><item jid='spam@localhost'/><item jid='Evil.Example'/></block></iq>`));
    const push = await asked.next(isPush("block"));
    // The JIDs as the list holds them: normalised (RFC 7622).
    assert.deepEqual(push.getChild("block")!.getChildren("item").map((i) => i.attrs.jid), ["spam@localhost", "evil.example"]);
    await quiet.nothing(isPush("block"), 150);
    const list = ok(await asked.iq(`<iq type='get'><blocklist xmlns='${NS_BLOCKING}'/></iq>`));
    assert.deepEqual(list.getChild("blocklist")!.getChildren("item").map((i) => i.attrs.jid), ["evil.example", "spam@localhost"]);
    // The quota: three at most.
    assert.equal(stanzaErrorCondition(await asked.iq(`<iq type='set'><block xmlns='${NS_BLOCKING}'><item jid='c@x'/><item jid='d@x'/></block></iq>`)), "resource-constraint");
    ok(await asked.iq(`<iq type='set'><unblock xmlns='${NS_BLOCKING}'><item jid='spam@localhost'/></unblock></iq>`));
    assert.deepEqual((await asked.next(isPush("unblock"))).getChild("unblock")!.getChildren("item").map((i) => i.attrs.jid), ["spam@localhost"]);
    ok(await asked.iq(`<iq type='set'><unblock xmlns='${NS_BLOCKING}'/></iq>`));
    assert.equal((await asked.next(isPush("unblock"))).getChild("unblock")!.getChildren("item").length, 0);
    const none = ok(await asked.iq(`<iq type='get'><blocklist xmlns='${NS_BLOCKING}'/></iq>`));
    assert.equal(none.getChild("blocklist")!.getChildren("item").length, 0);
    asked.end();
    quiet.end();
  });

  test("a blocked contact's stanzas do not reach the user, and the user's do not reach them; unblocking restores both", async () => {
    const [a, b] = await pair("bka", "bkb");
    ok(await a.iq(`<iq type='set'><block xmlns='${NS_BLOCKING}'><item jid='${b.bare}'/></block></iq>`));
    // The contact, subscribed to the user, sees them go (§3.3).
    await b.next((e) => e.name === "presence" && e.attrs.from === a.full && e.attrs.type === "unavailable");
    // From the blocked contact: the user looks offline.
    b.send(`<message to='${a.bare}' id='b1' type='chat'><body>hello?</body></message>`);
    assert.equal(stanzaErrorCondition(await b.next(isMessage("b1"))), "service-unavailable");
    b.send(`<message to='${a.full}' id='b2' type='chat'><body>full?</body></message>`);
    assert.equal(stanzaErrorCondition(await b.next(isMessage("b2"))), "service-unavailable");
    const iq = await b.iq(`<iq type='get' to='${a.bare}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`);
    assert.equal(stanzaErrorCondition(iq), "service-unavailable");
    b.send(`<presence to='${a.full}'/>`);
    b.send("<presence><show>dnd</show></presence>");
    await a.nothing((e) => e.attrs.from?.startsWith(b.bare) === true, 200);
    // From the user to the blocked contact: not-acceptable with <blocked/>, nothing routed.
    a.send(`<message to='${b.bare}' id='a1' type='chat'><body>can you hear me?</body></message>`);
    const refused = await a.next(isMessage("a1"));
    assert.equal(stanzaErrorCondition(refused), "not-acceptable");
    assert.ok(refused.getChild("error")!.getChild("blocked", NS_BLOCKING_ERRORS));
    a.send("<presence><show>away</show></presence>");
    await b.nothing((e) => e.attrs.from?.startsWith(a.bare) === true, 200);

    ok(await a.iq(`<iq type='set'><unblock xmlns='${NS_BLOCKING}'><item jid='${b.bare}'/></unblock></iq>`));
    // The contact gets the user's current presence again (§3.4).
    const back = await b.next((e) => e.name === "presence" && e.attrs.from === a.full && e.attrs.type === undefined);
    assert.equal(back.getChildText("show"), "away");
    b.send(`<message to='${a.bare}' id='b3' type='chat'><body>again</body></message>`);
    await a.next(isMessage("b3"));
    a.send(`<message to='${b.bare}' id='a2' type='chat'><body>yes</body></message>`);
    await b.next(isMessage("a2"));
    a.end();
    b.end();
  });

  test("a message to a user who is offline and blocked the sender is refused, not stored", async () => {
    const [a, b] = await pair("bko", "bkp");
    ok(await a.iq(`<iq type='set'><block xmlns='${NS_BLOCKING}'><item jid='${b.bare}'/></block></iq>`));
    a.end();
    b.send(`<message to='${a.bare}' id='off1' type='chat'><body>stored?</body></message>`);
    assert.equal(stanzaErrorCondition(await b.next(isMessage("off1"))), "service-unavailable");
    const again = await farm.driver.online(a.full);
    await again.nothing(isMessage("off1"), 200);
    again.end();
    b.end();
  });
});
