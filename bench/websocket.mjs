#!/usr/bin/env node
// XMPP over WebSocket (RFC 7395) against the same server over TCP, in one
// run: logins per second and messages per second for each transport, for
// jabberfarm (one `jabberfarm up`), ejabberd (ejabberd_http_ws) and prosody
// (mod_websocket), Debian's packages started by ../shared/bench's launchers
// with a WebSocket listener patched in (bench/lib/targets.mjs). Figures go
// to stdout (Markdown) and bench/results/websocket-<date>.json.
//
//   pnpm build && node bench/websocket.mjs            # plaintext: ws:// and TCP
//   TLS=1 node bench/websocket.mjs                    # wss and STARTTLS
//   PEERS=prosody node bench/websocket.mjs            # which peers (default ejabberd,prosody; 0 for none)
//   USERS=400 LOGINS=1000 CONC=20 PAIRS=50 DURATION=10 WINDOW=10 node bench/websocket.mjs
//
// SASL PLAIN everywhere, so that the servers do the same work (the peers keep
// plaintext passwords; jabberfarm checks PLAIN against SCRAM keys, PBKDF2).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { XmppClient } from "./load/client.mjs";
import { WsXmppClient } from "./load/ws-client.mjs";
import {
  ROOT, dpkgVersion, farmSupportsPlaintext, farmSupportsWebSocket, freePort, jabberfarmVersion, makeJabberfarmTemplate, startJabberfarm, startPeer,
} from "./lib/targets.mjs";

const num = (k, d) => (process.env[k] === undefined ? d : Number(process.env[k]));
const USERS = num("USERS", 400);
const LOGINS = num("LOGINS", 1000);
const CONC = num("CONC", 20);
const PAIRS = num("PAIRS", 50);
const DURATION = num("DURATION", 10);
const WINDOW = num("WINDOW", 10);
const TLS = process.env.TLS === "1";
const DOMAIN = "bench.test";
const log = (m) => process.stderr.write(`${m}\n`);

if (!farmSupportsWebSocket() || (!TLS && !farmSupportsPlaintext())) {
  log("this build of jabberfarm lacks up --ws-port (or --plaintext); run pnpm build");
  process.exit(2);
}
// Ends the run whatever happens: nothing here may hang a shell.
const deadline = setTimeout(() => {
  log("deadline reached; stopping");
  process.exit(3);
}, 20 * 60_000);
deadline.unref();

const PEER_NAMES = process.env.PEERS === "0" ? [] : (process.env.PEERS ?? "ejabberd,prosody").split(",").filter(Boolean);
const workDir = mkdtempSync(join(tmpdir(), "jf-bench-ws-"));
const results = {};
const versions = { jabberfarm: jabberfarmVersion() };
const running = [];
try {
  const template = await makeJabberfarmTemplate({ kind: "embedded", users: USERS, domain: DOMAIN, workDir, log });
  running.push({ stop: () => template.drop() });
  const farm = await startJabberfarm({ template, scenario: "websocket", domain: DOMAIN, tls: TLS, plaintextSupported: farmSupportsPlaintext(), workDir, log });
  running.push(farm);
  results.jabberfarm = await measure({ host: "127.0.0.1", port: farm.port, wsUrl: `${TLS ? "wss" : "ws"}://127.0.0.1:${farm.wsPort}/xmpp-websocket` });
  await farm.stop();
  for (const name of PEER_NAMES) {
    versions[name] = dpkgVersion(name);
    if (versions[name] === "unknown") {
      log(`${name}: not installed (bash ../shared/bench/setup.sh); skipped`);
      continue;
    }
    const peer = await startPeer({ name, domain: DOMAIN, users: USERS, tls: TLS, benchWork: join(workDir, "peers"), log, websocketPort: await freePort() });
    running.push(peer);
    results[name] = await measure({ host: "127.0.0.1", port: peer.port, wsUrl: peer.wsUrl });
    await peer.stop();
  }
  const report = {
    date: new Date().toISOString(), versions, node: process.version, mode: TLS ? "TLS: wss and STARTTLS" : "plaintext: ws:// and TCP without TLS",
    load_average_at_end: (await import("node:os")).loadavg(), sizes: { USERS, LOGINS, CONC, PAIRS, DURATION, WINDOW }, farm: farm.command, results,
  };
  mkdirSync(join(ROOT, "bench/results"), { recursive: true });
  const out = join(ROOT, "bench/results", `websocket-${TLS ? "tls-" : ""}${report.date.replace(/[:.]/g, "-").slice(0, 19)}.json`);
  writeFileSync(out, JSON.stringify(report, null, 2) + "\n");
  const rows = Object.entries(results).flatMap(([server, r]) => ["tcp", "websocket"].map((t) =>
    `| ${server} | ${t === "tcp" ? (TLS ? "TCP, STARTTLS" : "TCP") : TLS ? "WebSocket, wss" : "WebSocket, ws"} | ${r[t].login.perSecond} | ${r[t].login.p50Ms} / ${r[t].login.p99Ms} | ${r[t].login.failures} | ${r[t].messages.perSecond} | ${r[t].messages.p50Ms} / ${r[t].messages.p99Ms} |`));
  process.stdout.write([
    `${Object.entries(versions).map(([k, v]) => `${k} ${v}`).join(", ")}, Node ${process.version}; ${report.mode}; ${LOGINS} logins (${CONC} at once), ${PAIRS} pairs x ${DURATION} s (window ${WINDOW}); load average at the end ${report.load_average_at_end.map((x) => x.toFixed(1)).join(" ")}`,
    "",
    "| server | transport | logins/s | login p50 / p99 ms | login failures | msgs/s | msg p50 / p99 ms |",
    "|---|---|---|---|---|---|---|",
    ...rows, "", `(${out.replace(ROOT + "/", "")})`, "",
  ].join("\n"));
} finally {
  for (const r of running.reverse()) await r.stop().catch((e) => log(`stop: ${e.message}`));
  rmSync(workDir, { recursive: true, force: true });
}

/** Both transports of one server: logins, then messages, TCP first. */
async function measure({ host, port, wsUrl }) {
  const clientFor = {
    tcp: (i) => new XmppClient({ host, port, domain: DOMAIN, user: `user${i}`, password: "pw", tls: TLS, mech: "PLAIN" }),
    websocket: (i) => new WsXmppClient({ url: wsUrl, domain: DOMAIN, user: `user${i}`, password: "pw" }),
  };
  const r = {};
  for (const transport of ["tcp", "websocket"]) {
    // Warm up once (JIT, the first handshakes) before measuring.
    await logins(clientFor[transport], Math.min(100, LOGINS), CONC);
    r[transport] = { login: await logins(clientFor[transport], LOGINS, CONC) };
    r[transport].messages = await messages(clientFor[transport], PAIRS, DURATION, WINDOW);
    log(`${transport}: ${JSON.stringify(r[transport])}`);
  }
  return r;
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
    // Qualified: over WebSocket every element is a document of its own (RFC 7395 §3.3.3).
    c.send("<presence xmlns='jabber:client'/>");
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
