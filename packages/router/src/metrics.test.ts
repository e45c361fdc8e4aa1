import { test } from "node:test";
import assert from "node:assert/strict";
import { pino } from "pino";
import { Component } from "@jabberfarm/component";
import { Metrics } from "@jabberfarm/metrics";
import { Router } from "./router.js";
import { SECRETS, delay, testRouterConfig } from "./testing.js";

function sample(text: string, name: string, kind?: string): number {
  const re = new RegExp(`^${name}\\{${kind === undefined ? "" : `kind="${kind}",`}[^}]*\\} (\\S+)$`, "m");
  const m = re.exec(text);
  if (!m) throw new Error(`no ${name} ${kind ?? ""} in:\n${text}`);
  return Number(m[1]);
}

test("a router with metrics counts what it forwards and answers, by kind, and its components", async () => {
  const metrics = new Metrics({ process: "router", instance: "test", processMetrics: false });
  const router = new Router(testRouterConfig(), { logger: pino({ level: "silent" }), metrics });
  const { port } = await router.start();
  assert.equal(router.listening, true);
  const link = (name: "a.test" | "b.test", instance: string): Component =>
    new Component({ name, secret: SECRETS[name], instance, routers: [{ host: "127.0.0.1", port }] });
  const a = link("a.test", "a-1");
  const b = link("b.test", "b-1");
  let received = 0;
  b.on("stanza", () => received++);
  let bounced = 0;
  a.on("stanza", () => bounced++);
  try {
    await Promise.all([a.start(), b.start()]);
    const route = "<route xmlns='urn:jabberfarm:envelope:1' from='a.test' to='x@b.test' sid='s1'><presence xmlns='jabber:client' from='u@a.test/r'/></route>";
    for (let i = 0; i < 3; i++) a.send(`<message from='u@a.test' to='v@b.test' id='m${i}'><body>hi</body></message>`);
    a.send("<iq type='get' id='q' from='u@a.test' to='v@b.test'><ping xmlns='urn:xmpp:ping'/></iq>");
    a.send(route);
    // Nobody serves it: answered with an error, which counts out as a message too.
    a.send("<message from='u@a.test' to='w@local.test' id='lost'/>");
    for (let i = 0; i < 100 && (received < 5 || bounced < 1); i++) await delay(20);
    assert.equal(received, 5);
    assert.equal(bounced, 1);
    const text = await metrics.exposition();
    assert.equal(sample(text, "jabberfarm_stanzas_in_total", "message"), 4);
    assert.equal(sample(text, "jabberfarm_stanzas_out_total", "message"), 4);
    assert.equal(sample(text, "jabberfarm_stanzas_in_total", "iq"), 1);
    // A route counts as the stanza it carries.
    assert.equal(sample(text, "jabberfarm_stanzas_in_total", "presence"), 1);
    assert.equal(sample(text, "jabberfarm_stanzas_in_total", "envelope"), 0);
    // Membership notices: the first to join hears of its name, then both hear
    // of the second's, and the second is told of the first's.
    assert.equal(sample(text, "jabberfarm_stanzas_out_total", "other"), 4);
    assert.equal(sample(text, "jabberfarm_connections", "component"), 2);
    assert.equal(sample(text, "jabberfarm_connections", "pending"), 0);
    assert.ok(sample(text, "jabberfarm_queue_bytes") >= 0);
    assert.equal(sample(text, "jabberfarm_routing_seconds_count"), 0, "fewer than 64 stanzas: no sample yet");
  } finally {
    await a.stop();
    await b.stop();
    await router.stop();
  }
  assert.equal(router.listening, false);
});

test("the routing time is sampled one stanza in 64", async () => {
  const metrics = new Metrics({ process: "router", instance: "test", processMetrics: false });
  const router = new Router(testRouterConfig(), { logger: pino({ level: "silent" }), metrics });
  const { port } = await router.start();
  const a = new Component({ name: "a.test", secret: SECRETS["a.test"], routers: [{ host: "127.0.0.1", port }] });
  const b = new Component({ name: "b.test", secret: SECRETS["b.test"], routers: [{ host: "127.0.0.1", port }] });
  let received = 0;
  b.on("stanza", () => received++);
  try {
    await Promise.all([a.start(), b.start()]);
    for (let i = 0; i < 640; i++) a.send(`<message from='u@a.test' to='v@b.test' id='m${i}'/>`);
    for (let i = 0; i < 200 && received < 640; i++) await delay(20);
    const text = await metrics.exposition();
    assert.equal(sample(text, "jabberfarm_routing_seconds_count"), 10);
    assert.ok(sample(text, "jabberfarm_routing_seconds_sum") > 0);
  } finally {
    await a.stop();
    await b.stop();
    await router.stop();
  }
});
