#!/usr/bin/env node
// jabberfarm over WebSocket (wss, RFC 7395) against the same farm over TCP
// (STARTTLS), in one run on one `jabberfarm up`: logins per second and
// messages per second for each transport, with SASL PLAIN over TLS on both
// so that they do the same work. Figures go to stdout (Markdown) and
// bench/results/websocket-<date>.json.
//
//   pnpm build && node bench/websocket.mjs
//   USERS=400 LOGINS=2000 CONC=25 PAIRS=50 DURATION=10 WINDOW=10 node bench/websocket.mjs
//
// The peers (ejabberd, prosody) are not in this run: ../shared/bench's
// launchers configure no HTTP listener for them (docs/performance.md).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { XmppClient } from "./load/client.mjs";
import { WsXmppClient } from "./load/ws-client.mjs";
import { ROOT, farmSupportsPlaintext, farmSupportsWebSocket, jabberfarmVersion, makeJabberfarmTemplate, startJabberfarm } from "./lib/targets.mjs";

const num = (k, d) => (process.env[k] === undefined ? d : Number(process.env[k]));
const USERS = num("USERS", 400);
const LOGINS = num("LOGINS", 1000);
const CONC = num("CONC", 20);
const PAIRS = num("PAIRS", 50);
const DURATION = num("DURATION", 10);
const WINDOW = num("WINDOW", 10);
const DOMAIN = "bench.test";
const log = (m) => process.stderr.write(`${m}\n`);

if (!farmSupportsWebSocket()) {
  log("this build of jabberfarm has no WebSocket listener (up --ws-port); run pnpm build");
  process.exit(2);
}
// Ends the run whatever happens: nothing here may hang a shell.
const deadline = setTimeout(() => {
  log("deadline reached; stopping");
  process.exit(3);
}, 15 * 60_000);
deadline.unref();

const workDir = mkdtempSync(join(tmpdir(), "jf-bench-ws-"));
let farm;
let template;
try {
  template = await makeJabberfarmTemplate({ kind: "embedded", users: USERS, domain: DOMAIN, workDir, log });
  farm = await startJabberfarm({ template, scenario: "websocket", domain: DOMAIN, tls: true, plaintextSupported: farmSupportsPlaintext(), workDir, log });
  const url = `wss://127.0.0.1:${farm.wsPort}/xmpp-websocket`;
  const clientFor = {
    tcp: (i) => new XmppClient({ host: "127.0.0.1", port: farm.port, domain: DOMAIN, user: `user${i}`, password: "pw", tls: true, mech: "PLAIN" }),
    websocket: (i) => new WsXmppClient({ url, domain: DOMAIN, user: `user${i}`, password: "pw" }),
  };
  const results = {};
  for (const transport of ["tcp", "websocket"]) {
    // Warm up both paths once (JIT, the first TLS handshakes) before measuring.
    await logins(clientFor[transport], Math.min(100, LOGINS), CONC);
    results[transport] = { login: await logins(clientFor[transport], LOGINS, CONC) };
    results[transport].messages = await messages(clientFor[transport], PAIRS, DURATION, WINDOW);
    log(`${transport}: ${JSON.stringify(results[transport])}`);
  }
  const report = {
    date: new Date().toISOString(), jabberfarm: jabberfarmVersion(), node: process.version,
    sizes: { USERS, LOGINS, CONC, PAIRS, DURATION, WINDOW }, farm: farm.command, results,
  };
  mkdirSync(join(ROOT, "bench/results"), { recursive: true });
  const out = join(ROOT, "bench/results", `websocket-${report.date.replace(/[:.]/g, "-").slice(0, 19)}.json`);
  writeFileSync(out, JSON.stringify(report, null, 2) + "\n");
  const row = (t) => `| ${t === "tcp" ? "TCP, STARTTLS" : "WebSocket, wss"} | ${results[t].login.perSecond} | ${results[t].login.p50Ms} / ${results[t].login.p99Ms} | ${results[t].login.failures} | ${results[t].messages.perSecond} | ${results[t].messages.p50Ms} / ${results[t].messages.p99Ms} |`;
  process.stdout.write([
    `jabberfarm ${report.jabberfarm}, Node ${process.version}; ${LOGINS} logins (${CONC} at once), ${PAIRS} pairs x ${DURATION} s (window ${WINDOW})`,
    "",
    "| transport | logins/s | login p50 / p99 ms | login failures | msgs/s | msg p50 / p99 ms |",
    "|---|---|---|---|---|---|",
    row("tcp"), row("websocket"), "", `(${out.replace(ROOT + "/", "")})`, "",
  ].join("\n"));
} finally {
  await farm?.stop();
  await template?.drop();
  rmSync(workDir, { recursive: true, force: true });
}

/** `n` logins, `conc` at a time, accounts round robin; each client leaves once bound. */
async function logins(make, n, conc) {
  const times = [];
  let next = 0;
  let failures = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: conc }, async () => {
    while (next < n) {
      const i = next++;
      const c = make((i % USERS) + 1);
      const s = performance.now();
      try {
        await c.login();
        times.push(performance.now() - s);
      } catch {
        failures++;
      }
      c.close();
    }
  }));
  const secs = (performance.now() - t0) / 1000;
  return { perSecond: Math.round(times.length / secs), ...percentiles(times), failures };
}

/** `pairs` pairs of sessions; each sender keeps `window` messages in flight to its partner's full JID for `seconds`. */
async function messages(make, pairs, seconds, window) {
  const clients = [];
  for (let i = 0; i < pairs * 2; i++) {
    const c = make(i + 1);
    await c.login();
    c.send("<presence/>");
    clients.push(c);
  }
  const latencies = [];
  let delivered = 0;
  let sending = true;
  const t0 = performance.now();
  for (let p = 0; p < pairs; p++) {
    const from = clients[2 * p];
    const to = clients[2 * p + 1];
    const sendOne = () => from.send(`<message xmlns='jabber:client' to='${to.jid}' type='chat'><body>${performance.now().toFixed(3)}</body></message>`);
    to.onStanza = (el) => {
      const text = typeof el === "string" ? el : el.raw;
      if (!text.startsWith("<message")) return;
      const m = /<body>([\d.]+)<\/body>/.exec(text);
      if (!m || !sending) return;
      delivered++;
      latencies.push(performance.now() - Number(m[1]));
      sendOne();
    };
    for (let k = 0; k < window; k++) sendOne();
  }
  await new Promise((r) => setTimeout(r, seconds * 1000));
  sending = false;
  const secs = (performance.now() - t0) / 1000;
  for (const c of clients) c.close();
  return { perSecond: Math.round(delivered / secs), ...percentiles(latencies) };
}

function percentiles(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q) => (s.length === 0 ? 0 : Math.round(s[Math.min(s.length - 1, Math.floor(q * s.length))] * 10) / 10);
  return { p50Ms: at(0.5), p99Ms: at(0.99) };
}
