import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { parseElement, readError, xml, type Element } from "@jabberfarm/xml";
import type { Subscription } from "@jabberfarm/xdb";
import { startSmFarm, type SmTestFarm, type TestSession } from "../testing.js";
import { capsVer } from "./pep-caps.js";
import { availableSession, keyedStore } from "./module-testing.js";

const PUBSUB = "http://jabber.org/protocol/pubsub";
const OWNER = `${PUBSUB}#owner`;
const EVENT = `${PUBSUB}#event`;
const ERRORS = `${PUBSUB}#errors`;
const INFO = "http://jabber.org/protocol/disco#info";
const ITEMS = "http://jabber.org/protocol/disco#items";
const AVATAR = "urn:xmpp:avatar:metadata";
const DEVICES = "eu.siacs.conversations.axolotl.devicelist";
const CLIENT_NODE = "https://jabberfarm.test/client";

/** A client's disco#info answer advertising `features` (with an extended form, so the hash covers one). */
function clientInfo(features: string[]): Element {
  return xml("query", { xmlns: INFO },
    xml("identity", { category: "client", type: "pc", name: "test" }),
    ...[INFO, ...features].map((f) => xml("feature", { var: f })),
    xml("x", { xmlns: "jabber:x:data", type: "result" },
      xml("field", { var: "FORM_TYPE", type: "hidden" }, xml("value", {}, "urn:xmpp:dataforms:softwareinfo")),
      xml("field", { var: "software" }, xml("value", {}, "pep-test"))));
}

const presenceWithCaps = (ver: string): string => `<presence><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='${CLIENT_NODE}' ver='${ver}'/></presence>`;
const isCapsQuery = (e: Element): boolean => e.name === "iq" && e.attrs.type === "get" && e.getChild("query", INFO)?.attrs.node?.startsWith(`${CLIENT_NODE}#`) === true;
const isEvent = (node: string) => (e: Element): boolean => e.name === "message" && e.getChild("event", EVENT)?.getChild("items")?.attrs.node === node;
const eventItem = (e: Element): Element | undefined => e.getChild("event", EVENT)!.getChild("items")!.firstElement();

/** Answers the SM's caps query with `info` (a liar sends other features than its hash says). */
async function answerCaps(s: TestSession, info: Element): Promise<void> {
  const q = await s.next(isCapsQuery);
  const answer = info.clone();
  answer.attrs.node = q.getChild("query", INFO)!.attrs.node!;
  s.send(xml("iq", { type: "result", id: q.attrs.id, to: q.attrs.from }, answer).toString());
}

const publishXml = (node: string, id: string, payload: string, options = ""): string =>
  `<iq type='set'><pubsub xmlns='${PUBSUB}'><publish node='${node}'><item id='${id}'>${payload}</item></publish>${options}</pubsub></iq>`;
const options = (fields: Record<string, string>): string =>
  `<publish-options><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>${PUBSUB}#publish-options</value></field>` +
  Object.entries(fields).map(([k, v]) => `<field var='pubsub#${k}'><value>${v}</value></field>`).join("") + "</x></publish-options>";
const itemsXml = (to: string, node: string, extra = "", attrs = ""): string =>
  `<iq type='get'${to ? ` to='${to}'` : ""}><pubsub xmlns='${PUBSUB}'><items node='${node}'${attrs}>${extra}</items></pubsub></iq>`;

function ok(r: Element): Element {
  assert.equal(r.attrs.type, "result", r.toString());
  return r;
}
/** The stanza error condition and the pubsub#errors condition of an error reply. */
function errors(r: Element): [string | undefined, string | undefined] {
  assert.equal(r.attrs.type, "error", r.toString());
  const error = r.getChild("error")!;
  return [readError(error).condition, error.getChildren().find((c) => c.ns === ERRORS)?.local];
}
const itemIds = (r: Element): string[] => r.getChild("pubsub", PUBSUB)!.getChild("items")!.getChildren("item").map((i) => i.attrs.id!);

describe("PEP (XEP-0163)", () => {
  let farm: SmTestFarm;
  before(async () => {
    farm = await startSmFarm({ pep: { maxNodes: 4, maxItemsPerNode: 5, maxItemBytes: 2048 } });
  });
  after(async () => farm.stop());

  /** Waits until everything queued for these users so far (presence fan-out included) is done, in order. */
  async function settle(...users: string[]): Promise<void> {
    for (const u of users) await farm.sm.sm.serial(u, () => undefined);
  }

  async function relate(a: string, b: string, ab: Subscription, ba: Subscription): Promise<void> {
    await farm.storage.setRosterItem(a, { jid: b, subscription: ab, groups: [] });
    await farm.storage.setRosterItem(b, { jid: a, subscription: ba, groups: [] });
  }

  test("publish auto-creates a node; items by all, max_items and id; disco shows the identity and the nodes by access", async () => {
    const ann = await farm.addUser("pann");
    const ben = await farm.addUser("pben");
    const eve = await farm.addUser("peve"); // no subscription
    await relate(ann, ben, "both", "both");
    const a = await availableSession(farm, `${ann}/pc`);
    const b = await availableSession(farm, `${ben}/pc`);
    const e = await availableSession(farm, `${eve}/pc`);

    const info = ok(await b.iq(`<iq type='get' to='${ann}'><query xmlns='${INFO}'/></iq>`)).getChild("query", INFO)!;
    assert.ok(info.getChildren("identity").some((i) => i.attrs.category === "pubsub" && i.attrs.type === "pep"));
    const features = info.getChildren("feature").map((f) => f.attrs.var);
    for (const f of ["publish", "publish-options", "access-whitelist", "persistent-items", "retrieve-items", "auto-create"]) assert.ok(features.includes(`${PUBSUB}#${f}`), f);

    for (const n of ["1", "2", "3"]) {
      const r = ok(await a.iq(publishXml("urn:xmpp:microblog:0", `p${n}`, `<entry xmlns='http://www.w3.org/2005/Atom'><title>post ${n}</title></entry>`, options({ max_items: "5" }))));
      assert.equal(r.getChild("pubsub", PUBSUB)!.getChild("publish")!.getChild("item")!.attrs.id, `p${n}`);
    }
    // Without an id the server gives one.
    const generated = ok(await a.iq(`<iq type='set'><pubsub xmlns='${PUBSUB}'><publish node='http://jabber.org/protocol/nick'><item><nick xmlns='http://jabber.org/protocol/nick'>Ann</nick></item></publish></pubsub></iq>`));
    assert.ok(generated.getChild("pubsub", PUBSUB)!.getChild("publish")!.getChild("item")!.attrs.id);

    assert.deepEqual(itemIds(ok(await b.iq(itemsXml(ann, "urn:xmpp:microblog:0")))), ["p1", "p2", "p3"]);
    assert.deepEqual(itemIds(ok(await b.iq(itemsXml(ann, "urn:xmpp:microblog:0", "", " max_items='2'")))), ["p2", "p3"]);
    const byId = ok(await a.iq(itemsXml("", "urn:xmpp:microblog:0", "<item id='p1'/>")));
    assert.deepEqual(itemIds(byId), ["p1"]);
    assert.equal(byId.getChild("pubsub", PUBSUB)!.getChild("items")!.getChild("item")!.getChild("entry", "http://www.w3.org/2005/Atom")!.getChildText("title"), "post 1");
    assert.deepEqual(errors(await b.iq(itemsXml(ann, "urn:xmpp:microblog:0", "<item id='nope'/>"))), ["item-not-found", undefined]);
    assert.deepEqual(errors(await b.iq(itemsXml(ann, "no-such-node"))), ["item-not-found", undefined]);
    // Presence access: a stranger is refused, and is not shown the nodes.
    assert.deepEqual(errors(await e.iq(itemsXml(ann, "urn:xmpp:microblog:0"))), ["not-authorized", "presence-subscription-required"]);
    assert.equal(errors(await e.iq(`<iq type='get' to='${ann}'><query xmlns='${ITEMS}'/></iq>`))[0], "service-unavailable");
    const nodes = ok(await b.iq(`<iq type='get' to='${ann}'><query xmlns='${ITEMS}'/></iq>`)).getChild("query", ITEMS)!.getChildren("item");
    assert.deepEqual(nodes.map((n) => [n.attrs.jid, n.attrs.node]), [[ann, "http://jabber.org/protocol/nick"], [ann, "urn:xmpp:microblog:0"]]);
    // Only the owner publishes.
    assert.deepEqual(errors(await b.iq(`<iq type='set' to='${ann}'><pubsub xmlns='${PUBSUB}'><publish node='x'><item id='1'><x xmlns='y'/></item></publish></pubsub></iq>`)), ["forbidden", undefined]);
    for (const s of [a, b, e]) s.end();
  });

  test("publish-options: preconditions met or conflict; whitelist and open nodes; configure changes the node", async () => {
    const ann = await farm.addUser("oann");
    const ben = await farm.addUser("oben");
    const eve = await farm.addUser("oeve");
    await relate(ann, ben, "both", "both");
    const a = await availableSession(farm, `${ann}/pc`);
    const b = await availableSession(farm, `${ben}/pc`);
    const e = await availableSession(farm, `${eve}/pc`);
    // XEP-0402 bookmarks: whitelist, persistent, max.
    const bookmarks = options({ persist_items: "true", max_items: "max", send_last_published_item: "never", access_model: "whitelist" });
    ok(await a.iq(publishXml("urn:xmpp:bookmarks:1", "room@conference.localhost", "<conference xmlns='urn:xmpp:bookmarks:1' autojoin='true'/>", bookmarks)));
    ok(await a.iq(publishXml("urn:xmpp:bookmarks:1", "other@conference.localhost", "<conference xmlns='urn:xmpp:bookmarks:1'/>", bookmarks)));
    assert.deepEqual(itemIds(ok(await a.iq(itemsXml("", "urn:xmpp:bookmarks:1")))), ["room@conference.localhost", "other@conference.localhost"]);
    assert.deepEqual(errors(await b.iq(itemsXml(ann, "urn:xmpp:bookmarks:1"))), ["not-allowed", "closed-node"]);
    // A precondition the node does not meet (XEP-0060 §7.1.5).
    assert.deepEqual(errors(await a.iq(publishXml("urn:xmpp:bookmarks:1", "x", "<conference xmlns='urn:xmpp:bookmarks:1'/>", options({ access_model: "presence" })))), ["conflict", "precondition-not-met"]);
    assert.deepEqual(errors(await a.iq(publishXml("urn:xmpp:bookmarks:1", "x", "<conference xmlns='urn:xmpp:bookmarks:1'/>", options({ access_model: "roster" })))), ["conflict", "precondition-not-met"]);

    // OMEMO: the device list is open; then the owner changes it to presence by configuration.
    ok(await a.iq(publishXml(DEVICES, "current", "<list xmlns='eu.siacs.conversations.axolotl'><device id='1'/></list>", options({ access_model: "open" }))));
    assert.deepEqual(itemIds(ok(await e.iq(itemsXml(ann, DEVICES)))), ["current"]);
    const form = ok(await a.iq(`<iq type='get'><pubsub xmlns='${OWNER}'><configure node='${DEVICES}'/></pubsub></iq>`))
      .getChild("pubsub", OWNER)!.getChild("configure")!.getChild("x", "jabber:x:data")!;
    const field = (v: string) => form.getChildren("field").find((f) => f.attrs.var === v)?.getChildText("value");
    assert.deepEqual([field("pubsub#access_model"), field("pubsub#persist_items"), field("pubsub#max_items")], ["open", "1", "1"]);
    ok(await a.iq(`<iq type='set'><pubsub xmlns='${OWNER}'><configure node='${DEVICES}'><x xmlns='jabber:x:data' type='submit'>` +
      `<field var='FORM_TYPE' type='hidden'><value>${PUBSUB}#node_config</value></field><field var='pubsub#access_model'><value>presence</value></field></x></configure></pubsub></iq>`));
    assert.deepEqual(errors(await e.iq(itemsXml(ann, DEVICES))), ["not-authorized", "presence-subscription-required"]);
    assert.deepEqual(itemIds(ok(await b.iq(itemsXml(ann, DEVICES)))), ["current"]);
    assert.deepEqual(errors(await a.iq(`<iq type='set'><pubsub xmlns='${OWNER}'><configure node='${DEVICES}'><x xmlns='jabber:x:data' type='submit'><field var='pubsub#max_items'><value>99</value></field></x></configure></pubsub></iq>`)),
      ["not-acceptable", "invalid-options"]);
    // Subscriptions are implicit in PEP.
    assert.deepEqual(errors(await b.iq(`<iq type='set' to='${ann}'><pubsub xmlns='${PUBSUB}'><subscribe node='${DEVICES}' jid='${ben}'/></pubsub></iq>`)), ["forbidden", undefined]);
    assert.deepEqual(errors(await a.iq(`<iq type='set'><pubsub xmlns='${PUBSUB}'><subscribe node='${DEVICES}' jid='${ann}'/></pubsub></iq>`)), ["feature-not-implemented", "unsupported"]);
    for (const s of [a, b, e]) s.end();
  });

  test("notifications reach the +notify resources of the owner and of subscribed contacts; hashes are verified and cached", async () => {
    const ann = await farm.addUser("nann");
    const ben = await farm.addUser("nben");
    const cid = await farm.addUser("ncid");
    await relate(ann, ben, "both", "both");
    await relate(ann, cid, "both", "both");
    const notifying = clientInfo([`${AVATAR}+notify`, `${DEVICES}+notify`]);
    const ver = capsVer(notifying, "sha-1")!;
    const plain = clientInfo(["urn:xmpp:ping"]);
    const plainVer = capsVer(plain, "sha-1")!;
    const a = await farm.driver.online(`${ann}/pc`, presenceWithCaps(ver));
    await answerCaps(a, notifying);
    const b = await farm.driver.online(`${ben}/pc`, presenceWithCaps(ver));
    // Same hash: already verified (from ann's resource), no query for ben.
    const c = await farm.driver.online(`${cid}/pc`, presenceWithCaps(plainVer));
    await answerCaps(c, plain);
    await b.nothing(isCapsQuery, 200);
    await settle(ben, cid, ann);

    const metadata = (id: string) => `<metadata xmlns='${AVATAR}'><info id='${id}' bytes='10' type='image/png'/></metadata>`;
    ok(await a.iq(publishXml(AVATAR, "sha1-a", metadata("sha1-a"))));
    const own = await a.next(isEvent(AVATAR));
    assert.equal(eventItem(own)!.attrs.id, "sha1-a");
    const got = await b.next(isEvent(AVATAR));
    assert.equal(got.attrs.from, ann);
    assert.equal(got.attrs.to, b.full);
    assert.equal(got.attrs.type, "headline");
    assert.equal(eventItem(got)!.getChild("metadata", AVATAR)!.getChild("info")!.attrs.id, "sha1-a");
    await c.nothing(isEvent(AVATAR), 300);

    // A liar: its answer does not hash to its ver, so the string is not cached and the next resource is asked again.
    const liarVer = capsVer(clientInfo(["urn:xmpp:ping", "lie"]), "sha-1")!;
    const c2 = await farm.driver.online(`${cid}/liar1`, presenceWithCaps(liarVer));
    await answerCaps(c2, notifying);
    const c3 = await farm.driver.online(`${cid}/liar2`, presenceWithCaps(liarVer));
    await answerCaps(c3, plain);
    // The liar that said +notify gets the last item (for itself only), the other not.
    assert.equal(eventItem(await c2.next(isEvent(AVATAR)))!.attrs.id, "sha1-a");
    await c3.nothing(isEvent(AVATAR), 300);
    for (const s of [a, b, c, c2, c3]) s.end();
  });

  test("last item when a +notify resource comes online; retract and delete are notified", async () => {
    const ann = await farm.addUser("lann");
    const ben = await farm.addUser("lben");
    await relate(ann, ben, "both", "both");
    const notifying = clientInfo([`${AVATAR}+notify`, "urn:xmpp:tune+notify"]);
    const ver = capsVer(notifying, "sha-1")!;
    const a = await availableSession(farm, `${ann}/pc`);
    ok(await a.iq(publishXml(AVATAR, "first", `<metadata xmlns='${AVATAR}'/>`)));
    ok(await a.iq(publishXml(AVATAR, "second", `<metadata xmlns='${AVATAR}'><info id='second' bytes='1' type='image/png'/></metadata>`)));
    ok(await a.iq(publishXml("urn:xmpp:tune", "t", "<tune xmlns='urn:xmpp:tune'><title>x</title></tune>", options({ max_items: "3" }))));
    ok(await a.iq(publishXml("urn:xmpp:tune", "u", "<tune xmlns='urn:xmpp:tune'><title>y</title></tune>")));

    // ben comes online with caps not seen before: asked, verified, then given the last items.
    const b = await farm.driver.online(`${ben}/pc`, presenceWithCaps(ver));
    await answerCaps(b, notifying);
    assert.equal(eventItem(await b.next(isEvent(AVATAR)))!.attrs.id, "second", "max_items 1: only the last one is kept and sent");
    assert.equal(eventItem(await b.next(isEvent("urn:xmpp:tune")))!.attrs.id, "u");
    await b.nothing(isEvent(AVATAR), 200);

    ok(await a.iq(`<iq type='set'><pubsub xmlns='${PUBSUB}'><retract node='urn:xmpp:tune' notify='true'><item id='t'/></retract></pubsub></iq>`));
    const retracted = await b.next(isEvent("urn:xmpp:tune"));
    assert.equal(eventItem(retracted)!.local, "retract");
    assert.equal(eventItem(retracted)!.attrs.id, "t");
    assert.deepEqual(errors(await a.iq(`<iq type='set'><pubsub xmlns='${PUBSUB}'><retract node='urn:xmpp:tune'><item id='t'/></retract></pubsub></iq>`)), ["item-not-found", undefined]);
    ok(await a.iq(`<iq type='set'><pubsub xmlns='${OWNER}'><delete node='urn:xmpp:tune'/></pubsub></iq>`));
    const deleted = await b.next((e) => e.name === "message" && e.getChild("event", EVENT)?.getChild("delete")?.attrs.node === "urn:xmpp:tune");
    assert.equal(deleted.attrs.from, ann);
    assert.deepEqual(errors(await b.iq(itemsXml(ann, "urn:xmpp:tune"))), ["item-not-found", undefined]);
    for (const s of [a, b]) s.end();
  });

  test("the last item when the owner approves a contact's subscription", async () => {
    const ann = await farm.addUser("sann");
    const ben = await farm.addUser("sben");
    // ann sees ben's presence; ben does not see ann's yet, so he may not read her presence-model nodes.
    await relate(ann, ben, "to", "from");
    const notifying = clientInfo(["http://jabber.org/protocol/mood+notify"]);
    const a = await availableSession(farm, `${ann}/pc`);
    ok(await a.iq(publishXml("http://jabber.org/protocol/mood", "current", "<mood xmlns='http://jabber.org/protocol/mood'><happy/></mood>")));
    const b = await farm.driver.online(`${ben}/pc`, presenceWithCaps(capsVer(notifying, "sha-1")!));
    await answerCaps(b, notifying);
    // Nothing while he is not subscribed: observed after ann's SM has seen his presence and she has sent an update he must not get either.
    await a.next((e) => e.name === "presence" && e.attrs.from === b.full);
    await settle(ann);
    ok(await a.iq(publishXml("http://jabber.org/protocol/mood", "current", "<mood xmlns='http://jabber.org/protocol/mood'><sad/></mood>")));
    await b.nothing(isEvent("http://jabber.org/protocol/mood"), 300);
    b.send(`<presence type='subscribe' to='${ann}'/>`);
    await a.next((e) => e.name === "presence" && e.attrs.type === "subscribe");
    a.send(`<presence type='subscribed' to='${ben}'/>`);
    const got = await b.next(isEvent("http://jabber.org/protocol/mood"));
    assert.ok(eventItem(got)!.getChild("mood", "http://jabber.org/protocol/mood")!.getChild("sad"), got.toString());
    for (const s of [a, b]) s.end();
  });

  test("limits: bytes per item, items per node, nodes per user; the data goes with the account", async () => {
    const ann = await farm.addUser("qann");
    const a = await availableSession(farm, `${ann}/pc`);
    const big = `<data xmlns='urn:xmpp:avatar:data'>${"A".repeat(3000)}</data>`;
    assert.deepEqual(errors(await a.iq(publishXml("urn:xmpp:avatar:data", "big", big))), ["not-acceptable", "payload-too-big"]);
    assert.deepEqual(errors(await a.iq(publishXml("n0", "1", "<x xmlns='y'/>", options({ max_items: "6" })))), ["conflict", "precondition-not-met"]);
    for (let i = 1; i <= 7; i++) ok(await a.iq(publishXml("n0", `i${i}`, `<x xmlns='y'>${i}</x>`, options({ max_items: "max" }))));
    assert.deepEqual(itemIds(ok(await a.iq(itemsXml("", "n0")))), ["i3", "i4", "i5", "i6", "i7"], "max is 5: the oldest went");
    for (const n of ["n1", "n2", "n3"]) ok(await a.iq(publishXml(n, "1", "<x xmlns='y'/>")));
    assert.deepEqual(errors(await a.iq(publishXml("n4", "1", "<x xmlns='y'/>"))), ["policy-violation", "max-nodes-exceeded"]);
    // Not persistent: notified, not kept.
    ok(await a.iq(`<iq type='set'><pubsub xmlns='${OWNER}'><configure node='n3'><x xmlns='jabber:x:data' type='submit'><field var='pubsub#persist_items'><value>0</value></field></x></configure></pubsub></iq>`));
    ok(await a.iq(publishXml("n3", "2", "<x xmlns='y'/>", options({ persist_items: "false" }))));
    assert.deepEqual(itemIds(ok(await a.iq(itemsXml("", "n3")))), []);

    const store = keyedStore(farm, "pep");
    assert.ok((await store.list(ann)).items.length > 0);
    ok(await a.iq("<iq type='set' to='localhost'><query xmlns='jabber:iq:register'><remove/></query></iq>"));
    // Read back as a new account of the same name would see it.
    await farm.addUser("qann");
    assert.equal((await store.list(ann)).items.length, 0, "nodes and items went with the account");
  });

  test("bookmarks compatibility: private XML bookmarks and the PEP node are one list", async () => {
    const ann = await farm.addUser("bann");
    const a = await availableSession(farm, `${ann}/pc`);
    const features = ok(await a.iq(`<iq type='get' to='${ann}'><query xmlns='${INFO}'/></iq>`)).getChild("query", INFO)!.getChildren("feature").map((f) => f.attrs.var);
    assert.ok(features.includes("urn:xmpp:bookmarks:1#compat"));
    // An old client stores two bookmarks in private XML: the PEP node has them.
    ok(await a.iq("<iq type='set'><query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'>" +
      "<conference jid='one@conference.localhost' name='One' autojoin='true'><nick>ann</nick></conference><conference jid='two@conference.localhost'/>" +
      "<url name='web' url='https://example.org'/></storage></query></iq>"));
    const pepItems = ok(await a.iq(itemsXml("", "urn:xmpp:bookmarks:1"))).getChild("pubsub", PUBSUB)!.getChild("items")!.getChildren("item");
    assert.deepEqual(pepItems.map((i) => i.attrs.id), ["one@conference.localhost", "two@conference.localhost"]);
    const one = pepItems[0]!.getChild("conference", "urn:xmpp:bookmarks:1")!;
    assert.deepEqual([one.attrs.name, one.attrs.autojoin, one.getChildText("nick")], ["One", "true", "ann"]);
    // A new client adds one through PEP and removes one: the old client reads the same list.
    ok(await a.iq(publishXml("urn:xmpp:bookmarks:1", "three@conference.localhost", "<conference xmlns='urn:xmpp:bookmarks:1' name='Three'/>")));
    ok(await a.iq(`<iq type='set'><pubsub xmlns='${PUBSUB}'><retract node='urn:xmpp:bookmarks:1'><item id='two@conference.localhost'/></retract></pubsub></iq>`));
    const legacy = ok(await a.iq("<iq type='get'><query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'/></query></iq>"))
      .getChild("query", "jabber:iq:private")!.getChild("storage", "storage:bookmarks")!.getChildren("conference");
    assert.deepEqual(legacy.map((c) => [c.attrs.jid, c.attrs.name, c.attrs.autojoin]), [["one@conference.localhost", "One", "true"], ["three@conference.localhost", "Three", "false"]]);
    // Whitelist: nobody else reads them.
    const node = ok(await a.iq(`<iq type='get'><pubsub xmlns='${OWNER}'><configure node='urn:xmpp:bookmarks:1'/></pubsub></iq>`)).toString();
    assert.match(node, /<field var=["']pubsub#access_model["'][^>]*><value>whitelist<\/value>/);
    // Other private data is still private.ts's.
    ok(await a.iq("<iq type='set'><query xmlns='jabber:iq:private'><prefs xmlns='urn:example:prefs'>x</prefs></query></iq>"));
    a.end();
  });

  test("verification strings: XEP-0115's examples (§5.2 simple, §5.3 with an extended form)", () => {
    const simple = parseElement(`<query xmlns='${INFO}'><identity category='client' type='pc' name='Exodus 0.9.1'/><feature var='http://jabber.org/protocol/caps'/>` +
      "<feature var='http://jabber.org/protocol/disco#info'/><feature var='http://jabber.org/protocol/disco#items'/><feature var='http://jabber.org/protocol/muc'/></query>");
    assert.equal(capsVer(simple, "sha-1"), "QgayPKawpkPSDYmwT/WM94uAlu0=");
    const complex = parseElement(`<query xmlns='${INFO}'><identity xml:lang='en' category='client' name='Psi 0.11' type='pc'/>` +
      "<identity xml:lang='el' category='client' name='Ψ 0.11' type='pc'/><feature var='http://jabber.org/protocol/caps'/>" +
      "<feature var='http://jabber.org/protocol/disco#info'/><feature var='http://jabber.org/protocol/disco#items'/><feature var='http://jabber.org/protocol/muc'/>" +
      "<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='hidden'><value>urn:xmpp:dataforms:softwareinfo</value></field>" +
      "<field var='ip_version'><value>ipv4</value><value>ipv6</value></field><field var='os'><value>Mac</value></field>" +
      "<field var='os_version'><value>10.5.1</value></field><field var='software'><value>Psi</value></field>" +
      "<field var='software_version'><value>0.11</value></field></x></query>");
    assert.equal(capsVer(complex, "sha-1"), "q07IKJEyjvHSyhy//CH0CxmKi8w=");
    // A duplicate feature makes the answer unverifiable (§5.4).
    complex.append(xml("feature", { var: "http://jabber.org/protocol/muc" }));
    assert.equal(capsVer(complex, "sha-1"), undefined);
  });
});
