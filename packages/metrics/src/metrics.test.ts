import { test } from "node:test";
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import {
  ENVELOPE, IQ, MESSAGE, OTHER, PRESENCE, Metrics, cachedProbe, kindOf, kindOfBytes, kindOfName, kindOfText, watchRouterLinks,
} from "./index.js";

/** The value of one sample line of the exposition, or undefined. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split("\n")) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? "").matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
  }
  return undefined;
}

test("stanza kinds are read from names, texts and bytes without parsing", () => {
  assert.equal(kindOfName("message"), MESSAGE);
  assert.equal(kindOfName("presence"), PRESENCE);
  assert.equal(kindOfName("iq"), IQ);
  assert.equal(kindOfName("session"), ENVELOPE);
  assert.equal(kindOfName("xdb"), ENVELOPE);
  assert.equal(kindOfName("handshake"), OTHER);
  assert.equal(kindOfName("stream:features"), OTHER);

  const route = (inner: string): string =>
    `<route xmlns='urn:jabberfarm:envelope:1' from='c2s/c2s-1' to='a@localhost' sid='c2s-1.x'>${inner}</route>`;
  const cases: Array<[string, number]> = [
    [route("<message xmlns='jabber:client' to='b@localhost'><body>a &gt; b</body></message>"), MESSAGE],
    [route("<presence xmlns='jabber:client'/>"), PRESENCE],
    [route("<iq xmlns='jabber:client' type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq>"), IQ],
    [route("<messages/>"), ENVELOPE],
    [route("<x:message xmlns:x='jabber:client'/>"), ENVELOPE],
    ["<message to='a@b'><body>hi</body></message>", MESSAGE],
    ["<presence/>", PRESENCE],
    ["<iq\ntype='get'/>", IQ],
    ["<session xmlns='urn:jabberfarm:envelope:1' type='start'/>", ENVELOPE],
    ["<xdb xmlns='urn:jabberfarm:envelope:1'>{}</xdb>", ENVELOPE],
    ["<members xmlns='urn:jabberfarm:router:0'/>", OTHER],
    ["<presences/>", OTHER],
    ["<iqx/>", OTHER],
    ["  <message/>", MESSAGE],
    ["", OTHER],
    ["no tag at all", OTHER],
  ];
  for (const [text, kind] of cases) {
    assert.equal(kindOfText(text), kind, text);
    assert.equal(kindOfBytes(Buffer.from(text)), kind, text);
    assert.equal(kindOfBytes(new Uint8Array(Buffer.from(text))), kind, text);
  }
  // With the name already read (router, c2s from the splitter), only a route is looked into.
  assert.equal(kindOf("route", Buffer.from(route("<message/>"))), MESSAGE);
  assert.equal(kindOf("route", route("<iq type='result' id='1'/>")), IQ);
  assert.equal(kindOf("route", ""), ENVELOPE);
  assert.equal(kindOf("message", ""), MESSAGE);
  // A quoted '>' in the route's own attributes cannot mislead it: the first '<' after the tag is the payload.
  assert.equal(kindOfText("<route from='a>b' to='c'><presence/></route>"), PRESENCE);
});

test("a registry exposes the farm's metrics with process and instance on every sample", async () => {
  const m = new Metrics({ process: "c2s", instance: "c2s-7" });
  const before = await m.exposition();
  // Only what a process asks for is exposed.
  assert.doesNotMatch(before, /jabberfarm_stanzas_in_total/);
  // Node.js process metrics, prefixed.
  assert.match(before, /^jabberfarm_process_cpu_seconds_total\{process="c2s",instance="c2s-7"\} /m);
  assert.match(before, /^jabberfarm_nodejs_eventloop_lag_seconds\{process="c2s",instance="c2s-7"\} /m);
  assert.match(before, /^jabberfarm_process_resident_memory_bytes\{/m);
  assert.match(m.contentType, /^text\/plain/);

  m.stanzasIn.add(MESSAGE);
  m.stanzasIn.add(MESSAGE);
  m.stanzasIn.add(ENVELOPE);
  m.stanzasOut.add(PRESENCE);
  m.authFailures.inc({ reason: "not-authorized" });
  m.redirects.inc(0);
  m.routerReconnects.inc();
  m.routingSeconds.observe(0.00002);
  m.storageSeconds.observe({ op: "roster.get" }, 0.003);
  let clients = 3;
  m.connections("client", () => clients);
  m.connections("router", () => 2);
  m.sessions(() => 4);
  m.sessions(() => 1);
  m.queueBytes(() => 100);
  const text = await m.exposition();
  const l = { process: "c2s", instance: "c2s-7" };
  assert.equal(sample(text, "jabberfarm_stanzas_in_total", { ...l, kind: "message" }), 2);
  assert.equal(sample(text, "jabberfarm_stanzas_in_total", { ...l, kind: "envelope" }), 1);
  // Every kind is there from the first scrape, zeros included.
  for (const kind of ["presence", "iq", "other"]) assert.equal(sample(text, "jabberfarm_stanzas_in_total", { ...l, kind }), 0, kind);
  assert.equal(sample(text, "jabberfarm_stanzas_out_total", { ...l, kind: "presence" }), 1);
  assert.equal(sample(text, "jabberfarm_auth_failures_total", { ...l, reason: "not-authorized" }), 1);
  assert.equal(sample(text, "jabberfarm_redirects_total", l), 0);
  assert.equal(sample(text, "jabberfarm_router_reconnects_total", l), 1);
  assert.equal(sample(text, "jabberfarm_routing_seconds_count", l), 1);
  assert.equal(sample(text, "jabberfarm_routing_seconds_bucket", { ...l, le: "0.000025" }), 1);
  assert.equal(sample(text, "jabberfarm_routing_seconds_bucket", { ...l, le: "0.00001" }), 0);
  assert.equal(sample(text, "jabberfarm_storage_seconds_count", { ...l, op: "roster.get" }), 1);
  assert.equal(sample(text, "jabberfarm_connections", { ...l, kind: "client" }), 3);
  assert.equal(sample(text, "jabberfarm_connections", { ...l, kind: "router" }), 2);
  assert.equal(sample(text, "jabberfarm_sessions", l), 5);
  assert.equal(sample(text, "jabberfarm_queue_bytes", l), 100);
  assert.match(text, /# TYPE jabberfarm_stanzas_in_total counter/);
  assert.match(text, /# TYPE jabberfarm_connections gauge/);
  assert.match(text, /# TYPE jabberfarm_routing_seconds histogram/);

  // Counters keep counting across scrapes; gauges are read again.
  m.stanzasIn.add(MESSAGE);
  clients = 1;
  const again = await m.exposition();
  assert.equal(sample(again, "jabberfarm_stanzas_in_total", { ...l, kind: "message" }), 3);
  assert.equal(sample(again, "jabberfarm_connections", { ...l, kind: "client" }), 1);
});

test("router reconnects count links that come up again, not each router's first link", async () => {
  const m = new Metrics({ process: "sm", instance: "sm-1", processMetrics: false });
  const links = Object.assign(new EventEmitter(), { liveLinks: [1, 2] as unknown[], queuedBytes: 42 });
  watchRouterLinks(m, links);
  links.emit("up", { label: "127.0.0.1:5347" });
  links.emit("up", { label: "127.0.0.1:5348" });
  let text = await m.exposition();
  assert.equal(sample(text, "jabberfarm_router_reconnects_total"), 0);
  assert.equal(sample(text, "jabberfarm_connections", { kind: "router" }), 2);
  assert.equal(sample(text, "jabberfarm_queue_bytes"), 42);
  links.emit("up", { label: "127.0.0.1:5347" });
  text = await m.exposition();
  assert.equal(sample(text, "jabberfarm_router_reconnects_total"), 1);
});

test("a cached probe reuses answers, shares a running check, and fails on errors and timeouts", async () => {
  let calls = 0;
  let fail = false;
  const probe = cachedProbe(async () => {
    calls++;
    await new Promise((r) => setTimeout(r, 20));
    if (fail) throw new Error("down");
  }, { timeoutMs: 500, cacheMs: 100 });
  assert.deepEqual(await Promise.all([probe(), probe(), probe()]), [true, true, true]);
  assert.equal(calls, 1);
  assert.equal(await probe(), true);
  assert.equal(calls, 1, "answer reused within cacheMs");
  await new Promise((r) => setTimeout(r, 120));
  fail = true;
  assert.equal(await probe(), false);
  assert.equal(calls, 2);

  const hanging = cachedProbe(() => new Promise(() => {}), { timeoutMs: 50, cacheMs: 0 });
  // The probe's own timer does not hold a process open; this test's does.
  const alive = setTimeout(() => {}, 5000);
  const t0 = Date.now();
  assert.equal(await hanging(), false);
  assert.ok(Date.now() - t0 < 1000);
  clearTimeout(alive);
});
