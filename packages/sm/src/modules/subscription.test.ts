import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { stanzaErrorCondition, type Element } from "@jabberfarm/xml";
import { delay, startSmFarm, type SmTestFarm, type TestSession } from "../testing.js";
import { keyedStore, storedRosterItem } from "./module-testing.js";

const NS = "jabber:iq:roster";

const isPush = (e: Element): boolean => e.name === "iq" && e.attrs.type === "set" && e.getChild("query", NS) !== undefined;
const isPresence = (type: string | undefined, from: string) => (e: Element): boolean =>
  e.name === "presence" && e.attrs.type === type && e.attrs.from === from;
const isSubscriptionStanza = (e: Element): boolean =>
  e.name === "presence" && ["subscribe", "subscribed", "unsubscribe", "unsubscribed"].includes(e.attrs.type ?? "");

/** The attributes of the one item of the next roster push. */
async function nextPush(s: TestSession): Promise<Record<string, string>> {
  const push = await s.next(isPush);
  const items = push.getChild("query", NS)!.getChildren("item");
  assert.equal(items.length, 1, push.toString());
  return items[0]!.attrs;
}

async function eventually(check: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (await check()) return;
    await delay(20);
  }
  assert.fail(`timed out waiting for ${what}`);
}

describe("subscription module", () => {
  let farm: SmTestFarm;
  before(async () => {
    farm = await startSmFarm({ modules: ["roster", "subscription", "presence"] });
  });
  after(async () => farm.stop());

  const requests = async (user: string): Promise<string[]> =>
    (await keyedStore(farm, "subscription-requests").list(user)).items.map((r) => r.key);

  test("the handshake from none to both, with the exact pushes on each side", async () => {
    const a = await farm.addUser("shakea");
    const b = await farm.addUser("shakeb");
    const as = await farm.driver.online(`${a}/pc`);
    const bs = await farm.driver.online(`${b}/pc`);

    // a asks b: a's item shows the pending request; b gets the request, and no item.
    as.send(`<presence type='subscribe' to='${b}' id='sub1'><status>hi</status></presence>`);
    assert.deepEqual(await nextPush(as), { jid: b, subscription: "none", ask: "subscribe" });
    const req = await bs.next(isPresence("subscribe", a));
    assert.equal(req.attrs.to, b);
    assert.equal(req.attrs.id, "sub1");
    assert.equal(req.getChildText("status"), "hi");
    assert.deepEqual(await requests(b), [a]);

    // b approves: b now has a as "from", a has b as "to" and sees b's presence.
    bs.send(`<presence type='subscribed' to='${a}'/>`);
    assert.deepEqual(await nextPush(bs), { jid: a, subscription: "from" });
    await as.next(isPresence("subscribed", b));
    assert.deepEqual(await nextPush(as), { jid: b, subscription: "to" });
    await as.next(isPresence(undefined, bs.full));
    assert.deepEqual(await requests(b), []);

    // And back: b asks a, a approves, both end with "both".
    bs.send(`<presence type='subscribe' to='${a}'/>`);
    assert.deepEqual(await nextPush(bs), { jid: a, subscription: "from", ask: "subscribe" });
    await as.next(isPresence("subscribe", b));
    as.send(`<presence type='subscribed' to='${b}'/>`);
    assert.deepEqual(await nextPush(as), { jid: b, subscription: "both" });
    await bs.next(isPresence("subscribed", a));
    assert.deepEqual(await nextPush(bs), { jid: a, subscription: "both" });
    await bs.next(isPresence(undefined, as.full));

    await as.nothing(isPush, 200);
    await bs.nothing(isPush, 0);
    assert.deepEqual(await storedRosterItem(farm, a, b), { jid: b, subscription: "both", groups: [] });
    assert.deepEqual(await storedRosterItem(farm, b, a), { jid: a, subscription: "both", groups: [] });
    assert.deepEqual(await requests(a), []);
    as.end();
    bs.end();
  });

  test("a request to an offline user is stored and delivered at every initial presence until answered", async () => {
    const c = await farm.addUser("offreqc");
    const d = await farm.addUser("offreqd");
    const cs = await farm.driver.online(`${c}/pc`);
    cs.send(`<presence type='subscribe' to='${d}'/>`);
    assert.deepEqual(await nextPush(cs), { jid: d, subscription: "none", ask: "subscribe" });
    await eventually(async () => (await requests(d)).length === 1, "the stored request");

    // Connected but not yet available: requests wait for initial presence.
    const d1 = await farm.driver.open(`${d}/pc`);
    await d1.nothing(isSubscriptionStanza, 200);
    d1.send("<presence/>");
    const first = await d1.next(isPresence("subscribe", c));
    assert.equal(first.attrs.to, d);
    d1.end();

    const d2 = await farm.driver.online(`${d}/pc`);
    await d2.next(isPresence("subscribe", c));
    d2.send(`<presence type='subscribed' to='${c}'/>`);
    assert.deepEqual(await nextPush(d2), { jid: c, subscription: "from" });
    await cs.next(isPresence("subscribed", d));
    assert.deepEqual(await nextPush(cs), { jid: d, subscription: "to" });
    d2.end();

    const d3 = await farm.driver.online(`${d}/pc`);
    await d3.nothing(isSubscriptionStanza, 300);
    assert.deepEqual(await requests(d), []);
    d3.end();
    cs.end();
  });

  test("denying a request (unsubscribed) clears the requester's ask and stores nothing", async () => {
    const e = await farm.addUser("denye");
    const f = await farm.addUser("denyf");
    const es = await farm.driver.online(`${e}/pc`);
    const fs = await farm.driver.online(`${f}/pc`);
    es.send(`<presence type='subscribe' to='${f}'/>`);
    assert.deepEqual(await nextPush(es), { jid: f, subscription: "none", ask: "subscribe" });
    await fs.next(isPresence("subscribe", e));

    fs.send(`<presence type='unsubscribed' to='${e}'/>`);
    await es.next(isPresence("unsubscribed", f));
    assert.deepEqual(await nextPush(es), { jid: f, subscription: "none" });
    assert.deepEqual(await requests(f), []);
    assert.equal(await storedRosterItem(farm, f, e), null, "denying creates no item");
    await fs.nothing(isPush, 200);
    es.end();
    fs.end();
  });

  test("unsubscribe and unsubscribed walk both -> from/to -> none; the no-op ones are not delivered", async () => {
    const g = await farm.addUser("unsubg");
    const h = await farm.addUser("unsubh");
    await farm.storage.setRosterItem(g, { jid: h, subscription: "both", groups: [] });
    await farm.storage.setRosterItem(h, { jid: g, subscription: "both", groups: [] });
    const gs = await farm.driver.online(`${g}/pc`);
    const hs = await farm.driver.online(`${h}/pc`);
    await gs.next(isPresence(undefined, hs.full));
    await hs.next(isPresence(undefined, gs.full));

    // g stops receiving h's presence.
    gs.send(`<presence type='unsubscribe' to='${h}'/>`);
    assert.deepEqual(await nextPush(gs), { jid: h, subscription: "from" });
    await hs.next(isPresence("unsubscribe", g));
    assert.deepEqual(await nextPush(hs), { jid: g, subscription: "to" });

    // h cancels a subscription g no longer has: nothing changes anywhere.
    hs.send(`<presence type='unsubscribed' to='${g}'/>`);
    await hs.nothing(isPush, 300);
    await gs.nothing((el) => isPush(el) || isSubscriptionStanza(el), 0);

    // g cancels h's subscription: both end at none.
    gs.send(`<presence type='unsubscribed' to='${h}'/>`);
    assert.deepEqual(await nextPush(gs), { jid: h, subscription: "none" });
    await hs.next(isPresence("unavailable", gs.full));
    await hs.next(isPresence("unsubscribed", g));
    assert.deepEqual(await nextPush(hs), { jid: g, subscription: "none" });

    // Nothing left to cancel: no pushes, no deliveries.
    gs.send(`<presence type='unsubscribe' to='${h}'/>`);
    await hs.nothing((el) => isPush(el) || isSubscriptionStanza(el), 300);
    await gs.nothing(isPush, 0);
    assert.equal((await storedRosterItem(farm, g, h))?.subscription, "none");
    assert.equal((await storedRosterItem(farm, h, g))?.subscription, "none");
    gs.end();
    hs.end();
  });

  test("unsubscribe cancels a pending request, which is then not delivered at login", async () => {
    const n = await farm.addUser("canceln");
    const o = await farm.addUser("cancelo");
    const ns = await farm.driver.online(`${n}/pc`);
    ns.send(`<presence type='subscribe' to='${o}'/>`);
    assert.deepEqual(await nextPush(ns), { jid: o, subscription: "none", ask: "subscribe" });
    await eventually(async () => (await requests(o)).length === 1, "the stored request");
    ns.send(`<presence type='unsubscribe' to='${o}'/>`);
    assert.deepEqual(await nextPush(ns), { jid: o, subscription: "none" });
    await eventually(async () => (await requests(o)).length === 0, "the request to be withdrawn");
    const os = await farm.driver.online(`${o}/pc`);
    await os.nothing(isSubscriptionStanza, 300);
    os.end();
    ns.end();
  });

  test("a subscribe from someone already subscribed is answered by the server and not delivered", async () => {
    const i = await farm.addUser("autoi");
    const j = await farm.addUser("autoj");
    // j lost i's answer: i has j as "from", j still asks.
    await farm.storage.setRosterItem(i, { jid: j, subscription: "from", groups: [] });
    await farm.storage.setRosterItem(j, { jid: i, subscription: "none", ask: "subscribe", groups: [] });
    const is = await farm.driver.online(`${i}/pc`);
    const js = await farm.driver.online(`${j}/pc`);

    js.send(`<presence type='subscribe' to='${i}'/>`);
    await js.next(isPresence("subscribed", i));
    assert.deepEqual(await nextPush(js), { jid: i, subscription: "to" });
    await js.next(isPresence(undefined, is.full));

    // Again, now that j is subscribed: still answered by i's server, and j's
    // server drops the answer that changes nothing.
    js.send(`<presence type='subscribe' to='${i}'/>`);
    await js.nothing((el) => isPush(el) || isSubscriptionStanza(el), 300);
    await is.nothing((el) => isPush(el) || isSubscriptionStanza(el), 0);
    assert.deepEqual(await requests(i), []);
    is.end();
    js.end();
  });

  test("pre-approval: subscribed without a request marks the item approved; the later request is approved at once", async () => {
    const l = await farm.addUser("preapl");
    const m = await farm.addUser("preapm");
    const ls = await farm.driver.online(`${l}/pc`);
    const ms = await farm.driver.online(`${m}/pc`);

    ls.send(`<presence type='subscribed' to='${m}'/>`);
    assert.deepEqual(await nextPush(ls), { jid: m, subscription: "none", approved: "true" });
    await ms.nothing(isSubscriptionStanza, 200);

    ms.send(`<presence type='subscribe' to='${l}'/>`);
    assert.deepEqual(await nextPush(ms), { jid: l, subscription: "none", ask: "subscribe" });
    await ms.next(isPresence("subscribed", l));
    assert.deepEqual(await nextPush(ms), { jid: l, subscription: "to" });
    await ms.next(isPresence(undefined, ls.full));
    assert.deepEqual(await nextPush(ls), { jid: m, subscription: "from" });
    await ls.nothing(isSubscriptionStanza, 0);
    assert.deepEqual(await requests(l), []);
    ls.end();
    ms.end();
  });

  test("unsubscribed withdraws a pre-approval", async () => {
    const l = await farm.addUser("unprel");
    const m = await farm.addUser("unprem");
    const ls = await farm.driver.online(`${l}/pc`);
    ls.send(`<presence type='subscribed' to='${m}'/>`);
    assert.deepEqual(await nextPush(ls), { jid: m, subscription: "none", approved: "true" });
    ls.send(`<presence type='unsubscribed' to='${m}'/>`);
    assert.deepEqual(await nextPush(ls), { jid: m, subscription: "none" });

    const ms = await farm.driver.online(`${m}/pc`);
    ms.send(`<presence type='subscribe' to='${l}'/>`);
    await ls.next(isPresence("subscribe", m));
    await ms.nothing(isPresence("subscribed", l), 200);
    ls.end();
    ms.end();
  });

  test("a repeated request is stored once and delivered once; requests to full JIDs are bared", async () => {
    const q = await farm.addUser("dupq");
    const r = await farm.addUser("dupr");
    const qs = await farm.driver.online(`${q}/pc`);
    const rs = await farm.driver.online(`${r}/pc`);
    qs.send(`<presence type='subscribe' to='${r}/pc'/>`);
    assert.deepEqual(await nextPush(qs), { jid: r, subscription: "none", ask: "subscribe" });
    const req = await rs.next(isPresence("subscribe", q));
    assert.equal(req.attrs.to, r);
    qs.send(`<presence type='subscribe' to='${r}'/>`);
    await rs.nothing(isSubscriptionStanza, 300);
    await qs.nothing(isPush, 0);
    assert.deepEqual(await requests(r), [q]);

    // Another resource becoming available sees the pending request too.
    const rs2 = await farm.driver.online(`${r}/tablet`);
    await rs2.next(isPresence("subscribe", q));
    qs.end();
    rs.end();
    rs2.end();
  });

  test("subscription stanzas to accounts that do not exist are dropped without an answer", async () => {
    const p = await farm.addUser("ghostp");
    const ps = await farm.driver.online(`${p}/pc`);
    ps.send("<presence type='subscribe' to='ghost@localhost'/>");
    assert.deepEqual(await nextPush(ps), { jid: "ghost@localhost", subscription: "none", ask: "subscribe" });
    ps.send("<presence type='unsubscribed' to='ghost@localhost'/>");
    // Cancelling what never existed creates no roster item.
    ps.send("<presence type='unsubscribe' to='stranger@localhost'/>");
    ps.send("<presence type='unsubscribed' to='stranger@localhost'/>");
    await ps.nothing((el) => el.attrs.type === "error" || isSubscriptionStanza(el) || isPush(el), 300);
    assert.equal(await storedRosterItem(farm, p, "stranger@localhost"), null);
    assert.equal(await farm.storage.accountExists("ghost@localhost"), false);
    ps.end();
  });

  test("outbound subscription stanzas need a valid 'to'", async () => {
    const u = await farm.addUser("badto");
    const s = await farm.driver.online(`${u}/pc`);
    s.send("<presence type='subscribe' id='n1'/>");
    assert.equal(stanzaErrorCondition(await s.next((e) => e.attrs.id === "n1")), "bad-request");
    s.send("<presence type='subscribed' to='a@b@c' id='n2'/>");
    assert.equal(stanzaErrorCondition(await s.next((e) => e.attrs.id === "n2")), "jid-malformed");
    await s.nothing(isPush, 100);
    s.end();
  });
});
