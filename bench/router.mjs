#!/usr/bin/env node
// Router throughput benchmark (not a test).
//
// Starts `jabberfarm router` as its own process, connects two components
// to it over loopback (a sender and a receiver, speaking the component
// protocol over raw sockets so the load generator stays cheap), pushes ~200
// byte message stanzas from one to the other for DURATION seconds with at
// most WINDOW stanzas in flight, and reports stanzas/s delivered with the
// router's CPU and RSS read from /proc, and the generator's own CPU.
//
//   node bench/router.mjs                 # 10 s, JSON + table on stdout
//   DURATION=5 WINDOW=20000 node bench/router.mjs
//   METRICS_PORT=19100 node bench/router.mjs   # with the router's metrics on
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const DURATION = Number(process.env.DURATION ?? 10);
const WINDOW = Number(process.env.WINDOW ?? 10_000);
const PORT = Number(process.env.PORT ?? 15347);
const METRICS_PORT = process.env.METRICS_PORT ? Number(process.env.METRICS_PORT) : undefined;
const BATCH = 200;
const CLK_TCK = 100;

const dir = mkdtempSync(join(tmpdir(), "jf-bench-router-"));
const cfg = join(dir, "farm.yaml");
writeFileSync(cfg, `router:
  host: 127.0.0.1
  port: ${PORT}
  domains: [bench.test]
${METRICS_PORT === undefined ? "" : `  metrics: { port: ${METRICS_PORT} }\n`}  components:
    sender.bench: { secret: bench-secret-1, trusted: true }
    receiver.bench: { secret: bench-secret-2, trusted: true }
`);

function cpuTicks(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8");
  const parts = f.slice(f.lastIndexOf(")") + 2).split(" ");
  return Number(parts[11]) + Number(parts[12]); // utime + stime
}
function rssBytes(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) * 1024 : 0;
}

function startRouter() {
  const child = spawn(process.execPath, [join(root, "packages/farm/dist/cli.js"), "router", "--config", cfg, "--log-level", "warn"], {
    stdio: ["ignore", "inherit", "inherit"],
  });
  return child;
}

function component(name, secret) {
  return new Promise((resolve, reject) => {
    const s = connect({ host: "127.0.0.1", port: PORT });
    s.setNoDelay(true);
    let buf = "";
    const onData = (d) => {
      buf += d;
      const m = /<stream:stream [^>]*id='([^']+)'/.exec(buf);
      if (m && !buf.includes("<handshake")) {
        s.write(`<handshake>${createHash("sha1").update(m[1] + secret).digest("hex")}</handshake>`);
      }
      if (buf.includes("<handshake/>")) {
        s.off("data", onData);
        resolve(s);
      }
      if (buf.includes("<stream:error")) reject(new Error(buf));
    };
    s.setEncoding("utf8");
    s.on("data", onData);
    s.once("error", reject);
    s.write(`<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='${name}'>`);
  });
}

async function connectWithRetry(name, secret) {
  for (let i = 0; ; i++) {
    try {
      return await component(name, secret);
    } catch (e) {
      if (i > 100) throw e;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

const router = startRouter();
try {
  const receiver = await connectWithRetry("receiver.bench", "bench-secret-2");
  const sender = await connectWithRetry("sender.bench", "bench-secret-1");

  const body = "x".repeat(60);
  const stanza = (i) =>
    `<message from='alice@sender.bench/load' to='bob@receiver.bench/load' type='chat' id='m${String(i).padStart(8, "0")}'><body>${body}</body></message>`;
  const stanzaBytes = Buffer.byteLength(stanza(0));

  let sent = 0;
  let received = 0;
  let carry = "";
  receiver.on("data", (d) => {
    // Count complete stanzas; a closing tag may straddle two reads.
    const s = carry + d;
    let i = 0;
    for (;;) {
      const j = s.indexOf("</message>", i);
      if (j < 0) break;
      received++;
      i = j + 10;
    }
    carry = s.slice(Math.max(i, s.length - 9));
    pump();
  });

  let stopping = false;
  let waitingDrain = false;
  function pump() {
    if (stopping || waitingDrain) return;
    while (sent - received < WINDOW) {
      let chunk = "";
      for (let k = 0; k < BATCH; k++) chunk += stanza(sent++);
      if (!sender.write(chunk)) {
        waitingDrain = true;
        sender.once("drain", () => {
          waitingDrain = false;
          pump();
        });
        return;
      }
    }
  }

  // warm up 1 s, then measure
  pump();
  await new Promise((r) => setTimeout(r, 1000));
  const t0 = process.hrtime.bigint();
  const r0 = received;
  const c0 = cpuTicks(router.pid);
  const g0 = process.cpuUsage();
  let rssMax = rssBytes(router.pid);
  const sampler = setInterval(() => (rssMax = Math.max(rssMax, rssBytes(router.pid))), 250);
  await new Promise((r) => setTimeout(r, DURATION * 1000));
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const delivered = received - r0;
  const routerCpu = (cpuTicks(router.pid) - c0) / CLK_TCK / seconds;
  const g = process.cpuUsage(g0);
  clearInterval(sampler);
  stopping = true;

  const result = {
    benchmark: "router",
    durationSeconds: Number(seconds.toFixed(2)),
    window: WINDOW,
    stanzaBytes,
    stanzasPerSecond: Math.round(delivered / seconds),
    megabytesPerSecond: Number(((delivered * stanzaBytes) / seconds / 1e6).toFixed(1)),
    routerCpuPercent: Math.round(routerCpu * 100),
    routerRssMB: Number((rssMax / 1e6).toFixed(1)),
    metrics: METRICS_PORT !== undefined,
    generatorCpuPercent: Math.round(((g.user + g.system) / 1e6 / seconds) * 100),
    node: process.version,
  };
  if (METRICS_PORT !== undefined) {
    // One scrape, as Prometheus would, to show what the router measured.
    const text = await (await fetch(`http://127.0.0.1:${METRICS_PORT}/metrics`)).text();
    const read = (re) => Number(re.exec(text)?.[1] ?? NaN);
    const count = read(/^jabberfarm_routing_seconds_count\{[^}]*\} (\S+)$/m);
    result.scraped = {
      stanzasInMessage: read(/^jabberfarm_stanzas_in_total\{kind="message"[^}]*\} (\S+)$/m),
      routingSamples: count,
      routingMeanMicros: Number(((read(/^jabberfarm_routing_seconds_sum\{[^}]*\} (\S+)$/m) / count) * 1e6).toFixed(1)),
    };
  }
  console.log(JSON.stringify(result));
  console.log(`
| stanzas/s | MB/s | stanza bytes | router CPU % | router RSS MB | generator CPU % |
|---:|---:|---:|---:|---:|---:|
| ${result.stanzasPerSecond} | ${result.megabytesPerSecond} | ${stanzaBytes} | ${result.routerCpuPercent} | ${result.routerRssMB} | ${result.generatorCpuPercent} |`);
  sender.destroy();
  receiver.destroy();
} finally {
  router.kill("SIGTERM");
}
