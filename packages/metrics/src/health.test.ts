import { test } from "node:test";
import assert from "node:assert/strict";
import { Agent, request } from "node:http";
import { MESSAGE, Metrics, startHealthServer } from "./index.js";

async function get(port: number, path: string, method = "GET"): Promise<{ status: number; type: string | undefined; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { method });
  return { status: res.status, type: res.headers.get("content-type") ?? undefined, body: await res.text() };
}

test("health server: /metrics, /healthz, /readyz and nothing else", async () => {
  const metrics = new Metrics({ process: "sm", instance: "sm-1", processMetrics: false });
  metrics.stanzasIn.add(MESSAGE);
  let ready: boolean | Error | "hang" = false;
  const server = await startHealthServer({
    port: 0,
    metrics,
    readyTimeoutMs: 100,
    ready: () => {
      if (ready instanceof Error) throw ready;
      if (ready === "hang") return new Promise<boolean>(() => {});
      return ready;
    },
  });
  try {
    assert.equal(server.host, "127.0.0.1", "loopback by default");
    assert.ok(server.port > 0);

    const h = await get(server.port, "/healthz");
    assert.equal(h.status, 200);
    assert.equal(h.body, "ok\n");

    assert.equal((await get(server.port, "/readyz")).status, 503);
    ready = true;
    assert.equal((await get(server.port, "/readyz")).status, 200);
    assert.equal((await get(server.port, "/readyz?verbose")).status, 200);
    ready = new Error("broken check");
    assert.equal((await get(server.port, "/readyz")).status, 503);
    ready = "hang";
    assert.equal((await get(server.port, "/readyz")).status, 503);

    const m = await get(server.port, "/metrics");
    assert.equal(m.status, 200);
    assert.match(m.type ?? "", /^text\/plain; version=0\.0\.4/);
    assert.match(m.body, /^jabberfarm_stanzas_in_total\{kind="message",process="sm",instance="sm-1"\} 1$/m);

    assert.equal((await get(server.port, "/")).status, 404);
    assert.equal((await get(server.port, "/metrics/extra")).status, 404);
    const post = await get(server.port, "/metrics", "POST");
    assert.equal(post.status, 405);
    const head = await get(server.port, "/healthz", "HEAD");
    assert.equal(head.status, 200);
    assert.equal(head.body, "");
  } finally {
    await server.close();
  }
});

test("close() does not wait for a scraper's idle keep-alive connection", async () => {
  const metrics = new Metrics({ process: "router", instance: "127.0.0.1:0", processMetrics: false });
  const server = await startHealthServer({ port: 0, metrics, ready: () => true });
  // A kept-alive connection, as Prometheus keeps one between scrapes.
  await new Promise<void>((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port: server.port, path: "/metrics", agent: new Agent({ keepAlive: true }) }, (res) => {
      res.resume();
      res.on("end", resolve);
    });
    req.on("error", reject);
    req.end();
  });
  const t0 = Date.now();
  await server.close();
  assert.ok(Date.now() - t0 < 1000, "closed at once");
  await assert.rejects(get(server.port, "/healthz"));
});

test("a port in use is an error at start", async () => {
  const metrics = new Metrics({ process: "c2s", instance: "c2s-1", processMetrics: false });
  const first = await startHealthServer({ port: 0, metrics, ready: () => true });
  try {
    await assert.rejects(startHealthServer({ port: first.port, metrics, ready: () => true }), /EADDRINUSE/);
  } finally {
    await first.close();
  }
});
