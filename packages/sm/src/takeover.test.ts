/**
 * Two SMs sharing users through Redis: when one dies (its links dropped at
 * once, as kill -9 would) or leaves (stop, as on SIGTERM), the other takes
 * its users over with their sessions and presence, and stanzas keep flowing
 * to and from those sessions. Real router, real Postgres, real Redis.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { pino } from "pino";
import { rendezvousPick, rendezvousSeed } from "@jabberfarm/component";
import { Router } from "@jabberfarm/router";
import { deriveCredentials } from "@jabberfarm/sasl";
import { openPostgres, type Storage } from "@jabberfarm/xdb";
import { ModuleStores } from "./module-store.js";
import { startSm, type SmProcess } from "./process.js";
import { DATABASE_URL, DOMAIN, SessionDriver, delay, dropSchema } from "./testing.js";

const REDIS_URL = process.env.TEST_SM_REDIS_URL ?? "redis://127.0.0.1:6379/7";
const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" });

/** A user name that rendezvous hashing gives to `instance` among `instances`. */
function userOwnedBy(instance: string, instances: string[], prefix: string): string {
  const candidates = instances.map((id) => ({ rendezvousId: id, rendezvousSeed: rendezvousSeed(id) }));
  for (let i = 0; ; i++) {
    const user = `${prefix}${i}@${DOMAIN}`;
    if (rendezvousPick(candidates, user)?.rendezvousId === instance) return user;
  }
}

async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await delay(20);
  }
}

describe("SMs take each other's users over through Redis", () => {
  let router: Router;
  let port: number;
  let storage: Storage;
  const schema = `sm_takeover_${randomBytes(5).toString("hex")}`;
  const running: SmProcess[] = [];
  let driver: SessionDriver;

  const startOne = async (instance: string): Promise<SmProcess> => {
    const p = await startSm({
      domain: DOMAIN, instance, secret: "sm-test-secret", routers: [{ host: "127.0.0.1", port }], redisUrl: REDIS_URL, sessionTtlSeconds: 30,
    }, { logger: logger.child({ instance }), storage });
    running.push(p);
    return p;
  };

  before(async () => {
    const r = new Redis(REDIS_URL);
    await r.flushdb();
    r.disconnect();
    router = new Router({
      host: "127.0.0.1", port: 0, domains: [DOMAIN],
      components: { [DOMAIN]: { secret: "sm-test-secret", trusted: true }, c2s: { secret: "c2s-test-secret", trusted: true } },
    }, { logger });
    port = (await router.start()).port;
    storage = await openPostgres(DATABASE_URL, { schema });
    driver = new SessionDriver(port);
    await driver.start();
  });

  after(async () => {
    await driver.stop();
    for (const p of running) await p.stop();
    await router.stop();
    await storage.close();
    await dropSchema(schema);
  });

  async function mutualContacts(a: string, b: string): Promise<void> {
    const creds = deriveCredentials("pw", { iterations: 4096 });
    await storage.createAccount(a, creds);
    await storage.createAccount(b, creds);
    await storage.setRosterItem(a, { jid: b, subscription: "both", groups: [] });
    await storage.setRosterItem(b, { jid: a, subscription: "both", groups: [] });
  }

  test("a dead SM's users, sessions and presence move to the other; chat goes on", async () => {
    const sm1 = await startOne("sm-1");
    const sm2 = await startOne("sm-2");
    const both = ["sm-1", "sm-2"];
    await until("both SMs to know both", () => [sm1, sm2].every((p) => p.sm.ownsUser(userOwnedBy(p.sm.instance, both, "probe"))));
    const alice = userOwnedBy("sm-1", both, "alice");
    const bob = userOwnedBy("sm-2", both, "bob");
    await mutualContacts(alice, bob);

    const a = await driver.online(`${alice}/phone`);
    const b = await driver.online(`${bob}/pc`);
    await b.next((e) => e.name === "presence" && e.attrs.from === `${alice}/phone`);
    await a.next((e) => e.name === "presence" && e.attrs.from === `${bob}/pc`);
    assert.equal(sm1.sm.sessions.of(alice).length, 1, "alice lives on sm-1");
    assert.equal(sm2.sm.sessions.of(bob).length, 1, "bob lives on sm-2");

    a.send(`<message to='${bob}' id='m1' type='chat'><body>before</body></message>`);
    await b.next((e) => e.name === "message" && e.attrs.id === "m1");

    // kill -9: every link dropped at once, nothing said to anybody.
    const killedAt = Date.now();
    sm1.component.crash();
    await sm1.sm.store!.close();
    running.splice(running.indexOf(sm1), 1);

    // The other SM takes alice over by itself (her session is in Redis).
    await until("sm-2 to hold alice's session", () => sm2.sm.sessions.of(alice).length === 1, 5000);
    const tookMs = Date.now() - killedAt;
    assert.ok(tookMs < 5000, `took over in ${tookMs} ms`);
    const adopted = sm2.sm.sessions.of(alice)[0]!;
    assert.equal(adopted.full, `${alice}/phone`);
    assert.equal(adopted.available, true, "with her presence");

    // Both ways, through the surviving SM.
    a.send(`<message to='${bob}' id='m2' type='chat'><body>after</body></message>`);
    await b.next((e) => e.name === "message" && e.attrs.id === "m2");
    b.send(`<message to='${alice}/phone' id='m3' type='chat'><body>reply</body></message>`);
    await a.next((e) => e.name === "message" && e.attrs.id === "m3");

    // A new resource of bob learns alice is online: her presence was rebuilt, not just her session.
    const b2 = await driver.online(`${bob}/laptop`);
    await b2.next((e) => e.name === "presence" && e.attrs.from === `${alice}/phone` && e.attrs.type === undefined);

    // When alice goes, bob sees her go.
    a.end();
    await b.next((e) => e.name === "presence" && e.attrs.from === `${alice}/phone` && e.attrs.type === "unavailable");
    b.end();
    b2.end();
  });

  test("a leaving SM (SIGTERM) hands its users over; a returning one takes its share back", async () => {
    const sm2 = running.find((p) => p.sm.instance === "sm-2")!;
    const sm3 = await startOne("sm-3");
    const two = ["sm-2", "sm-3"];
    await until("sm-2 to see sm-3", () => sm2.sm.ownsUser(userOwnedBy("sm-2", two, "p")) && !sm2.sm.ownsUser(userOwnedBy("sm-3", two, "p")));
    const carol = userOwnedBy("sm-3", two, "carol");
    const dave = userOwnedBy("sm-2", two, "dave");
    await mutualContacts(carol, dave);
    const c = await driver.online(`${carol}/x`);
    const d = await driver.online(`${dave}/y`);
    await d.next((e) => e.name === "presence" && e.attrs.from === `${carol}/x`);
    assert.equal(sm3.sm.sessions.of(carol).length, 1);

    await sm3.stop();
    running.splice(running.indexOf(sm3), 1);
    await until("sm-2 to hold carol's session", () => sm2.sm.sessions.of(carol).length === 1, 5000);
    c.send(`<message to='${dave}' id='n1' type='chat'><body>still here</body></message>`);
    await d.next((e) => e.name === "message" && e.attrs.id === "n1");

    // sm-3 comes back: carol is its again, taken from sm-2, and still reachable.
    const back = await startOne("sm-3");
    await until("sm-3 to hold carol again", () => back.sm.sessions.of(carol).length === 1, 5000);
    await until("sm-2 to let carol go", () => sm2.sm.sessions.of(carol).length === 0, 5000);
    d.send(`<message to='${carol}/x' id='n2' type='chat'><body>welcome back</body></message>`);
    await c.next((e) => e.name === "message" && e.attrs.id === "n2");
    c.end();
    d.end();
  });

  test("the sessions of a c2s that died end within 5 s, and their contacts see them go", async () => {
    const sms = running.map((p) => p.sm.instance).sort();
    const erin = userOwnedBy(sms[0]!, sms, "erin");
    const frank = userOwnedBy(sms[1]!, sms, "frank");
    await mutualContacts(erin, frank);
    const doomed = new SessionDriver(port, "c2s-doomed");
    await doomed.start();
    const e = await doomed.online(`${erin}/desk`);
    const f = await driver.online(`${frank}/home`);
    await f.next((el) => el.name === "presence" && el.attrs.from === `${erin}/desk` && el.attrs.type === undefined);
    await e.next((el) => el.name === "presence" && el.attrs.from === `${frank}/home`);
    const killedAt = Date.now();
    doomed.component.crash();
    await f.next((el) => el.name === "presence" && el.attrs.from === `${erin}/desk` && el.attrs.type === "unavailable", 5000);
    const ms = Date.now() - killedAt;
    assert.ok(ms < 5000, `unavailable after ${ms} ms`);
    assert.equal(running.reduce((n, p) => n + p.sm.sessions.of(erin).length, 0), 0, "no SM holds the session any more");
    // A message to erin now waits offline for her instead of going to the dead c2s.
    f.send(`<message to='${erin}/desk' id='o1' type='chat'><body>later</body></message>`);
    const deadline = Date.now() + 5000;
    const offline = new ModuleStores(storage).openArchive("offline");
    while ((await offline.count(erin)).count === 0 && Date.now() < deadline) await delay(50);
    assert.equal((await offline.count(erin)).count, 1);
    f.end();
  });

  test("users of different SMs block each other: the block holds both ways, and still after one SM dies", async () => {
    const NS = "urn:xmpp:blocking";
    const sms = running.map((p) => p.sm.instance).sort();
    const gus = userOwnedBy(sms[0]!, sms, "gus");
    const hal = userOwnedBy(sms[1]!, sms, "hal");
    await mutualContacts(gus, hal);
    const g = await driver.online(`${gus}/a`);
    const h = await driver.online(`${hal}/b`);
    await g.next((e) => e.name === "presence" && e.attrs.from === `${hal}/b`);
    const isError = (id: string) => (e: { name: string; attrs: Record<string, string> }) => e.name === "message" && e.attrs.id === id && e.attrs.type === "error";
    const quiet = async (s: typeof g, from: string): Promise<void> => s.nothing((e) => e.name === "message" && (e.attrs.from ?? "").startsWith(from), 250);

    // gus (on one SM) blocks hal (on the other): both directions are closed.
    assert.equal((await g.iq(`<iq type='set'><block xmlns='${NS}'><item jid='${hal}'/></block></iq>`)).attrs.type, "result");
    h.send(`<message to='${gus}' id='h1' type='chat'><body>hi</body></message>`);
    await h.next(isError("h1"));
    g.send(`<message to='${hal}' id='g1' type='chat'><body>hi</body></message>`);
    await g.next(isError("g1"));
    await quiet(g, hal);
    await quiet(h, gus);
    // And the other way round, hal blocks gus too.
    assert.equal((await h.iq(`<iq type='set'><block xmlns='${NS}'><item jid='${gus}'/></block></iq>`)).attrs.type, "result");

    // The SM that owns gus dies: the other takes him over and reads his list from the store.
    const owner = running.find((p) => p.sm.sessions.of(gus).length === 1)!;
    owner.component.crash();
    await owner.sm.store!.close();
    running.splice(running.indexOf(owner), 1);
    const survivor = running[0]!;
    await until("the survivor to hold gus", () => survivor.sm.sessions.of(gus).length === 1, 5000);
    h.send(`<message to='${gus}/a' id='h2' type='chat'><body>still?</body></message>`);
    await h.next(isError("h2"));
    g.send(`<message to='${hal}/b' id='g2' type='chat'><body>still?</body></message>`);
    await g.next(isError("g2"));
    await quiet(g, hal);
    await quiet(h, gus);
    // Unblocked both ways, on the one SM left, they talk again.
    for (const [s, other] of [[g, hal], [h, gus]] as const) {
      assert.equal((await s.iq(`<iq type='set'><unblock xmlns='${NS}'><item jid='${other}'/></unblock></iq>`)).attrs.type, "result");
    }
    g.send(`<message to='${hal}' id='g3' type='chat'><body>friends</body></message>`);
    await h.next((e) => e.name === "message" && e.attrs.id === "g3");
    g.end();
    h.end();
    // A fresh SM for whatever runs after this test in the file.
    await startOne(owner.sm.instance);
  });
});
