import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { parseElement, stanzaErrorCondition, type Element } from "@jabberfarm/xml";
import { startSmFarm, type SmTestFarm, type TestSession } from "../testing.js";
import { archivable, archiveId } from "./mam.js";
import { archiveStore, availableSession, eventually, isMessage } from "./module-testing.js";

const NS = "urn:xmpp:mam:2";
const SID = "urn:xmpp:sid:0";
const RSM = "http://jabber.org/protocol/rsm";

interface Answer {
  results: Element[];
  fin: Element;
  /** Archive ids of the results, in the order they came. */
  ids: string[];
  bodies: string[];
}

let qn = 0;
/** Runs a MAM query: the result messages, then the iq's <fin/>. */
async function mamQuery(s: TestSession, form: Record<string, string | string[]> = {}, rsm = ""): Promise<Answer> {
  const queryid = `q${++qn}`;
  const fields = Object.entries(form).map(([k, v]) => `<field var='${k}'>${(Array.isArray(v) ? v : [v]).map((x) => `<value>${x}</value>`).join("")}</field>`).join("");
  const x = fields === "" ? "" : `<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>${NS}</value></field>${fields}</x>`;
  const set = rsm === "" ? "" : `<set xmlns='${RSM}'>${rsm}</set>`;
  const r = await s.iq(`<iq type='set'><query xmlns='${NS}' queryid='${queryid}'>${x}${set}</query></iq>`);
  assert.equal(r.attrs.type, "result", r.toString());
  const results: Element[] = [];
  for (;;) {
    const i = s.received.findIndex((e) => e.getChild("result", NS)?.attrs.queryid === queryid);
    if (i < 0) break;
    results.push(s.received.splice(i, 1)[0]!);
    s.raws.splice(i, 1);
  }
  const inner = (e: Element) => e.getChild("result", NS)!.getChild("forwarded", "urn:xmpp:forward:0")!.getChild("message", "jabber:client")!;
  return {
    results, fin: r.getChild("fin", NS)!,
    ids: results.map((e) => e.getChild("result", NS)!.attrs.id!),
    bodies: results.map((e) => inner(e).getChildText("body") ?? ""),
  };
}

const rsmOf = (a: Answer, name: string): string | undefined => a.fin.getChild("set", RSM)?.getChildText(name);

describe("message archive (MAM)", () => {
  let farm: SmTestFarm;
  before(async () => {
    farm = await startSmFarm({ mam: { maxItems: 5, trimEvery: 1 } });
    for (const u of ["amy", "bo", "cy", "di", "ed", "fay", "gil", "hal", "ida"]) await farm.addUser(u);
  });
  after(async () => farm.stop());
  const count = async (user: string) => (await archiveStore(farm, "mam").count(user)).count;

  test("both sides archived with stanza ids; paging forwards and backwards with RSM; with and ids filters", async () => {
    const amy = await availableSession(farm, "amy@localhost/a");
    const bo = await availableSession(farm, "bo@localhost/b");
    for (let i = 1; i <= 4; i++) {
      const [from, to] = i % 2 === 1 ? [amy, bo] : [bo, amy];
      from.send(`<message type='chat' to='${to.bare}' id='m${i}'><body>${i}</body></message>`);
      await eventually(() => to.received.some(isMessage), 3000, "the message");
      const raw = to.raws[to.received.findIndex(isMessage)]!;
      const got = await to.next(isMessage);
      const sid = got.getChild("stanza-id", SID);
      assert.ok(sid, `a stanza id on ${got.toString()}`);
      assert.equal(sid.attrs.by, to.bare);
      // The sender's text, byte for byte, with the stanza id added at its end.
      const sent = `<message type='chat' to='${to.bare}' id='m${i}' from='${from.full}' xmlns='jabber:client'><body>${i}</body>` +
        `<stanza-id xmlns='${SID}' by='${to.bare}' id='${sid.attrs.id}'/></message>`;
      assert.equal(raw, sent);
    }
    // Not archived: a chat state alone, a no-store hint, a headline.
    amy.send("<message type='chat' to='bo@localhost' id='cs'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>");
    amy.send("<message type='chat' to='bo@localhost' id='ns'><body>x</body><no-store xmlns='urn:xmpp:hints'/></message>");
    amy.send("<message type='headline' to='bo@localhost' id='hl'><body>x</body></message>");
    for (const id of ["cs", "ns", "hl"]) assert.equal((await bo.next(isMessage)).attrs.id, id);
    await eventually(async () => (await count("amy@localhost")) === 4 && (await count("bo@localhost")) === 4, 3000, "4 archived on each side");

    const all = await mamQuery(amy);
    assert.deepEqual(all.bodies, ["1", "2", "3", "4"]);
    assert.equal(all.fin.attrs.complete, "true");
    assert.equal(rsmOf(all, "count"), "4");
    assert.equal(rsmOf(all, "first"), all.ids[0]);
    assert.equal(rsmOf(all, "last"), all.ids[3]);
    const r0 = all.results[0]!;
    assert.equal(r0.attrs.to, "amy@localhost/a");
    assert.equal(r0.attrs.from, "amy@localhost");
    assert.ok(r0.getChild("result", NS)!.getChild("forwarded", "urn:xmpp:forward:0")!.getChild("delay", "urn:xmpp:delay")?.attrs.stamp);

    // Forwards, two at a time.
    const p1 = await mamQuery(amy, {}, "<max>2</max>");
    assert.deepEqual([p1.bodies, p1.fin.attrs.complete], [["1", "2"], undefined]);
    const p2 = await mamQuery(amy, {}, `<max>2</max><after>${p1.ids[1]}</after>`);
    assert.deepEqual([p2.bodies, p2.fin.attrs.complete], [["3", "4"], "true"]);
    // Backwards from the end: the last page first, each page in time order.
    const b1 = await mamQuery(amy, {}, "<max>3</max><before/>");
    assert.deepEqual([b1.bodies, b1.fin.attrs.complete], [["2", "3", "4"], undefined]);
    const b2 = await mamQuery(amy, {}, `<max>3</max><before>${b1.ids[0]}</before>`);
    assert.deepEqual([b2.bodies, b2.fin.attrs.complete], [["1"], "true"]);

    // The recipient's stanza id is its archive id.
    const boAll = await mamQuery(bo);
    assert.deepEqual(boAll.bodies, ["1", "2", "3", "4"]);
    const ids = await mamQuery(bo, { ids: [boAll.ids[2]!, boAll.ids[0]!] });
    assert.deepEqual(ids.bodies, ["1", "3"]);
    assert.deepEqual((await mamQuery(bo, { "after-id": boAll.ids[0]!, "before-id": boAll.ids[3]! })).bodies, ["2", "3"]);
    assert.deepEqual((await mamQuery(amy, { with: "bo@localhost/b" })).bodies, ["1", "2", "3", "4"]);
    assert.deepEqual((await mamQuery(amy, { with: "nobody@localhost" })).bodies, []);
    const future = new Date(Date.now() + 3_600_000).toISOString();
    assert.deepEqual((await mamQuery(amy, { start: future })).bodies, []);
    assert.deepEqual((await mamQuery(amy, { end: future })).bodies.length, 4);
    for (const s of [amy, bo]) s.end();
  });

  test("a message that comes again (a redelivered route) is archived once; a forged stanza id is replaced", async () => {
    const cy = await availableSession(farm, "cy@localhost/a");
    const di = await availableSession(farm, "di@localhost/b");
    const msg = `<message type='chat' to='di@localhost' id='again'><body>once</body><stanza-id xmlns='${SID}' by='di@localhost' id='forged'/></message>`;
    cy.send(msg);
    cy.send(msg);
    const first = await di.next(isMessage);
    const second = await di.next(isMessage);
    const sids = (e: Element) => e.getChildren("stanza-id", SID).map((s) => s.attrs.id);
    assert.equal(sids(first).length, 1);
    assert.notEqual(sids(first)[0], "forged");
    assert.deepEqual(sids(second), sids(first), "the same message gets the same id");
    await eventually(async () => (await count("di@localhost")) === 1 && (await count("cy@localhost")) === 1, 3000, "archived");
    await di.nothing(isMessage, 100);
    assert.equal(await count("di@localhost"), 1);
    assert.deepEqual((await mamQuery(di)).ids, sids(first));
    for (const s of [cy, di]) s.end();
  });

  test("an offline message is archived, and delivered later with its archive id", async () => {
    const ed = await availableSession(farm, "ed@localhost/a");
    ed.send("<message type='chat' to='fay@localhost' id='off'><body>while away</body></message>");
    await eventually(async () => (await count("fay@localhost")) === 1, 3000, "archived for the offline user");
    const fay = await availableSession(farm, "fay@localhost/x");
    const got = await fay.next(isMessage);
    assert.equal(got.getChildText("body"), "while away");
    const q = await mamQuery(fay);
    assert.deepEqual(q.bodies, ["while away"]);
    assert.equal(got.getChild("stanza-id", SID)?.attrs.id, q.ids[0]);
    for (const s of [ed, fay]) s.end();
  });

  test("preferences: never for a contact, default never, always for a contact; a get shows them", async () => {
    const gil = await availableSession(farm, "gil@localhost/a");
    const hal = await availableSession(farm, "hal@localhost/b");
    const set = await gil.iq(`<iq type='set'><prefs xmlns='${NS}' default='always'><always/><never><jid>hal@localhost</jid></never></prefs></iq>`);
    assert.equal(set.attrs.type, "result");
    hal.send("<message type='chat' to='gil@localhost' id='p1'><body>not kept by gil</body></message>");
    gil.send("<message type='chat' to='hal@localhost' id='p2'><body>not kept by gil either</body></message>");
    await gil.next(isMessage);
    await hal.next(isMessage);
    await eventually(async () => (await count("hal@localhost")) === 2, 3000, "hal keeps both");
    assert.equal(await count("gil@localhost"), 0);
    await gil.iq(`<iq type='set'><prefs xmlns='${NS}' default='never'><always><jid>hal@localhost</jid></always><never/></prefs></iq>`);
    const got = await gil.iq(`<iq type='get'><prefs xmlns='${NS}'/></iq>`);
    const prefs = got.getChild("prefs", NS)!;
    assert.equal(prefs.attrs.default, "never");
    assert.deepEqual(prefs.getChild("always")!.getChildren("jid").map((j) => j.text()), ["hal@localhost"]);
    hal.send("<message type='chat' to='gil@localhost' id='p3'><body>kept now</body></message>");
    await gil.next(isMessage);
    await eventually(async () => (await count("gil@localhost")) === 1, 3000, "gil keeps it");
    assert.equal(stanzaErrorCondition(await gil.iq(`<iq type='set'><prefs xmlns='${NS}' default='sometimes'/></iq>`)), "bad-request");
    for (const s of [gil, hal]) s.end();
  });

  test("the size limit keeps the newest; bad queries are refused; the form; disco; the archive goes with the account", async () => {
    const ida = await availableSession(farm, "ida@localhost/a");
    for (let i = 1; i <= 8; i++) ida.send(`<message type='chat' to='amy@localhost' id='l${i}'><body>${i}</body></message>`);
    await eventually(async () => (await mamQuery(ida)).bodies.join() === "4,5,6,7,8", 3000, "the newest 5");
    assert.equal(stanzaErrorCondition(await ida.iq(`<iq type='set'><query xmlns='${NS}'><set xmlns='${RSM}'><after>nope</after></set></query></iq>`)), "item-not-found");
    const bad = "<x xmlns='jabber:x:data' type='submit'><field var='start'><value>yesterday</value></field></x>";
    assert.equal(stanzaErrorCondition(await ida.iq(`<iq type='set'><query xmlns='${NS}'>${bad}</query></iq>`)), "bad-request");
    const unknown = "<x xmlns='jabber:x:data' type='submit'><field var='colour'><value>red</value></field></x>";
    assert.equal(stanzaErrorCondition(await ida.iq(`<iq type='set'><query xmlns='${NS}'>${unknown}</query></iq>`)), "bad-request");
    const form = await ida.iq(`<iq type='get'><query xmlns='${NS}'/></iq>`);
    assert.ok(form.getChild("query", NS)!.getChild("x", "jabber:x:data")!.getChildren("field").some((f) => f.attrs.var === "with"));
    const info = await ida.iq("<iq type='get' to='ida@localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
    const features = info.getChild("query")!.getChildren("feature").map((f) => f.attrs.var);
    for (const f of [NS, SID]) assert.ok(features.includes(f), `${f} in ${features.join(", ")}`);
    const gone = await ida.iq("<iq type='set'><query xmlns='jabber:iq:register'><remove/></query></iq>");
    assert.equal(gone.attrs.type, "result");
    assert.equal(await count("ida@localhost"), 0);
  });
});

describe("MAM: retention", () => {
  let farm: SmTestFarm;
  before(async () => {
    farm = await startSmFarm({ mam: { retentionDays: 1 } });
    await farm.addUser("old");
  });
  after(async () => farm.stop());

  test("messages past the retention are neither answered nor kept after a login", async () => {
    const store = archiveStore(farm, "mam");
    const twoDays = new Date(Date.now() - 2 * 86_400_000).toISOString();
    await store.append("old@localhost", "<message xmlns='jabber:client'><body>ancient</body></message>", { id: "ancient", when: twoDays });
    await store.append("old@localhost", "<message xmlns='jabber:client'><body>recent</body></message>", { id: "recent" });
    const s = await availableSession(farm, "old@localhost/a");
    assert.deepEqual((await mamQuery(s)).bodies, ["recent"]);
    await eventually(async () => (await store.count("old@localhost")).count === 1, 3000, "the old one deleted");
    s.end();
  });
});

describe("MAM: what is archived, under which id", () => {
  const el = (s: string): Element => parseElement(s, "jabber:client");
  test("archivable", () => {
    assert.equal(archivable(el("<message type='chat'><body>x</body></message>")), true);
    assert.equal(archivable(el("<message><body>x</body></message>")), true);
    assert.equal(archivable(el("<message type='chat'><store xmlns='urn:xmpp:hints'/><received xmlns='urn:xmpp:receipts'/></message>")), true);
    assert.equal(archivable(el("<message type='chat'><received xmlns='urn:xmpp:receipts'/></message>")), false);
    assert.equal(archivable(el("<message type='groupchat'><body>x</body></message>")), false);
    assert.equal(archivable(el("<message type='chat'><body>x</body><no-permanent-store xmlns='urn:xmpp:hints'/></message>")), false);
  });
  test("archive ids: the same message, the same id; without an id of its own, a fresh one", () => {
    const m = "<message type='chat' from='a@x/r' to='b@x' id='1'><body>hi</body></message>";
    assert.equal(archiveId("b@x", el(m)), archiveId("b@x", el(m)));
    assert.notEqual(archiveId("b@x", el(m)), archiveId("a@x", el(m)));
    assert.notEqual(archiveId("b@x", el(m)), archiveId("b@x", el(m.replace("hi", "ho"))));
    const noId = "<message type='chat' from='a@x/r' to='b@x'><body>hi</body></message>";
    assert.notEqual(archiveId("b@x", el(noId)), archiveId("b@x", el(noId)));
  });
});
