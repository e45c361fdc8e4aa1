// The per-user limits of the modules (docs/security.md, "Quotas"): a user
// or sender over one gets the stanza error its protocol asks for, with a
// text saying why, and what is stored stays within the limit.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { stanzaErrorCondition, type Element } from "@jabberfarm/xml";
import { startSmFarm, type SmTestFarm, type TestSession } from "../testing.js";
import { archiveStore, availableSession, eventually, keyedStore, storedRosterItem } from "./module-testing.js";

const ROSTER = "jabber:iq:roster";
const PRIVATE = "jabber:iq:private";

const errorOf = (reply: Element): { condition: string | undefined; text: string | undefined } => ({
  condition: stanzaErrorCondition(reply),
  text: reply.getChild("error")?.getChildText("text", "urn:ietf:params:xml:ns:xmpp-stanzas"),
});
const isError = (from: string) => (e: Element): boolean => e.attrs.type === "error" && e.attrs.from === from;

function expectError(reply: Element, condition: string, text: RegExp): void {
  assert.equal(reply.attrs.type, "error", reply.toString());
  const e = errorOf(reply);
  assert.equal(e.condition, condition, reply.toString());
  assert.match(e.text ?? "", text);
}

describe("quotas", () => {
  let farm: SmTestFarm;
  before(async () => {
    farm = await startSmFarm({
      offline: { limit: 100, maxBytes: 50_000 },
      roster: { maxItems: 10, maxItemBytes: 300 },
      subscription: {
        maxPending: 3, maxPendingBytes: 100_000, maxRequestBytes: 1000,
        inboundPerSender: { count: 4, seconds: 60 }, outboundPerUser: { count: 6, seconds: 60 },
      },
      private: { maxItems: 3, maxItemBytes: 200, maxBytes: 400 },
      vcard: { maxBytes: 300 },
      presence: { maxDirected: 3 },
    });
  });
  after(async () => farm.stop());

  const rosterSet = (s: TestSession, item: string) => s.iq(`<iq type='set'><query xmlns='${ROSTER}'>${item}</query></iq>`);

  test("roster: a new item beyond maxItems is resource-constraint, a too large one not-acceptable", async () => {
    const u = await farm.addUser("rfull");
    const s = await farm.driver.open(`${u}/pc`);
    for (let i = 0; i < 10; i++) assert.equal((await rosterSet(s, `<item jid='c${i}@example.org'/>`)).attrs.type, "result");
    expectError(await rosterSet(s, "<item jid='c10@example.org'/>"), "resource-constraint", /roster is full \(10 items\)/);
    // Changing an item that is there is still fine.
    assert.equal((await rosterSet(s, "<item jid='c0@example.org' name='Zero'/>")).attrs.type, "result");
    expectError(await rosterSet(s, `<item jid='c1@example.org' name='${"n".repeat(300)}'/>`), "not-acceptable", /larger than 300 bytes/);
    // An outbound subscription to a new contact would add an item: refused the same way, and not sent.
    s.send("<presence type='subscribe' to='c11@example.org' id='sub6'/>");
    expectError(await s.next((e) => e.attrs.id === "sub6"), "resource-constraint", /roster is full/);
    const roster = await farm.storage.getRoster(u);
    assert.equal(roster.items.length, 10);
    assert.equal((await storedRosterItem(farm, u, "c1@example.org"))?.name, undefined);
    s.end();
  });

  test("subscription: pending requests per user, request size, and the per-sender rate from strangers", async () => {
    const victim = await farm.addUser("victim");
    const senders = await Promise.all(["s1", "s2", "s3", "s4"].map((n) => farm.addUser(`sub${n}`)));
    const sessions: TestSession[] = [];
    for (const [i, from] of senders.entries()) {
      const s = await availableSession(farm, `${from}/pc`);
      sessions.push(s);
      s.send(`<presence type='subscribe' to='${victim}'/>`);
      if (i < 3) await eventually(async () => (await keyedStore(farm, "subscription-requests").list(victim)).items.length === i + 1, 3000, `request ${i + 1}`);
    }
    // The fourth exceeds maxPending: its sender hears why.
    expectError(await sessions[3]!.next(isError(victim)), "resource-constraint", /too many pending subscription requests/);
    assert.equal((await keyedStore(farm, "subscription-requests").list(victim)).items.length, 3);
    // A request larger than maxRequestBytes.
    const big = await farm.addUser("bigreq");
    const other = await farm.addUser("bigreqto");
    const b = await availableSession(farm, `${big}/pc`);
    b.send(`<presence type='subscribe' to='${other}'><status>${"s".repeat(1200)}</status></presence>`);
    expectError(await b.next(isError(other)), "not-acceptable", /larger than 1000 bytes/);
    assert.deepEqual((await keyedStore(farm, "subscription-requests").list(other)).items, []);
    // One stranger asking many users: the fifth within the minute is refused.
    const spammer = await farm.addUser("spammer");
    const targets = await Promise.all([1, 2, 3, 4, 5].map((i) => farm.addUser(`target${i}`)));
    const sp = await availableSession(farm, `${spammer}/pc`);
    for (const t of targets) sp.send(`<presence type='subscribe' to='${t}'/>`);
    // Each target's requests are handled in that user's own queue, so which one comes fifth is not fixed.
    const refused = await sp.next((e) => e.attrs.type === "error" && targets.includes(e.attrs.from ?? ""));
    expectError(refused, "policy-violation", /too many subscription requests from this sender/);
    const storedFor = async () => {
      const has = await Promise.all(targets.map(async (t) => (await keyedStore(farm, "subscription-requests").get(t, spammer)) !== null));
      return targets.filter((_, i) => has[i]);
    };
    await eventually(async () => (await storedFor()).length === 4, 3000, "4 stored requests");
    assert.ok(!(await storedFor()).includes(refused.attrs.from!));
    await sp.nothing((e) => e.attrs.type === "error", 100);
    for (const s of [...sessions, b, sp]) s.end();
  });

  test("subscription: a user's own subscribes are rate-limited", async () => {
    const u = await farm.addUser("eager");
    const s = await farm.driver.open(`${u}/pc`);
    // To accounts that do not exist here: nothing comes back for the others.
    for (let i = 0; i < 7; i++) s.send(`<presence type='subscribe' to='nobody${i}@localhost' id='o${i}'/>`);
    expectError(await s.next((e) => e.attrs.id === "o6"), "policy-violation", /at most 6 per 60 s/);
    await s.nothing((e) => e.attrs.type === "error" && e.attrs.id !== "o6", 100);
    assert.equal(await storedRosterItem(farm, u, "nobody6@localhost"), null);
    s.end();
  });

  test("private XML: items, bytes per item, total; a refused set stores none of its elements", async () => {
    const u = await farm.addUser("privy");
    const s = await farm.driver.open(`${u}/pc`);
    const set = (els: string) => s.iq(`<iq type='set'><query xmlns='${PRIVATE}'>${els}</query></iq>`);
    assert.equal((await set("<a xmlns='urn:a'>1</a><b xmlns='urn:b'>2</b>")).attrs.type, "result");
    expectError(await set(`<c xmlns='urn:c'>${"x".repeat(250)}</c>`), "not-acceptable", /larger than 200 bytes/);
    expectError(await set("<c xmlns='urn:c'/><d xmlns='urn:d'/>"), "resource-constraint", /full \(3 elements\)/);
    assert.equal(await keyedStore(farm, "private").get(u, "c urn:c"), null, "all or none");
    assert.equal((await set("<c xmlns='urn:c'/>")).attrs.type, "result");
    const fill = "y".repeat(150);
    assert.equal((await set(`<a xmlns='urn:a'>${fill}</a><b xmlns='urn:b'>${fill}</b>`)).attrs.type, "result");
    expectError(await set(`<c xmlns='urn:c'>${fill}</c>`), "resource-constraint", /full \(400 bytes\)/);
    assert.equal((await keyedStore(farm, "private").list(u)).items.length, 3);
    s.end();
  });

  test("vCard: larger than vcard.maxBytes is not-acceptable and the stored one stays", async () => {
    const u = await farm.addUser("carded");
    const s = await farm.driver.open(`${u}/pc`);
    assert.equal((await s.iq("<iq type='set'><vCard xmlns='vcard-temp'><FN>Small</FN></vCard></iq>")).attrs.type, "result");
    expectError(await s.iq(`<iq type='set'><vCard xmlns='vcard-temp'><DESC>${"d".repeat(400)}</DESC></vCard></iq>`), "not-acceptable", /larger than 300 bytes/);
    assert.match((await keyedStore(farm, "vcard").get(u, "")) ?? "", /Small/);
    s.end();
  });

  test("presence: directed presences per session are bounded", async () => {
    const u = await farm.addUser("director");
    const s = await availableSession(farm, `${u}/pc`);
    for (let i = 0; i < 4; i++) s.send(`<presence to='dp${i}@localhost/r' id='d${i}'/>`);
    expectError(await s.next((e) => e.attrs.id === "d3"), "resource-constraint", /too many directed presences/);
    const session = farm.sm.sm.sessions.get(s.sid)!;
    assert.equal(session.directedTo.size, 3);
    // Unavailable to one of them frees its place.
    s.send("<presence type='unavailable' to='dp0@localhost/r'/>");
    s.send("<presence to='dp3@localhost/r' id='again'/>");
    await eventually(() => session.directedTo.has("dp3@localhost/r"), 3000, "the fourth directed presence");
    assert.equal(session.directedTo.size, 3);
    s.end();
  });

  test("offline: beyond offline.maxBytes the sender gets service-unavailable and nothing more is stored", async () => {
    const u = await farm.addUser("heavy");
    const s = await farm.driver.open("sender@localhost/heavy");
    const body = "b".repeat(10_000);
    for (let i = 0; i < 6; i++) s.send(`<message type='chat' to='${u}' id='h${i}'><body>${body}</body></message>`);
    const bounce = await s.next((e) => e.attrs.type === "error");
    expectError(bounce, "service-unavailable", /offline storage is full/);
    const { count, bytes } = await archiveStore(farm, "offline").count(u);
    assert.equal(count, 4);
    assert.ok(bytes <= 50_000);
    s.end();
  });
});
