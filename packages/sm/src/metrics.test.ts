import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { pino } from "pino";
import { Metrics, startHealthServer } from "@jabberfarm/metrics";
import { Router } from "@jabberfarm/router";
import { openPostgres } from "@jabberfarm/xdb";
import { startSm } from "./process.js";
import { DATABASE_URL, DOMAIN, SessionDriver, delay, dropSchema } from "./testing.js";

const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" });
const components = { [DOMAIN]: { secret: "sm-test-secret", trusted: true }, c2s: { secret: "c2s-test-secret", trusted: true } };

async function status(port: number, path: string): Promise<number> {
  return (await fetch(`http://127.0.0.1:${port}${path}`)).status;
}

async function until(what: string, check: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`);
    await delay(50);
  }
}

function sample(text: string, line: RegExp): number {
  const m = line.exec(text);
  if (!m) throw new Error(`no sample ${line} in:\n${text}`);
  return Number(m[1]);
}

test("an sm's /readyz follows its router link, and the reconnect is counted", async () => {
  let router = new Router({ host: "127.0.0.1", port: 0, domains: [DOMAIN], components }, { logger });
  const { port } = await router.start();
  const schema = `sm_metrics_${randomBytes(6).toString("hex")}`;
  const storage = await openPostgres(DATABASE_URL, { schema });
  const metrics = new Metrics({ process: "sm", instance: "sm-1", processMetrics: false });
  const sm = await startSm({
    domain: DOMAIN, instance: "sm-1", secret: "sm-test-secret", routers: [{ host: "127.0.0.1", port }],
  }, { logger, storage, metrics });
  const health = await startHealthServer({ port: 0, metrics, ready: () => sm.ready() });
  const driver = new SessionDriver(port);
  try {
    assert.equal(await status(health.port, "/readyz"), 200);
    assert.equal(await status(health.port, "/healthz"), 200);

    await driver.start();
    const s = await driver.open(`alice@${DOMAIN}/phone`);
    const ping = await s.iq(`<iq type='get' to='${DOMAIN}'><ping xmlns='urn:xmpp:ping'/></iq>`);
    assert.equal(ping.attrs.type, "result");
    let text = await metrics.exposition();
    assert.equal(sample(text, /^jabberfarm_sessions\{[^}]*\} (\S+)$/m), 1);
    assert.ok(sample(text, /^jabberfarm_stanzas_in_total\{kind="iq"[^}]*\} (\S+)$/m) >= 1);
    assert.ok(sample(text, /^jabberfarm_stanzas_out_total\{kind="iq"[^}]*\} (\S+)$/m) >= 1);
    assert.ok(sample(text, /^jabberfarm_stanzas_in_total\{kind="envelope"[^}]*\} (\S+)$/m) >= 1, "session start");
    assert.equal(sample(text, /^jabberfarm_connections\{kind="router"[^}]*\} (\S+)$/m), 1);
    assert.equal(sample(text, /^jabberfarm_router_reconnects_total\{[^}]*\} (\S+)$/m), 0);

    // The router goes away: not ready, though still alive.
    await router.stop();
    await until("readyz 503 without a router", async () => (await status(health.port, "/readyz")) === 503);
    assert.equal(await status(health.port, "/healthz"), 200);
    text = await metrics.exposition();
    assert.equal(sample(text, /^jabberfarm_connections\{kind="router"[^}]*\} (\S+)$/m), 0);

    // It comes back on the same address: ready again once the link is up.
    router = new Router({ host: "127.0.0.1", port, domains: [DOMAIN], components }, { logger });
    await router.start();
    await until("readyz 200 with the router back", async () => (await status(health.port, "/readyz")) === 200);
    text = await metrics.exposition();
    assert.equal(sample(text, /^jabberfarm_router_reconnects_total\{[^}]*\} (\S+)$/m), 1);
  } finally {
    await driver.stop();
    await sm.stop();
    assert.equal(await status(health.port, "/readyz"), 503, "not ready once stopping");
    await health.close();
    await router.stop();
    await storage.close();
    await dropSchema(schema);
  }
});
