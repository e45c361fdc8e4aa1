/**
 * The rolling restart: "A rolling restart of every process of a running
 * farm, one at a time, loses no message and no session for longer than a
 * reconnect. A test does exactly that."
 *
 * `jabberfarm up --routers 2 --sm 2 --c2s 3` on PostgreSQL and Redis; six
 * users in a ring of mutual subscriptions chat the whole time (ledger.ts
 * counts every message). Each process gets SIGTERM in turn: both routers,
 * xdb, both SMs, the three c2s; the supervisor starts it again and the next
 * one goes only once it is ready (/readyz; a router also once every
 * component linked to it again). Clients of a c2s being stopped are told
 * `<see-other-host/>` and reconnect where it says (the Chatter does that).
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Chatter, type Outage } from "./chatter.js";
import { Farm, freshDatabase, waitUntil } from "./farm.js";
import { CHILDREN, HOSTS, TOPOLOGY, addUsers, makeChatter, ringUsers, subscribeRing, waitReady, waitRouterFull, type ChildId } from "./fleet.js";
import { Ledger, describeTally } from "./ledger.js";
import { redisCli } from "./services.js";
import { dump } from "./ledger-dump.js";

// This file's own Redis database, emptied first: the SMs' session registry
// and the c2s loads must not mix with another farm's.
const REDIS_URL = process.env.TEST_ROLLING_REDIS_URL ?? "redis://127.0.0.1:6379/8";
const SEND_EVERY_MS = 250;
/** "One reconnect" on a loaded machine: TCP, STARTTLS, SCRAM, bind and presence, once. */
const RECONNECT_MS = 10_000;

interface Restart {
  id: ChildId;
  step: string;
  /** When its step's chat began, and when the process got SIGTERM. */
  began: number;
  t0: number;
  exit: { code: unknown; signal: unknown };
  downMs: number;
  readyMs: number;
  /** Users on the process when it was stopped (c2s only). */
  moved: Chatter[];
}

describe("rolling restart of every process of a running farm", { timeout: 600_000 }, () => {
  let farm: Farm;
  let db: Awaited<ReturnType<typeof freshDatabase>> | undefined;
  const ledger = new Ledger();
  const ring: Chatter[] = [];

  before(async () => {
    await redisCli(REDIS_URL, "FLUSHDB");
    const database = await freshDatabase();
    db = database;
    farm = await Farm.start({ databaseUrl: database.url, metrics: true, upArgs: [...TOPOLOGY, "--redis-url", REDIS_URL], upTimeoutMs: 120_000 });
    const users = ringUsers("r-");
    await addUsers(farm, users.map((u) => u.user));
    for (const u of users) ring.push(makeChatter(farm, ledger, u.user));
    await Promise.all(ring.map((c, i) => c.connect(users[i]!.home)));
    await subscribeRing(ring);
  });

  after(async () => {
    for (const c of ring) await c.stop();
    if (process.env.JF_ROLLING_DUMP && farm) dump(process.env.JF_ROLLING_DUMP, farm, ledger);
    if (farm) assert.equal(await farm.stop(), 0);
    await db?.drop();
  });

  test("SIGTERM to each process in turn: no message lost, no session gone for longer than one reconnect", { timeout: 400_000 }, async (t) => {
    const restarts: Restart[] = [];
    const presencesBefore = new Map(ring.map((c) => [c, c.presences.length]));
    for (const id of CHILDREN) {
      const step = `rolling/${id}`;
      const began = Date.now();
      for (const c of ring) c.startSending(step, ring.filter((o) => o !== c).map((o) => o.bare), SEND_EVERY_MS);
      await waitUntil(`messages flow before ${id} stops`, 20_000, () => ledger.tally(step).delivered >= 6);
      const moved = id.startsWith("c2s-") ? ring.filter((c) => c.host === HOSTS[Number(id.slice(4)) - 1]) : [];
      const pid = farm.childPidById(id)!;
      const fromLog = farm.logs.length;
      const t0 = Date.now();
      process.kill(pid, "SIGTERM");
      const exited = await farm.waitLog(`${id} exits`, (l) => l.msg === "child exited; restarting" && l.child === id, 30_000, fromLog);
      const downMs = (exited.time as number) - t0;
      await farm.restarted(id, pid);
      if (id.startsWith("router-")) await waitRouterFull(farm, id as "router-1" | "router-2", 30_000);
      else await waitReady(farm, id, 30_000);
      if (moved.length > 0) {
        await waitUntil(`the users of ${id} are online again`, 30_000, () => moved.every((c) => c.online));
        // /readyz says ready before the other c2s know this one is back: they
        // read the loads in Redis every second, and until they see it, the
        // next c2s to drain sends all its clients to the third (which may
        // then pass one on with see-other-host). An operator waits for it too.
        await waitUntil(`${id} publishes its load again`, 15_000, async () => (await redisCli(REDIS_URL, "EXISTS", `jf:{c2s}:load:${id}`)).trim() === "1", 100);
        await new Promise((r) => setTimeout(r, 1500));
      }
      restarts.push({ id, step, began, t0, exit: { code: exited.code, signal: exited.signal }, downMs, readyMs: Date.now() - t0, moved });
    }
    for (const c of ring) c.stopSending();
    await ledger.settle(`rolling/${CHILDREN.at(-1)}`, 20_000);
    for (const r of restarts) await ledger.settle(r.step, 5_000);

    // What each restart did, before judging it.
    const firstLogin = Math.max(...ring.map((c) => c.firstLoginMs));
    const outagesIn = (r: Restart, next: Restart | undefined): Array<[Chatter, Outage]> =>
      ring.flatMap((c) => c.outages.filter((o) => o.from >= r.t0 && (next === undefined || o.from < next.t0)).map((o): [Chatter, Outage] => [c, o]));
    for (const [k, r] of restarts.entries()) {
      const tally = ledger.tally(r.step);
      t.diagnostic(`${r.id}: exit code ${String(r.exit.code)} after ${r.downMs} ms, ready again after ${r.readyMs} ms; ${describeTally(tally)}`);
      for (const [c, o] of outagesIn(r, restarts[k + 1])) {
        t.diagnostic(`  ${c.bare}: offline ${o.to === undefined ? "(not back)" : `${o.to - o.from} ms`}, told ${o.told ?? "nothing"}, ` +
          `back on ${o.reconnectedTo ?? "-"} (connections: ${o.path.join(" -> ")})${o.failure ? `; ${o.failure}` : ""}`);
      }
    }
    t.diagnostic(`slowest first login: ${firstLogin} ms`);

    for (const [k, r] of restarts.entries()) {
      const tally = ledger.tally(r.step);
      assert.deepEqual({ code: r.exit.code, signal: r.exit.signal }, { code: 0, signal: null }, `${r.id} drains and exits 0 on SIGTERM`);
      assert.equal(tally.lost, 0, `${r.id}: accepted messages lost: ${tally.lostIds.join(" ")}`);
      assert.equal(tally.misdelivered, 0, `${r.id}: misdelivered`);
      // A user who kept its connection through the step gets its messages live, not at its next login from offline storage.
      const end = restarts[k + 1]?.began ?? Infinity;
      const stayed = new Set(ring.filter((c) => !c.outages.some((o) => o.from >= r.began && o.from < end)).map((c) => c.bare));
      assert.equal(ledger.tally(r.step, (s) => stayed.has(s.to)).offline, 0, `${r.id}: messages to users who stayed online went to offline storage`);
      assert.equal(tally.bounced, 0, `${r.id}: messages bounced (${JSON.stringify(tally.bouncedConditions)})`);
      const outages = outagesIn(r, restarts[k + 1]);
      // Only the users of a c2s being stopped reconnect, each exactly once, where they are told, at the first try.
      assert.deepEqual(outages.map(([c]) => c.bare).sort(), r.moved.map((c) => c.bare).sort(), `${r.id}: who had to reconnect`);
      for (const [c, o] of outages) {
        assert.ok(o.told, `${c.bare} was told where to go (see-other-host) when ${r.id} stopped`);
        assert.equal(`${o.path[0]}:${farm.ports.c2s}`, o.told, `${c.bare} reconnected where it was told`);
        assert.notEqual(o.reconnectedTo, o.host, `${c.bare} was sent to another c2s`);
        // One reconnect: the first login works. The c2s it was sent to may
        // still pass it on with <see-other-host/> at the stream's start,
        // before TLS and authentication, when it is above its fair share:
        // that is part of connecting to the farm, not a second login.
        assert.ok(o.attempts - o.redirected === 1 && o.redirected <= 1 && o.failure === undefined, `${c.bare}: one reconnect (connections: ${o.path.join(" -> ")})`);
        assert.ok(o.to !== undefined && o.to - o.from <= RECONNECT_MS, `${c.bare} was offline ${o.to === undefined ? "for good" : `${o.to - o.from} ms`}`);
      }
    }
    // No session went away except those replaced by a reconnect: the only
    // unavailable presence the contacts saw is of a resource whose client
    // was moved to another c2s.
    const replaced = new Set(ring.flatMap((c) => c.fullJids.slice(0, -1)));
    const unexpected = ring.flatMap((c) => c.presences.slice(presencesBefore.get(c))
      .filter((p) => p.type === "unavailable" && !replaced.has(p.from)).map((p) => `${c.bare} saw ${p.from} go`));
    assert.deepEqual(unexpected, [], "no session ended but those of the clients that reconnected");
  });
});
