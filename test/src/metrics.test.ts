/**
 * The metrics and health endpoints of a real farm (`jabberfarm up
 * --metrics-port 0`, on PostgreSQL and a private Redis): every process
 * answers, the counters move with real clients' traffic, and /readyz turns
 * false when what a process needs goes away (Redis for the sm, the router
 * for everyone) and true again when it is back.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Farm, freshDatabase } from "./farm.js";
import { LibraryClient, xml } from "./clients.js";
import { sample, scrape as scrapePort, type Scrape } from "./prometheus.js";
import { PrivateRedis } from "./redis-server.js";
import { Redis } from "ioredis";

const PROCESSES = ["router", "xdb", "sm", "c2s"] as const;
type Name = (typeof PROCESSES)[number];

/** A sample's value; labels other than those given must match the process's defaults. */
function value(s: Scrape, name: string, process: Name, instance: string, labels: Record<string, string> = {}): number {
  return sample(s, name, { ...labels, process, instance });
}

describe("metrics and health endpoints of a farm", () => {
  let farm: Farm;
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  let redis: PrivateRedis;
  const clients: LibraryClient[] = [];
  const port = (p: Name): number => farm.metricsPort(p);
  // `up` names its routers router-1, ...: the router's samples carry that name.
  const instance = (p: Name): string => `${p}-1`;
  const scrape = (p: Name): Promise<Scrape> => scrapePort(port(p));

  before(async () => {
    // PostgreSQL: the farm is up sooner than on PGlite, and this file is about metrics.
    db = await freshDatabase();
    redis = await PrivateRedis.start();
    farm = await Farm.start({ metrics: true, databaseUrl: db.url, upArgs: ["--redis-url", redis.url] });
    await farm.addUser("alice@localhost", "alice-pw");
    await farm.addUser("bob@localhost", "bob-pw");
  });
  after(async () => {
    for (const c of clients) await c.stop();
    assert.equal(await farm.stop(), 0);
    await redis.kill();
    await db.drop();
  });

  test("every process is alive and ready, on its own port", async () => {
    for (const p of PROCESSES) {
      const h = await fetch(`http://127.0.0.1:${port(p)}/healthz`);
      assert.equal(h.status, 200, p);
      assert.equal(await h.text(), "ok\n");
      assert.equal((await fetch(`http://127.0.0.1:${port(p)}/readyz`)).status, 200, `${p} ready`);
      const s = await scrape(p);
      assert.ok(value(s, "jabberfarm_process_cpu_seconds_total", p, instance(p)) > 0, `${p} process metrics`);
      assert.ok(value(s, "jabberfarm_nodejs_eventloop_lag_seconds", p, instance(p)) >= 0);
    }
  });

  test("stanza counters move with two clients chatting, and gauges follow them", async () => {
    const before = { c2s: await scrape("c2s"), sm: await scrape("sm"), router: await scrape("router") };
    const alice = await LibraryClient.login(farm.ports.c2s, "alice", "alice-pw", "laptop");
    clients.push(alice);
    const bob = await LibraryClient.login(farm.ports.c2s, "bob", "bob-pw", "phone");
    clients.push(bob);
    const N = 5;
    for (let i = 0; i < N; i++) await alice.send(xml("message", { to: "bob@localhost/phone", type: "chat", id: `m${i}` }, xml("body", {}, `hello ${i}`)));
    for (let i = 0; i < N; i++) await bob.next((e) => e.name === "message" && e.attrs.id === `m${i}`);
    const after = { c2s: await scrape("c2s"), sm: await scrape("sm"), router: await scrape("router") };

    const moved = (p: "c2s" | "sm" | "router", name: string, labels: Record<string, string>): number =>
      value(after[p], name, p, instance(p), labels) - value(before[p], name, p, instance(p), labels);
    const message = { kind: "message" };
    // c2s reads each message from alice and from the router, and writes it to the router and to bob.
    assert.ok(moved("c2s", "jabberfarm_stanzas_in_total", message) >= 2 * N, "c2s in");
    assert.ok(moved("c2s", "jabberfarm_stanzas_out_total", message) >= 2 * N, "c2s out");
    assert.ok(moved("sm", "jabberfarm_stanzas_in_total", message) >= N, "sm in");
    assert.ok(moved("sm", "jabberfarm_stanzas_out_total", message) >= N, "sm out");
    assert.ok(moved("router", "jabberfarm_stanzas_in_total", message) >= 2 * N, "router in");
    assert.ok(moved("router", "jabberfarm_stanzas_out_total", message) >= 2 * N, "router out");
    assert.ok(moved("c2s", "jabberfarm_stanzas_in_total", { kind: "iq" }) >= 2, "the bind iqs");
    assert.ok(moved("sm", "jabberfarm_stanzas_in_total", { kind: "envelope" }) >= 2, "the session starts");

    assert.equal(value(after.c2s, "jabberfarm_connections", "c2s", "c2s-1", { kind: "client" }), 2);
    assert.equal(value(after.c2s, "jabberfarm_sessions", "c2s", "c2s-1"), 2);
    assert.equal(value(after.sm, "jabberfarm_sessions", "sm", "sm-1"), 2);
    assert.equal(value(after.c2s, "jabberfarm_connections", "c2s", "c2s-1", { kind: "router" }), 1);
    // c2s, sm, xdb and (right after the adduser commands) perhaps the CLI.
    assert.ok(value(after.router, "jabberfarm_connections", "router", instance("router"), { kind: "component" }) >= 3);
    // Sampled (1 stanza in 64), so only its presence is certain here.
    assert.ok(value(after.router, "jabberfarm_routing_seconds_count", "router", instance("router")) >= 0);
    assert.equal(value(after.c2s, "jabberfarm_router_reconnects_total", "c2s", "c2s-1"), 0);
    assert.equal(value(after.c2s, "jabberfarm_redirects_total", "c2s", "c2s-1"), 0);

    // Logins asked xdb for credentials through the routers; xdb timed the queries.
    assert.ok(value(after.c2s, "jabberfarm_storage_seconds_count", "c2s", "c2s-1", { op: "credentials.get" }) >= 2);
    const xdb = await scrape("xdb");
    assert.ok(value(xdb, "jabberfarm_storage_seconds_count", "xdb", "xdb-1", { op: "credentials.get" }) >= 2);
    assert.ok(value(xdb, "jabberfarm_stanzas_in_total", "xdb", "xdb-1", { kind: "envelope" }) >= 2);
  });

  test("a wrong password moves the auth failure counter", async () => {
    const reason = { reason: "not-authorized" };
    const before = value(await scrape("c2s"), "jabberfarm_auth_failures_total", "c2s", "c2s-1", reason);
    const c = new LibraryClient(farm.ports.c2s, "alice", "wrong", "x");
    await assert.rejects(c.xmpp.start());
    await c.stop();
    const after = value(await scrape("c2s"), "jabberfarm_auth_failures_total", "c2s", "c2s-1", reason);
    assert.equal(after - before, 1);
  });

  /** Polls /readyz of `p` until it answers `status`; how long that took. */
  async function readyBecomes(p: Name, status: number, ms = 10_000): Promise<number> {
    const start = Date.now();
    for (;;) {
      const got = await fetch(`http://127.0.0.1:${port(p)}/readyz`).then((r) => r.status, () => 0);
      if (got === status) return Date.now() - start;
      if (Date.now() - start > ms) throw new Error(`${p} /readyz stayed ${got}, not ${status}, for ${ms} ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  test("the sm is not ready while Redis is away, and writes its sessions again when it is back", async () => {
    const carol = await LibraryClient.login(farm.ports.c2s, "alice", "alice-pw", "redis-check");
    clients.push(carol);
    const key = "jf:sess:{alice@localhost}";
    const registry = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      await registry.connect();
      const fields = await registry.hkeys(key);
      assert.ok(fields.length >= 1, "the session is on record in Redis");
      registry.disconnect();
      await readyBecomes("sm", 200);
      await redis.kill();
      await readyBecomes("sm", 503);
      assert.equal((await fetch(`http://127.0.0.1:${port("c2s")}/readyz`)).status, 200, "c2s serves clients without Redis");
      // Chat goes on meanwhile.
      const bob = await LibraryClient.login(farm.ports.c2s, "bob", "bob-pw", "redis-check");
      clients.push(bob);
      await bob.send(xml("message", { to: "alice@localhost/redis-check", type: "chat", id: "during-outage" }, xml("body", {}, "hi")));
      await carol.next((el) => el.name === "message" && el.attrs.id === "during-outage");
      await redis.restart();
      await readyBecomes("sm", 200);
      // A restarted Redis is empty: the sm wrote its sessions again.
      const again = new Redis(redis.url, { maxRetriesPerRequest: 1 });
      try {
        const deadline = Date.now() + 5000;
        let now: string[] = [];
        while ((now = await again.hkeys(key)).length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
        assert.ok(now.length >= 1, "sessions rewritten after the restart");
      } finally {
        again.disconnect();
      }
    } finally {
      registry.disconnect();
    }
  });

  test("without a router, nobody linked to it is ready; once it is back, all are", async () => {
    for (const p of PROCESSES) await readyBecomes(p, 200);
    const pid = farm.childPidById("router");
    assert.ok(pid, "the router's pid is in the farm's log");
    process.kill(pid, "SIGKILL");
    // The supervisor starts a new router; until the components are linked to it they are not ready.
    await Promise.all((["sm", "c2s", "xdb"] as const).map((p) => readyBecomes(p, 503)));
    for (const p of PROCESSES) await readyBecomes(p, 200, 20_000);
  });
});
