#!/usr/bin/env node
// Federation benchmark (not a test): messages/s from users of one farm to
// users of another, across their s2s processes, with latency. Two embedded
// farms (`jabberfarm up --domain a.example` and `--domain b.example`, each
// router, xdb on PGlite, sm, c2s and S2S processes of s2s) find each other
// through a DNS zone on loopback (dns2, packages/s2s testing.ts); their
// certificates are self-signed, so the streams use dialback over TLS.
// PAIRS senders on farm A each keep WINDOW messages in flight to their
// partner on farm B (@xmpp/client, SASL PLAIN over STARTTLS) for DURATION s.
//
//   pnpm build && node bench/s2s.mjs            # 20 pairs, window 10, 10 s, one s2s each
//   PAIRS=50 WINDOW=20 DURATION=20 S2S=2 node bench/s2s.mjs
//   RATE=500 node bench/s2s.mjs                # with the s2s's default per-stream rate limit
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const env = (k, d) => Number(process.env[k] ?? d);
const PAIRS = env("PAIRS", 20);
const WINDOW = env("WINDOW", 10);
const DURATION = env("DURATION", 10);
const S2S = env("S2S", 1);
// RATE: the receiving s2s's per-stream stanza rate limit (s2s.limits.stanzasPerSecond, default 500);
// with the default the limit is what is measured, so the benchmark raises it unless told.
const RATE = env("RATE", 100000);
const BURST = env("BURST", Math.max(1000, RATE));
process.env.NODE_TLS_REJECT_UNAUTHORIZED = "0";

const { TestZone } = await import(join(root, "packages/s2s/dist/testing.js"));
const { openPglite } = await import(join(root, "packages/xdb/dist/index.js"));
const { deriveCredentials } = await import(join(root, "packages/sasl/dist/index.js"));
const { client, xml } = await import("@xmpp/client");

const zone = new TestZone();
await zone.listen();

async function startFarm(domain) {
  const dataDir = mkdtempSync(join(tmpdir(), `jf-bench-s2s-${domain}-`));
  const storage = await openPglite(join(dataDir, "db"));
  const creds = deriveCredentials("pw");
  for (let i = 1; i <= PAIRS; i++) await storage.createAccount(`user${i}@${domain}`, creds);
  await storage.close();
  const proc = spawn(process.execPath, [join(root, "packages/farm/dist/cli.js"), "up", "--data", dataDir, "--domain", domain,
    "--port", "0", "--tls-port", "0", "--router-port", "0", "--muc", "0", "--upload", "0",
    "--s2s", String(S2S), "--s2s-port", "0", "--dns", zone.address, "--log-level", "warn"],
  { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, JABBERFARM__S2S__LIMITS__STANZAS_PER_SECOND: String(RATE), JABBERFARM__S2S__LIMITS__BURST: String(BURST) } });
  await new Promise((resolve, reject) => {
    let err = "";
    proc.stderr.setEncoding("utf8").on("data", (d) => {
      err += d;
      if (err.includes("jabberfarm is up")) resolve();
    });
    proc.once("exit", (c) => reject(new Error(`farm ${domain} exited ${c}: ${err}`)));
  });
  const { readFileSync } = await import("node:fs");
  const ports = JSON.parse(readFileSync(join(dataDir, "farm.ports.json"), "utf8"));
  zone.serve(domain, ports.s2s.map((s, i) => ({ priority: i, port: s.port, target: `${s.id}.${domain}` })));
  for (const s of ports.s2s) zone.a.set(`${s.id}.${domain}`, ["127.0.0.1"]);
  return { proc, c2s: ports.c2s[0].starttls };
}

async function login(port, domain, user) {
  const x = client({ service: `xmpp://127.0.0.1:${port}`, domain, username: user, password: "pw", resource: "bench",
    credentials: (auth) => auth({ username: user, password: "pw" }, "PLAIN") });
  x.timeout = 20_000;
  x.reconnect.stop();
  x.on("error", () => {});
  await x.start();
  return x;
}

const [a, b] = await Promise.all([startFarm("a.example"), startFarm("b.example")]);
const senders = [];
const receivers = [];
for (let i = 1; i <= PAIRS; i++) {
  senders.push(await login(a.c2s, "a.example", `user${i}`));
  receivers.push(await login(b.c2s, "b.example", `user${i}`));
}
console.error(`${PAIRS} pairs logged in; warming up the streams`);

const latencies = [];
let delivered = 0;
let measuring = false;
let stop = false;
const sentAt = new Map();
let seq = 0;
const next = async (i) => {
  if (stop) return;
  const id = `m${++seq}`;
  sentAt.set(id, performance.now());
  await senders[i].send(xml("message", { to: `user${i + 1}@b.example/bench`, id, type: "chat" }, xml("body", {}, "federated hello")));
};
receivers.forEach((r, i) => r.on("stanza", (el) => {
  if (!el.is("message") || el.attrs.type === "error") return;
  const t0 = sentAt.get(el.attrs.id);
  if (t0 === undefined) return;
  sentAt.delete(el.attrs.id);
  if (measuring) {
    delivered++;
    latencies.push(performance.now() - t0);
  }
  void next(i);
}));
// One message each way first: the streams (DNS, TLS, dialback) are set up outside the measurement.
for (let i = 0; i < PAIRS; i++) await next(i);
await new Promise((r) => setTimeout(r, 3000));
measuring = true;
const t0 = performance.now();
for (let i = 0; i < PAIRS; i++) for (let w = 1; w < WINDOW; w++) await next(i);
await new Promise((r) => setTimeout(r, DURATION * 1000));
measuring = false;
stop = true;
const secs = (performance.now() - t0) / 1000;
latencies.sort((x, y) => x - y);
const q = (p) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]?.toFixed(1);
const result = {
  when: new Date().toISOString(), pairs: PAIRS, window: WINDOW, durationSeconds: Number(secs.toFixed(1)), s2sPerFarm: S2S,
  rateLimit: RATE, delivered, messagesPerSecond: Math.round(delivered / secs), latencyMs: { p50: q(0.5), p90: q(0.9), p99: q(0.99), max: latencies.at(-1)?.toFixed(1) },
  command: `PAIRS=${PAIRS} WINDOW=${WINDOW} DURATION=${DURATION} S2S=${S2S} RATE=${RATE} node bench/s2s.mjs`,
};
console.log(JSON.stringify(result, null, 2));
mkdirSync(join(root, "bench/results"), { recursive: true });
writeFileSync(join(root, `bench/results/s2s-rate${RATE}.json`), JSON.stringify(result, null, 2) + "\n");
for (const x of [...senders, ...receivers]) await x.stop().catch(() => {});
for (const f of [a, b]) f.proc.kill("SIGTERM");
await Promise.all([a, b].map((f) => new Promise((r) => f.proc.once("exit", r))));
await zone.close();
process.exit(0);
