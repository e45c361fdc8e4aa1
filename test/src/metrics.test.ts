/**
 * The metrics and health endpoints of a real farm (`jabberfarm up
 * --metrics-port`, on PostgreSQL): every process answers, and the counters
 * move with real clients' traffic.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Farm, freshDatabase, freePortBlock } from "./farm.js";
import { LibraryClient, xml } from "./clients.js";
import { sample, scrape as scrapePort, type Scrape } from "./prometheus.js";

const PROCESSES = ["router", "xdb", "sm", "c2s"] as const;
type Name = (typeof PROCESSES)[number];

/** A sample's value; labels other than those given must match the process's defaults. */
function value(s: Scrape, name: string, process: Name, instance: string, labels: Record<string, string> = {}): number {
  return sample(s, name, { ...labels, process, instance });
}

describe("metrics and health endpoints of a farm", () => {
  let farm: Farm;
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  let base: number;
  const clients: LibraryClient[] = [];
  const port = (p: Name): number => base + PROCESSES.indexOf(p);
  const instance = (p: Name): string => (p === "router" ? `127.0.0.1:${farm.ports.router}` : `${p}-1`);
  const scrape = (p: Name): Promise<Scrape> => scrapePort(port(p));

  before(async () => {
    base = await freePortBlock(4);
    // PostgreSQL: the farm is up sooner than on PGlite, and this file is about metrics.
    db = await freshDatabase();
    farm = await Farm.start({ metricsPort: base, databaseUrl: db.url });
    await farm.addUser("alice@localhost", "alice-pw");
    await farm.addUser("bob@localhost", "bob-pw");
  });
  after(async () => {
    for (const c of clients) await c.stop();
    assert.equal(await farm.stop(), 0);
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
});
