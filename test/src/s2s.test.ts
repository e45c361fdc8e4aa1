/**
 * Federation end to end: two farms, each `jabberfarm up --domain D --s2s 2`
 * as an admin would start it (its own OS processes, its own Postgres
 * database), for the domains a.example and b.example, finding each other
 * through a DNS server on loopback (dns2) that answers
 * `_xmpp-server._tcp.D` with both of the farm's s2s ports. Their
 * certificates are self-signed, so the streams authenticate with dialback.
 * @xmpp/client users subscribe to each other across the farms, see
 * presence (a probe across the farms when one comes back), chat both ways,
 * send an iq to a full JID on the other farm and a message to a user who
 * is offline there. Then, while messages cross
 * both ways, the s2s of farm A that carries a.example → b.example (and
 * takes b.example's stream, first in a.example's SRV record) is killed
 * with SIGKILL: the other s2s takes both directions over and every
 * message the farms accepted must arrive (duplicates are counted and
 * reported: delivery is at least once).
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import pg from "pg";
import { rendezvousPick, rendezvousSeed } from "@jabberfarm/component";
import { TestZone } from "@jabberfarm/s2s/testing";
import type { Element } from "@jabberfarm/xml";
import { Farm, freshDatabase, waitUntil } from "./farm.js";
import { LibraryClient, xml } from "./clients.js";
import { sample, scrape } from "./prometheus.js";

const A = "a.example";
const B = "b.example";

const rosterPush = (jid: string, check: (item: Element) => boolean) => (el: Element): boolean => {
  if (el.name !== "iq" || el.attrs.type !== "set") return false;
  const item = el.getChild("query")?.getChild("item");
  return item !== undefined && item.attrs.jid === jid && check(item);
};

/** The s2s instance the routers of a farm give `remote` to (the rendezvous rule on the remote domain). */
const carrierOf = (remote: string): string =>
  rendezvousPick(["s2s-1", "s2s-2"].map((id) => ({ rendezvousId: id, rendezvousSeed: rendezvousSeed(id) })), remote)!.rendezvousId;

async function farmFor(domain: string, other: string, zone: TestZone, db: string): Promise<Farm> {
  const farm = await Farm.start({ databaseUrl: db, s2s: 2, metrics: true, upArgs: ["--domain", domain, "--dns", zone.address] });
  const s2s = farm.farmPorts?.s2s ?? [];
  assert.equal(s2s.length, 2, "up reports both s2s ports");
  // Both s2s in the SRV record, the one that carries our stanzas to `other`
  // first: the other farm's stream comes in there too while it lives, so one
  // kill -9 breaks both directions at once.
  const first = carrierOf(other);
  const ordered = [...s2s].sort((x, y) => Number(y.id === first) - Number(x.id === first));
  zone.serve(domain, ordered.map((s, i) => ({ priority: i, port: s.port, target: `${s.id}.${domain}` })));
  for (const s of s2s) zone.a.set(`${s.id}.${domain}`, ["127.0.0.1"]);
  return farm;
}

describe("two farms federate (a.example and b.example, two s2s each, dialback)", () => {
  let zone: TestZone;
  let farmA: Farm;
  let farmB: Farm;
  const dbs: Array<Awaited<ReturnType<typeof freshDatabase>>> = [];
  const clients: LibraryClient[] = [];

  async function login(farm: Farm, domain: string, user: string, resource: string): Promise<LibraryClient> {
    const c = new LibraryClient(farm.ports.c2s, user, `${user}-pw`, resource, domain, "127.0.0.1", { plain: true });
    c.jid = (await c.xmpp.start()).toString();
    clients.push(c);
    return c;
  }

  before(async () => {
    zone = new TestZone();
    await zone.listen();
    dbs.push(await freshDatabase(), await freshDatabase());
    [farmA, farmB] = await Promise.all([farmFor(A, B, zone, dbs[0]!.url), farmFor(B, A, zone, dbs[1]!.url)]);
    for (const u of ["alice", "ann"]) await farmA.addUser(`${u}@${A}`, `${u}-pw`);
    for (const u of ["bob", "carol", "bea"]) await farmB.addUser(`${u}@${B}`, `${u}-pw`);
  });

  after(async () => {
    for (const c of clients) await c.stop();
    const codes = await Promise.all([farmA?.stop(), farmB?.stop()]);
    await zone?.close();
    for (const d of dbs) await d.drop();
    assert.deepEqual(codes, [0, 0], "both farms stop cleanly");
  });

  test("subscriptions both ways, presence, messages both ways, an iq to a remote full JID, an offline message", { timeout: 120_000 }, async () => {
    const alice = await login(farmA, A, "alice", "laptop");
    const bob = await login(farmB, B, "bob", "phone");
    for (const c of [alice, bob]) {
      await c.iq(xml("iq", { type: "get" }, xml("query", { xmlns: "jabber:iq:roster" })));
      await c.send(xml("presence"));
    }

    // alice asks bob, across the farms
    await alice.send(xml("presence", { type: "subscribe", to: `bob@${B}` }));
    await alice.next(rosterPush(`bob@${B}`, (i) => i.attrs.ask === "subscribe"));
    const req = await bob.next((e) => e.name === "presence" && e.attrs.type === "subscribe", 20_000);
    assert.equal(req.attrs.from, `alice@${A}`);
    await bob.send(xml("presence", { type: "subscribed", to: `alice@${A}` }));
    await bob.next(rosterPush(`alice@${A}`, (i) => i.attrs.subscription === "from"));
    await alice.next(rosterPush(`bob@${B}`, (i) => i.attrs.subscription === "to"), 15_000);
    await alice.next((e) => e.name === "presence" && e.attrs.type === undefined && e.attrs.from === `bob@${B}/phone`, 15_000);

    // and bob asks alice
    await bob.send(xml("presence", { type: "subscribe", to: `alice@${A}` }));
    await alice.next((e) => e.name === "presence" && e.attrs.type === "subscribe" && e.attrs.from === `bob@${B}`, 15_000);
    await alice.send(xml("presence", { type: "subscribed", to: `bob@${B}` }));
    await alice.next(rosterPush(`bob@${B}`, (i) => i.attrs.subscription === "both"));
    await bob.next(rosterPush(`alice@${A}`, (i) => i.attrs.subscription === "both"), 15_000);
    await bob.next((e) => e.name === "presence" && e.attrs.type === undefined && e.attrs.from === `alice@${A}/laptop`, 15_000);

    // messages both ways
    await alice.send(xml("message", { to: `bob@${B}`, type: "chat", id: "a1" }, xml("body", {}, "hi bob")));
    const m1 = await bob.next((e) => e.name === "message" && e.attrs.id === "a1");
    assert.equal(m1.attrs.from, `alice@${A}/laptop`);
    assert.equal(m1.getChildText("body"), "hi bob");
    await bob.send(xml("message", { to: `alice@${A}/laptop`, type: "chat", id: "b1" }, xml("body", {}, "hello alice")));
    assert.equal((await alice.next((e) => e.name === "message" && e.attrs.id === "b1")).getChildText("body"), "hello alice");

    // presence changes travel
    await alice.send(xml("presence", {}, xml("show", {}, "away")));
    const away = await bob.next((e) => e.name === "presence" && e.attrs.from === `alice@${A}/laptop` && e.getChildText("show") === "away");
    assert.equal(away.attrs.type, undefined);

    // an iq to a remote full JID, answered by that client
    bob.xmpp.iqCallee.get("urn:xmpp:time", "time", () => xml("time", { xmlns: "urn:xmpp:time" }, xml("utc", {}, "2026-12-05T00:00:00Z"), xml("tzo", {}, "+00:00")));
    const answer = await alice.iq(xml("iq", { type: "get", to: `bob@${B}/phone` }, xml("time", { xmlns: "urn:xmpp:time" })));
    assert.equal(answer.getChild("time")?.getChildText("utc"), "2026-12-05T00:00:00Z");

    // bob leaves and comes back: alice sees both; bob's new session learns alice's presence by a probe across the farms
    await bob.stop();
    clients.splice(clients.indexOf(bob), 1);
    await alice.next((e) => e.name === "presence" && e.attrs.type === "unavailable" && e.attrs.from === `bob@${B}/phone`, 15_000);
    const bob2 = await login(farmB, B, "bob", "tablet");
    await bob2.send(xml("presence"));
    await alice.next((e) => e.name === "presence" && e.attrs.type === undefined && e.attrs.from === `bob@${B}/tablet`, 15_000);
    const probed = await bob2.next((e) => e.name === "presence" && e.attrs.from === `alice@${A}/laptop`, 15_000);
    assert.equal(probed.getChildText("show"), "away", "alice's current presence, answered to bob's probe");

    // a message for a remote user who is offline is stored there and delivered at login
    await alice.send(xml("message", { to: `carol@${B}`, type: "chat", id: "off1" }, xml("body", {}, "read this later")));
    // Stored at b.example (its offline queue in its database) before carol comes online.
    const dbB = new pg.Client({ connectionString: dbs[1]!.url });
    await dbB.connect();
    try {
      await waitUntil("b.example stored the message offline", 20_000, async () =>
        (await dbB.query("SELECT 1 FROM archive_store WHERE username = $1 AND store = 'offline'", [`carol@${B}`])).rowCount! > 0 || undefined);
    } finally {
      await dbB.end();
    }
    const carol = await login(farmB, B, "carol", "desk");
    await carol.send(xml("presence"));
    const off = await carol.next((e) => e.name === "message" && e.attrs.id === "off1", 15_000);
    assert.equal(off.attrs.from, `alice@${A}/laptop`);
    assert.equal(off.getChildText("body"), "read this later");

    // a domain with no server bounces remote-server-not-found
    await alice.send(xml("message", { to: "nobody@nowhere.example", id: "lost1" }, xml("body", {}, "x")));
    const bounce = await alice.next((e) => e.name === "message" && e.attrs.id === "lost1", 20_000);
    assert.equal(bounce.attrs.type, "error");
    assert.ok(bounce.getChild("error")?.getChild("remote-server-not-found"), bounce.toString());

    // The s2s that carries b.example says so on /metrics, and is ready.
    const carrier = carrierOf(B);
    const port = farmA.metricsPort(carrier);
    const m = await scrape(port);
    const labels = { process: "s2s", instance: carrier };
    assert.ok(sample(m, "jabberfarm_s2s_streams_established_total", { ...labels, direction: "out", auth: "dialback" }) >= 1);
    assert.equal(sample(m, "jabberfarm_s2s_streams", { ...labels, direction: "out", auth: "dialback" }), 1);
    assert.ok(sample(m, "jabberfarm_s2s_failures_total", { ...labels, condition: "remote-server-not-found" }) >= 1);
    assert.equal(sample(m, "jabberfarm_s2s_queued", labels), 0);
    assert.equal((await fetch(`http://127.0.0.1:${port}/readyz`)).status, 200);

    // `jabberfarm status` lists both s2s with their streams.
    const st = await farmA.admin(["status", "--json"]);
    assert.equal(st.code, 0, st.stderr);
    const parsed = JSON.parse(st.stdout) as { processes: Array<{ address: string; status?: { process: string; outgoing?: number } }> };
    const s2s = parsed.processes.filter((p) => p.status?.process === "s2s");
    assert.deepEqual(s2s.map((p) => p.address).sort(), ["s2s/s2s-1", "s2s/s2s-2"]);
    assert.ok(s2s.some((p) => (p.status?.outgoing ?? 0) >= 1), "the carrier has an outgoing stream");
  });

  test("kill -9 of the s2s carrying a.example → b.example while messages cross both ways: nothing is lost", { timeout: 180_000 }, async () => {
    const ann = await login(farmA, A, "ann", "k");
    const bea = await login(farmB, B, "bea", "k");
    // Streams up both ways before the kill, so that it breaks live streams (not ones being set up).
    await ann.send(xml("message", { to: `bea@${B}/k`, type: "chat", id: "warm-a" }, xml("body", {}, "w")));
    await bea.send(xml("message", { to: `ann@${A}/k`, type: "chat", id: "warm-b" }, xml("body", {}, "w")));
    await bea.next((e) => e.name === "message" && e.attrs.id === "warm-a", 20_000);
    await ann.next((e) => e.name === "message" && e.attrs.id === "warm-b", 20_000);
    const PER_SIDE = 200;
    // The s2s of farm A that the routers give b.example to, and where b.example's stream comes in.
    const carrier = carrierOf(B);
    const pid = farmA.childPidById(carrier);
    assert.ok(pid, `the pid of farm A's ${carrier}`);
    const sentAtoB: string[] = [];
    const sentBtoA: string[] = [];
    let killedAt = -1;
    for (let i = 0; i < PER_SIDE; i++) {
      const ida = `ab-${i}`;
      const idb = `ba-${i}`;
      await ann.send(xml("message", { to: `bea@${B}/k`, type: "chat", id: ida }, xml("body", {}, ida)));
      sentAtoB.push(ida);
      await bea.send(xml("message", { to: `ann@${A}/k`, type: "chat", id: idb }, xml("body", {}, idb)));
      sentBtoA.push(idb);
      if (i === PER_SIDE / 2) {
        process.kill(pid, "SIGKILL");
        killedAt = i;
      }
      await new Promise((r) => setImmediate(r));
    }
    assert.ok(killedAt > 0);
    const countOf = (c: LibraryClient, prefix: string): Map<string, number> => {
      const m = new Map<string, number>();
      for (const e of c.received) if (e.name === "message" && e.attrs.id?.startsWith(prefix) && e.attrs.type !== "error") m.set(e.attrs.id, (m.get(e.attrs.id) ?? 0) + 1);
      return m;
    };
    const errors = (c: LibraryClient): string[] => c.received.filter((e) => e.name === "message" && e.attrs.type === "error").map((e) => e.toString());
    await waitUntil("every message arrived both ways", 90_000, () =>
      countOf(bea, "ab-").size === PER_SIDE && countOf(ann, "ba-").size === PER_SIDE).catch(() => undefined);
    const atB = countOf(bea, "ab-");
    const atA = countOf(ann, "ba-");
    const lostAB = sentAtoB.filter((id) => !atB.has(id));
    const lostBA = sentBtoA.filter((id) => !atA.has(id));
    const dupAB = [...atB.values()].filter((n) => n > 1).length;
    const dupBA = [...atA.values()].filter((n) => n > 1).length;
    // The figure docs/s2s.md quotes.
    process.stdout.write(`# s2s kill -9 (${carrier} of a.example): a→b ${atB.size}/${PER_SIDE} delivered, ${dupAB} duplicated; b→a ${atA.size}/${PER_SIDE} delivered, ${dupBA} duplicated\n`);
    if (process.env.S2S_TEST_LOGS) {
      const { writeFileSync } = await import("node:fs");
      writeFileSync(process.env.S2S_TEST_LOGS, [...farmA.logs.map((l): Record<string, unknown> => ({ farm: "A", ...l })), ...farmB.logs.map((l): Record<string, unknown> => ({ farm: "B", ...l }))]
        .filter((l) => l.process === "s2s" || l.process === "farm").map((l) => JSON.stringify(l)).join("\n"));
    }
    assert.deepEqual(errors(bea).concat(errors(ann)), [], "no message bounced");
    assert.deepEqual(lostAB, [], "a.example → b.example: nothing lost");
    assert.deepEqual(lostBA, [], "b.example → a.example: nothing lost");
    // The supervisor starts the killed s2s again; federation goes on through whichever is alive.
    await farmA.restarted(carrier, pid!);
    await ann.send(xml("message", { to: `bea@${B}/k`, type: "chat", id: "after-kill" }, xml("body", {}, "still here")));
    await bea.next((e) => e.name === "message" && e.attrs.id === "after-kill", 20_000);
  });
});
