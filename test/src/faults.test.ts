/**
 * Faults on a running farm (`jabberfarm up --routers 2 --sm 2 --c2s 3`, on
 * PostgreSQL and Redis), one farm for the whole file and one fault per step,
 * each while six users chat with messages of unique ids (ledger.ts counts
 * them): kill -9 of a c2s, of an SM, of a router; a Redis restart; a
 * PostgreSQL restart. Every step ends with lost = 0 for what the farm had
 * accepted.
 *
 * The Redis and PostgreSQL of this file are private servers on free loopback
 * ports (redis-server.ts, services.ts): stopping the shared ones would break
 * the other tests running at the same time.
 */
import { after, before, describe, test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import pg from "pg";
import { Chatter } from "./chatter.js";
import { xml } from "./clients.js";
import { Farm, waitUntil } from "./farm.js";
import {
  HOSTS, TOPOLOGY, addUsers, makeChatter, nameOn, neighbours, ownerOf, readyz, ringUsers, sleep, subscribeRing, waitReady, waitRouterFull,
} from "./fleet.js";
import { Ledger, describeTally, type Tally } from "./ledger.js";
import { PrivateRedis } from "./redis-server.js";
import { PrivatePostgres, redisCli } from "./services.js";
import { dump } from "./ledger-dump.js";

/** Each chatter sends a message every 250 ms on average. */
const SEND_EVERY_MS = 250;
/** Stored messages put in a mailbox before a fault. */
const STORED = 5;

describe("faults on a farm of 2 routers, 2 SMs and 3 c2s (PostgreSQL, Redis)", { timeout: 600_000 }, () => {
  let farm: Farm;
  let redis: PrivateRedis | undefined;
  let postgres: PrivatePostgres | undefined;
  let db: pg.Pool | undefined;
  const ledger = new Ledger();
  const ring: Chatter[] = [];
  const boxes = {
    // Mailboxes: users who are offline while messages are stored for them.
    sm: nameOn("f-box-sm", "sm-1"), // owned by the SM killed in step 2
    redis: nameOn("f-box-redis", "sm-2"),
    pg: nameOn("f-box-pg", "sm-1"),
    pgOutage: nameOn("f-box-pgout", "sm-2"),
  };
  const quietUser = "f-quiet";
  const others: Chatter[] = [];
  /**
   * A user on c2s-1 to whom nobody writes, subscribed with one user of
   * c2s-2, and who does not reconnect at once when c2s-1 dies: only the
   * SMs' knowledge of which c2s are alive (the routers' membership notices)
   * can end its session then, since no stanza for it reaches a c2s that
   * would bounce it (its own reconnect would: its new session's presence
   * goes to its other resources too).
   */
  let quiet: Chatter;
  /** How long after the kill of c2s-1 the quiet user's buddy saw it go (step 1), or why not. */
  let quietGoneAfter: number | Error = new Error("step 1 did not run");
  let quietC2sBackAfter: number | undefined;

  before(async () => {
    const [pgServer, redisServer] = await Promise.all([PrivatePostgres.start(), PrivateRedis.start()]);
    [postgres, redis] = [pgServer, redisServer];
    // A pool, not a client: its connections die with the PostgreSQL restart and are opened again.
    db = new pg.Pool({ connectionString: pgServer.url, max: 1 });
    db.on("error", () => {});
    farm = await Farm.start({
      databaseUrl: pgServer.url, metrics: true, upArgs: [...TOPOLOGY, "--redis-url", redisServer.url], upTimeoutMs: 120_000,
    });
    const users = ringUsers("f-");
    await addUsers(farm, [...users.map((u) => u.user), ...Object.values(boxes), quietUser]);
    for (const u of users) ring.push(makeChatter(farm, ledger, u.user));
    await Promise.all(ring.map((c, i) => c.connect(users[i]!.home)));
    await subscribeRing(ring);
    quiet = makeChatter(farm, ledger, quietUser, false);
    others.push(quiet);
    await quiet.connect(HOSTS[0]);
    const buddy = ring[1]!;
    assert.equal(buddy.host, HOSTS[1]);
    await quiet.send(xml("presence", { to: buddy.bare, type: "subscribe" }));
    await buddy.send(xml("presence", { to: quiet.bare, type: "subscribe" }));
    await waitUntil("the quiet user and its buddy see each other online", 30_000, () => quiet.sawAvailable(buddy.full) && buddy.sawAvailable(quiet.full));
  });

  after(async () => {
    for (const c of [...ring, ...others]) await c.stop();
    // For a post-mortem: every log line of the farm, and the ledger's messages.
    if (process.env.JF_FAULTS_DUMP && farm) dump(process.env.JF_FAULTS_DUMP, farm, ledger);
    if (farm) assert.equal(await farm.stop(), 0, "the farm stops cleanly after the faults");
    await db?.end().catch(() => {});
    await redis?.kill();
    await postgres?.destroy();
  });

  /** When each step's chat began. */
  const began = new Map<string, number>();

  /** Everyone chats with everyone in `step`; resolves once messages flow. */
  async function chat(step: string): Promise<void> {
    began.set(step, Date.now());
    for (const c of ring) c.startSending(step, ring.filter((o) => o !== c).map((o) => o.bare), SEND_EVERY_MS);
    await waitUntil(`messages flow in ${step}`, 20_000, () => ledger.tally(step).delivered >= 12);
  }

  /**
   * Messages of `step` to users who kept their connection the whole step:
   * these must arrive live. One that went to offline storage instead waits
   * there until its recipient's next login, although it was online.
   */
  function toUsersWhoStayed(step: string): Tally {
    const since = began.get(step)!;
    const stayed = new Set(ring.filter((c) => !c.outages.some((o) => o.from >= since)).map((c) => c.bare));
    return ledger.tally(step, (s) => stayed.has(s.to));
  }

  /** Stops the chat of `step` and waits (at most `ms`) for every accepted message to arrive. */
  async function finish(step: string, ms = 20_000): Promise<Tally> {
    for (const c of ring) c.stopSending();
    await ledger.settle(step, ms);
    return ledger.tally(step);
  }

  /** Logs a mailbox user in and waits until every message of `step` to it has arrived (or `ms` passed). */
  async function openMailbox(user: string, step: string, host: string = HOSTS[1], ms = 20_000): Promise<Chatter> {
    const box = makeChatter(farm, ledger, user);
    others.push(box);
    await box.connect(host);
    await waitUntil(`${user} got its stored messages`, ms, () => ledger.outstanding(step).every((s) => s.to !== box.bare)).catch(() => {});
    await box.stop();
    return box;
  }

  async function storedCount(user: string): Promise<number> {
    const r = await db!.query<{ n: number }>("SELECT count(*)::int AS n FROM archive_store WHERE username = $1 AND store = 'offline'", [`${user}@localhost`]);
    return r.rows[0]!.n;
  }

  /** Sends `n` messages to an offline user and waits until they are in the database. */
  async function store(step: string, from: Chatter, user: string, n: number): Promise<void> {
    const before = await storedCount(user);
    for (let i = 0; i < n; i++) assert.ok(from.sendTo(`${user}@localhost`, step), `${from.bare} is online to send`);
    await waitUntil(`${n} messages stored for ${user}`, 15_000, async () => (await storedCount(user)) >= before + n, 100);
  }

  /** For each user, how long after `t0` the first message sent to it after `t0` arrived (undefined: none yet). */
  function resumedAfter(users: readonly Chatter[], t0: number): Map<string, number | undefined> {
    return new Map(users.map((u) => {
      const at = ledger.deliveriesTo(u.bare, t0)[0];
      return [u.bare, at === undefined ? undefined : at - t0];
    }));
  }

  /** Same, for messages *from* each user sent after `t0`: when the first one arrived anywhere. */
  function sendingResumedAfter(users: readonly Chatter[], t0: number): Map<string, number | undefined> {
    const out = new Map<string, number | undefined>(users.map((u) => [u.bare, undefined]));
    for (const [id, r] of ledger.received) {
      const s = ledger.sent.get(id)!;
      if (s.at < t0 || r.how !== "live" || !out.has(s.from)) continue;
      const d = r.at - t0;
      const prev = out.get(s.from);
      if (prev === undefined || d < prev) out.set(s.from, d);
    }
    return out;
  }

  const outagesSince = (t0: number): string[] =>
    [...ring, quiet].flatMap((c) => c.outages.filter((o) => o.from >= t0).map((o) => `${c.bare} lost its connection on ${o.host}`));

  function report(t: TestContext, ...lines: string[]): void {
    for (const l of lines) t.diagnostic(l);
  }

  test("1. kill -9 of a c2s: contacts see its users go, they reconnect elsewhere and get what was sent meanwhile", { timeout: 150_000 }, async (t) => {
    const step = "c2s-kill";
    await chat(step);
    const victims = ring.filter((c) => c.host === HOSTS[0]);
    assert.equal(victims.length, 2, "two users are on c2s-1");
    const oldFull = new Map(victims.map((v) => [v, v.full]));
    const quietFull = quiet.full;
    const buddy = ring[1]!;
    const pid = farm.childPidById("c2s-1")!;
    const t0 = Date.now();
    process.kill(pid, "SIGKILL");
    const quietGone = waitUntil("the quiet user's buddy sees it go unavailable", 10_000, () => {
      const at = buddy.sawUnavailableAt(quietFull, t0);
      return at === undefined ? undefined : at - t0;
    }).catch((e: Error) => e);

    // Contacts of the killed c2s's users see them go unavailable (their old resource).
    const presence = await waitUntil("contacts see the killed c2s's users go unavailable", 10_000, () => {
      const times: number[] = [];
      for (const v of victims) {
        for (const c of neighbours(ring, v)) {
          const at = c.sawUnavailableAt(oldFull.get(v)!, t0);
          if (at === undefined) return undefined;
          times.push(at - t0);
        }
      }
      return Math.max(...times);
    }).catch((e: Error) => e);

    // The killed c2s's users reconnect to another c2s on their own (Chatter), with a new resource.
    await waitUntil("the killed c2s's users are online again elsewhere", 30_000, () => victims.every((v) => v.online && v.outages.length > 0 && v.outages.at(-1)!.to));
    const quietMs = await quietGone;
    quietGoneAfter = quietMs;
    await quiet.connect(HOSTS[1]);
    await farm.restarted("c2s-1", pid);
    await waitReady(farm, "c2s-1", 30_000);
    const relinked = farm.logs.find((l) => l.msg === "component connected" && l.instance === "c2s-1" && (l.time as number) > t0);
    quietC2sBackAfter = relinked === undefined ? undefined : (relinked.time as number) - t0;
    // Chat goes on a little after the reconnect, to the new sessions.
    const back = Date.now();
    await waitUntil("the reconnected users receive live messages", 15_000, () => victims.every((v) => ledger.deliveriesTo(v.bare, back).length >= 2));
    const tally = await finish(step);
    const toVictims = ledger.tally(step, (s) => victims.some((v) => v.bare === s.to) && s.at >= t0);
    const fromSurvivors = ledger.tally(step, (s) => !victims.some((v) => v.bare === s.from));
    report(t, describeTally(tally), `to the killed c2s's users after the kill: ${describeTally(toVictims)}`,
      `sent by users of the surviving c2s: ${describeTally(fromSurvivors)}`,
      `unavailable presence seen by all contacts after ${presence instanceof Error ? `(not within 10 s: ${presence.message})` : `${presence} ms`}`,
      ...victims.map((v) => `${v.bare}: offline ${v.outages.at(-1)!.to! - v.outages.at(-1)!.from} ms, ${v.outages.at(-1)!.host} -> ${v.outages.at(-1)!.reconnectedTo}`));

    assert.equal(fromSurvivors.lost, 0, `messages sent by users of the surviving c2s lost: ${fromSurvivors.lostIds.join(" ")}`);
    assert.equal(tally.lost, 0, `accepted messages lost: ${tally.lostIds.join(" ")}`);
    assert.equal(tally.misdelivered, 0);
    assert.equal(toUsersWhoStayed(step).offline, 0, "messages to users who stayed online arrive live, not via offline storage");
    assert.equal(tally.bounced, 0, "nothing bounced: the users were offline at worst, and offline messages are stored");
    for (const v of victims) {
      assert.equal(v.outages.length, 1, `${v.bare} reconnected once`);
      assert.notEqual(v.outages[0]!.reconnectedTo, HOSTS[0], `${v.bare} went to another c2s`);
    }
    assert.deepEqual(outagesSince(t0).filter((o) => ![...victims, quiet].some((v) => o.startsWith(v.bare))), [], "users of the other c2s kept their connection");
    // These users reconnect at once: the presence of their new session, and
    // messages to them, reach the dead c2s's sessions and bounce, which ends them.
    assert.ok(!(presence instanceof Error) && presence <= 5000, `contacts see the killed c2s's users go unavailable within 5 s (${presence instanceof Error ? presence.message : `${presence} ms`})`);
  });

  test("1b. kill -9 of a c2s: a user who does not come back at once also goes unavailable for its contacts within 5 s", async (t) => {
    // Nothing is routed to the quiet user's old session: only the routers'
    // membership notices can tell the SMs that its c2s died (they end a dead
    // c2s's sessions within ~2 s).
    t.diagnostic(`quiet user seen going after ${quietGoneAfter instanceof Error ? `(not: ${quietGoneAfter.message})` : `${quietGoneAfter} ms`}; ` +
      `c2s-1 linked to a router again ${quietC2sBackAfter ?? "?"} ms after the kill`);
    assert.ok(!(quietGoneAfter instanceof Error) && quietGoneAfter <= 5000,
      `the quiet user's buddy sees it go unavailable within 5 s (${quietGoneAfter instanceof Error ? quietGoneAfter.message : `${quietGoneAfter} ms`}; ` +
      `c2s-1 was back on a router after ${quietC2sBackAfter ?? "?"} ms)`);
  });

  test("2. kill -9 of an SM: the other takes its users over, clients stay connected, stored messages survive", { timeout: 150_000 }, async (t) => {
    const step = "sm-kill";
    const stored = `${step}/stored`;
    const smUsers = ring.filter((c) => ownerOf(c.bare) === "sm-1");
    assert.equal(ownerOf(`${boxes.sm}@localhost`), "sm-1");
    await store(stored, ring.find((c) => ownerOf(c.bare) === "sm-2")!, boxes.sm, STORED);
    await chat(step);
    const pid = farm.childPidById("sm-1")!;
    const fromLog = farm.logs.length;
    const t0 = Date.now();
    process.kill(pid, "SIGKILL");

    const takeover = await farm.waitLog("sm-2 took sm-1's sessions over", (l) => l.msg === "took sessions over" && l.from === "sm-1", 10_000, fromLog)
      .then((l) => (l.time as number) - t0, (e: Error) => e);
    // The users of the dead SM are served again: messages reach them and theirs go out.
    await waitUntil("messages to and from the dead SM's users flow again", 15_000, () =>
      [...resumedAfter(smUsers, t0).values(), ...sendingResumedAfter(smUsers, t0).values()].every((d) => d !== undefined)).catch(() => {});
    const toThem = resumedAfter(smUsers, t0);
    const fromThem = sendingResumedAfter(smUsers, t0);
    await farm.restarted("sm-1", pid);
    await waitReady(farm, "sm-1", 30_000);
    const back = Date.now();
    await waitUntil("messages flow after sm-1 is back", 15_000, () => smUsers.every((u) => ledger.deliveriesTo(u.bare, back).length >= 2));
    const tally = await finish(step);
    await openMailbox(boxes.sm, stored);
    const box = ledger.tally(stored);
    const gaps = [...toThem.values(), ...fromThem.values()];
    const gap = gaps.some((g) => g === undefined) ? undefined : Math.max(...(gaps as number[]));
    report(t, describeTally(tally), describeTally(box),
      `gap for the dead SM's users: ${gap === undefined ? "not resumed within 15 s" : `${gap} ms`} ` +
      `(to: ${[...toThem.values()].join(", ")}; from: ${[...fromThem.values()].join(", ")})`,
      `takeover logged by sm-2 after ${takeover instanceof Error ? "(none within 10 s)" : `${takeover} ms`}`);

    assert.equal(tally.lost, 0, `accepted messages lost: ${tally.lostIds.join(" ")}`);
    assert.equal(tally.misdelivered, 0);
    assert.equal(toUsersWhoStayed(step).offline, 0, "messages to users who stayed online arrive live, not via offline storage");
    assert.equal(tally.bounced, 0);
    assert.deepEqual(outagesSince(t0), [], "every client stayed connected");
    assert.ok(gap !== undefined && gap <= 5000, `the dead SM's users are served again within 5 s (gap ${gap} ms)`);
    // What was in flight to the dead SM is sent again after 2 s without an acknowledgement.
    assert.ok(tally.maxLatencyMs <= 5000, `no message took longer than 5 s (${tally.maxLatencyMs} ms)`);
    assert.equal(box.offline, STORED, `the ${STORED} messages stored before the kill are delivered afterwards`);
    assert.equal(box.lost + box.duplicates, 0);
    // At least once, not exactly once, after an SM dies (docs/envelope.md): duplicates are counted, not refused.
  });

  test("3. kill -9 of a router: traffic goes on through the other within 2 s", { timeout: 150_000 }, async (t) => {
    const step = "router-kill";
    await chat(step);
    const pid = farm.childPidById("router-1")!;
    const t0 = Date.now();
    process.kill(pid, "SIGKILL");
    // Every message sent from 1 s before the kill to 2 s after it arrives within 2 s of the kill or of its sending.
    await sleep(2500);
    await ledger.settle(step, 3000);
    let worst = 0;
    let worstId = "";
    let late = 0;
    for (const s of ledger.sent.values()) {
      if (s.step !== step || s.at < t0 - 1000 || s.at > t0 + 2000 || !ledger.accepted(s)) continue;
      const r = ledger.received.get(s.id);
      const d = r === undefined ? Infinity : r.at - Math.max(s.at, t0);
      if (d > 2000) late++;
      if (d > worst) [worst, worstId] = [d, s.id];
    }
    await farm.restarted("router-1", pid);
    await waitRouterFull(farm, "router-1", 30_000);
    const tally = await finish(step);
    report(t, describeTally(tally), `around the kill: worst ${worst} ms (${worstId}), ${late} later than 2 s`);

    assert.equal(tally.lost, 0, `accepted messages lost: ${tally.lostIds.join(" ")}`);
    assert.equal(tally.misdelivered, 0);
    assert.equal(toUsersWhoStayed(step).offline, 0, "messages to users who stayed online arrive live, not via offline storage");
    assert.equal(tally.bounced, 0);
    assert.equal(tally.duplicates, 0, "resent copies are dropped by their receivers");
    assert.deepEqual(outagesSince(t0), [], "every client stayed connected");
    assert.equal(late, 0, `traffic flows within 2 s of the kill (worst ${worst} ms, ${worstId})`);
  });

  test("4. Redis restart: chat and logins go on, the registry is written again, and a later SM kill still hands users over", { timeout: 150_000 }, async (t) => {
    const step = "redis";
    await chat(step);
    const t0 = Date.now();
    await redis!.kill();
    // Without Redis the SMs cannot hand sessions over: they say so on /readyz.
    const notReady = await waitUntil("the SMs say not ready without Redis", 10_000, async () =>
      (await readyz(farm, "sm-1")) === 503 && (await readyz(farm, "sm-2")) === 503).then(() => true, () => false);
    // A login works meanwhile (sessions live in the SMs' memory).
    const probe = makeChatter(farm, ledger, boxes.redis);
    others.push(probe);
    const login = await probe.connect(HOSTS[2]).then(() => probe.stop()).then(() => undefined, (e: Error) => e);
    // Redis stays away a few seconds, during which the users go on chatting.
    const chatDuringOutage = (): number => ring.reduce((n, c) => n + ledger.deliveriesTo(c.bare, t0).length, 0);
    await waitUntil("chat goes on while Redis is down", 15_000, () => Date.now() - t0 >= 3000 && chatDuringOutage() >= 12);
    const deliveredDuringOutage = chatDuringOutage();
    const outageMs = Date.now() - t0;
    await redis!.restart();
    // Every SM writes its sessions again: each chatter is in its SM's set and has its sessions hash.
    const rewritten = await waitUntil("the session registry is written again", 15_000, async () => {
      const members = [...(await redisCli(redis!.url, "SMEMBERS", "jf:smusers:{sm-1}")).split("\n"), ...(await redisCli(redis!.url, "SMEMBERS", "jf:smusers:{sm-2}")).split("\n")];
      if (!ring.every((c) => members.includes(c.bare))) return undefined;
      for (const c of ring) if (Number((await redisCli(redis!.url, "HLEN", `jf:sess:{${c.bare}}`)).trim()) < 1) return undefined;
      return Date.now() - t0 - outageMs;
    }, 200).catch((e: Error) => e);
    await waitReady(farm, "sm-1", 15_000);
    await waitReady(farm, "sm-2", 15_000);

    // The proof that counts: an SM dies now and the other still takes its users over from Redis.
    const smUsers = ring.filter((c) => ownerOf(c.bare) === "sm-2");
    const pid = farm.childPidById("sm-2")!;
    const t1 = Date.now();
    process.kill(pid, "SIGKILL");
    await waitUntil("messages to and from the dead SM's users flow again", 15_000, () =>
      [...resumedAfter(smUsers, t1).values(), ...sendingResumedAfter(smUsers, t1).values()].every((d) => d !== undefined)).catch(() => {});
    const gaps = [...resumedAfter(smUsers, t1).values(), ...sendingResumedAfter(smUsers, t1).values()];
    const gap = gaps.some((g) => g === undefined) ? undefined : Math.max(...(gaps as number[]));
    await farm.restarted("sm-2", pid);
    await waitReady(farm, "sm-2", 30_000);
    const tally = await finish(step);
    report(t, describeTally(tally), `Redis down for ${outageMs} ms, ${deliveredDuringOutage} messages delivered meanwhile; SMs not ready meanwhile: ${notReady}; login during the outage: ${login ? login.message : "ok"}`,
      `registry rewritten ${rewritten instanceof Error ? "(not within 15 s)" : `${rewritten} ms after Redis was back`}`,
      `gap for sm-2's users after its kill: ${gap === undefined ? "not resumed within 15 s" : `${gap} ms`}`);

    assert.equal(tally.lost, 0, `accepted messages lost: ${tally.lostIds.join(" ")}`);
    assert.equal(tally.misdelivered, 0);
    assert.equal(toUsersWhoStayed(step).offline, 0, "messages to users who stayed online arrive live, not via offline storage");
    assert.equal(tally.bounced, 0);
    assert.deepEqual(outagesSince(t0), [], "every client stayed connected, through the Redis restart and the SM kill");
    assert.equal(login, undefined, "a client logs in while Redis is down");
    assert.ok(notReady, "/readyz of the SMs says 503 while Redis is down");
    assert.ok(!(rewritten instanceof Error), "every SM writes its sessions to the restarted Redis");
    assert.ok(gap !== undefined && gap <= 5000, `sm-2's users are served again within 5 s of its kill (gap ${gap} ms)`);
    assert.ok(tally.maxLatencyMs <= 5000, `no message took longer than 5 s (${tally.maxLatencyMs} ms)`);
  });

  test("5. PostgreSQL restart: clear errors during the outage, chat goes on, stored data intact, all works after", { timeout: 150_000 }, async (t) => {
    const step = "postgres";
    const stored = `${step}/stored`;
    const sender = ring[0]!;
    await store(stored, sender, boxes.pg, STORED);
    await chat(step);
    const t0 = Date.now();
    await postgres!.stop("fast");
    const down = Date.now();

    // A login needs the credentials from the database: it must fail soon and clearly, not hang.
    const probe = makeChatter(farm, ledger, boxes.pgOutage);
    others.push(probe);
    const loginStart = Date.now();
    const login = await probe.connect(HOSTS[1], 30_000).then(() => undefined, (e: Error & { condition?: string }) => e);
    const loginMs = Date.now() - loginStart;
    // A message to an offline user must be stored or answered with an error, never dropped in silence.
    const duringOutage = `${step}/outage`;
    const toOffline = sender.sendTo(`${boxes.pgOutage}@localhost`, duringOutage)!;
    await waitUntil("the message to an offline user is answered", 15_000, () => ledger.settled(toOffline)).catch(() => {});
    const answeredMs = ledger.bounced.get(toOffline) ? ledger.bounced.get(toOffline)!.at - ledger.sent.get(toOffline)!.at : undefined;
    // The outage lasts a few seconds, during which online users go on chatting.
    const chatDuringOutage = (): number => ring.reduce((n, c) => n + ledger.deliveriesTo(c.bare, down).length, 0);
    await waitUntil("chat goes on during the outage", 15_000, () => Date.now() - down >= 3000 && chatDuringOutage() >= 12);
    const deliveredDuringOutage = chatDuringOutage();
    await postgres!.start();
    const outageMs = Date.now() - down;
    await waitReady(farm, "xdb", 30_000);

    // After recovery: storing works, a login works, and what was stored before is all there.
    const after = `${step}/after`;
    await store(after, sender, boxes.pg, 2);
    const tally = await finish(step);
    await openMailbox(boxes.pg, stored);
    await ledger.settle(after, 10_000);
    await openMailbox(boxes.pgOutage, duringOutage);
    const box = ledger.tally(stored);
    const afterTally = ledger.tally(after);
    const outage = ledger.tally(duringOutage);
    report(t, describeTally(tally), describeTally(box), describeTally(afterTally), describeTally(outage),
      `PostgreSQL down for ${outageMs} ms, ${deliveredDuringOutage} messages delivered meanwhile; login during the outage: ${login ? `failed after ${loginMs} ms: ${login.condition ?? ""} ${login.message}` : `succeeded (${loginMs} ms)`}`,
      `message to an offline user during the outage: ${ledger.bounced.get(toOffline) ? `bounced (${ledger.bounced.get(toOffline)!.condition}) after ${answeredMs} ms` : ledger.received.get(toOffline) ? "stored and delivered after" : "no answer"}`);

    assert.equal(tally.lost, 0, `messages between online users lost: ${tally.lostIds.join(" ")}`);
    assert.equal(tally.bounced, 0, "messages between online users do not need the database");
    assert.equal(tally.misdelivered, 0);
    assert.equal(toUsersWhoStayed(step).offline, 0, "messages to users who stayed online arrive live, not via offline storage");
    assert.deepEqual(outagesSince(t0), [], "every client stayed connected");
    assert.ok(login instanceof Error, "a login cannot succeed without the credentials");
    assert.equal(login.condition, "temporary-auth-failure", `the login fails with a SASL temporary-auth-failure (got: ${login.message})`);
    assert.ok(loginMs < 10_000, `the login failure comes promptly (${loginMs} ms)`);
    assert.equal(outage.lost, 0, "the message to an offline user during the outage was stored or answered with an error");
    assert.equal(box.offline, STORED, `the ${STORED} messages stored before the outage are all delivered after it`);
    assert.equal(afterTally.offline, 2, "messages are stored again after the recovery and delivered at the next login");
    assert.equal(box.lost + afterTally.lost + box.duplicates + afterTally.duplicates, 0);
  });
});
