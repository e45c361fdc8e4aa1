#!/usr/bin/env node
// Embedded-farm benchmark (not a test): logins/s and messages/s between
// online pairs, with latency, against `jabberfarm up` (router, xdb on
// PGlite, sm, c2s as separate processes) on this machine.
//
// The load comes from the project's generator (bench/load/xmppload.mjs: raw
// sockets, STARTTLS, SASL PLAIN or MECH=SCRAM-SHA-256/SCRAM-SHA-1); LOADGEN may name another with the same
// options (the shared harness's ../shared/bench/load/xmppload.js). The
// farm's processes are sampled for CPU and RSS through --pids.
// For all targets side by side in one run: bench/side-by-side.mjs.
//
//   node bench/farm.mjs                         # 2000 logins, 100 pairs for 10 s
//   USERS=1000 LOGINS=1000 PAIRS=50 DURATION=5 node bench/farm.mjs
//   LOADGEN=/path/to/xmppload.js node bench/farm.mjs
//   SM=10 node bench/farm.mjs                   # XEP-0198 on every client, <r/> every 10 stanzas
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const env = (k, d) => Number(process.env[k] ?? d);
const USERS = env("USERS", 2000);
const LOGINS = env("LOGINS", 2000);
const CONC = env("CONC", 50);
const PAIRS = env("PAIRS", 100);
const DURATION = env("DURATION", 10);
const WINDOW = env("WINDOW", 10);
const IDLE = env("IDLE", 5000);
const HOLD = env("HOLD", 5);
const LOADGEN = process.env.LOADGEN ?? join(root, "bench/load/xmppload.mjs");
const TLS = process.env.TLS !== "0"; // TLS=0: plaintext c2s with PLAIN in the clear (farm started with --plaintext)
const OUT = process.env.OUT ?? join(root, `bench/results/farm-embedded${TLS ? "" : "-plaintext"}.json`);
const SM = env("SM", 0); // N > 0: XEP-0198 on every client, an ack asked every N stanzas sent
const MECH = process.env.MECH ?? "PLAIN"; // or SCRAM-SHA-256 / SCRAM-SHA-1 (the generator caches the salted password)
const PROFILE = process.env.PROFILE; // a directory: the farm's children write --cpu-prof files there

if (!existsSync(LOADGEN)) {
  console.error(`load generator not found at ${LOADGEN}; set LOADGEN`);
  process.exit(2);
}

const freePort = () => new Promise((resolve) => {
  const s = createServer().listen(0, "127.0.0.1", () => {
    const { port } = s.address();
    s.close(() => resolve(port));
  });
});

const dataDir = mkdtempSync(join(tmpdir(), "jf-bench-farm-"));
const [port, tlsPort, routerPort] = [await freePort(), await freePort(), await freePort()];

// Accounts user1..userN / "pw", written straight into the embedded storage
// before the farm starts (one credential set derived once, reused: the
// benchmark measures logins, not account creation).
{
  const { openPglite } = await import(join(root, "packages/xdb/dist/index.js"));
  const { deriveCredentials } = await import(join(root, "packages/sasl/dist/index.js"));
  const storage = await openPglite(join(dataDir, "db"));
  const creds = deriveCredentials("pw");
  const t0 = Date.now();
  for (let i = 1; i <= USERS; i++) await storage.createAccount(`user${i}@localhost`, creds);
  await storage.close();
  console.error(`created ${USERS} accounts in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

// As in side-by-side (bench/lib/targets.mjs): the peers run without shapers,
// so the c2s byte rate and the PBKDF2 budget of PLAIN are lifted unless
// JF_RATE_LIMIT=default; a login storm then measures the hashing, not the cap.
const limitsLifted = process.env.JF_RATE_LIMIT === "default" ? {} : {
  JABBERFARM__C2S__LIMITS__BYTES_PER_SECOND: "1000000000", JABBERFARM__C2S__LIMITS__BURST_BYTES: "1000000000",
  JABBERFARM__C2S__LIMITS__PLAIN_CHECKS_PER_SECOND: "1000000",
};
const farm = spawn(process.execPath, [join(root, "packages/farm/dist/cli.js"), "up", "--data", dataDir,
  "--port", String(port), "--tls-port", String(tlsPort), "--ws-port", "0", "--router-port", String(routerPort), "--log-level", "warn",
  // The processes this benchmark was written for: no federation (its own bench: s2s.mjs).
  "--s2s", "0",
  ...(TLS ? [] : ["--plaintext"])],
{ stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...limitsLifted, ...(PROFILE ? { JABBERFARM_PROFILE_DIR: PROFILE } : {}) } });
const pids = new Map();
farm.stdout.setEncoding("utf8").on("data", (d) => {
  for (const line of d.split("\n")) {
    try {
      const l = JSON.parse(line);
      if (l.process && l.pid) pids.set(l.process, l.pid);
    } catch { /* not JSON */ }
  }
});
await new Promise((resolve, reject) => {
  let err = "";
  farm.stderr.setEncoding("utf8").on("data", (d) => {
    err += d;
    if (err.includes("jabberfarm is up")) resolve();
  });
  farm.once("exit", (c) => reject(new Error(`farm exited ${c}: ${err}`)));
});
// The children log at warn level; find their pids from the process table instead.
const children = spawnSync("pgrep", ["-P", String(farm.pid)], { encoding: "utf8" }).stdout.trim().split("\n").filter(Boolean);
const pidList = children.join(",");

mkdirSync(join(root, "bench/results"), { recursive: true });
const args = [LOADGEN, "--host", "127.0.0.1", "--port", String(port), "--domain", "localhost", ...(TLS ? ["--tls"] : []),
  "--users", String(USERS), "--password", "pw", "--pids", pidList,
  "--scenario", process.env.SCENARIO ?? "login,messages", "--logins", String(LOGINS), "--concurrency", String(CONC),
  "--idle", String(IDLE), "--hold", String(HOLD), "--pairs", String(PAIRS), "--duration", String(DURATION), "--window", String(WINDOW),
  ...(SM > 0 ? ["--sm", String(SM)] : []), "--mech", MECH,
  "--label", "jabberfarm-embedded", "--out", OUT,
  "--meta", JSON.stringify({ farm: "embedded (PGlite)", processes: "router, xdb, sm, c2s", tls: TLS ? "STARTTLS" : "none", sasl: MECH })];
const r = spawnSync(process.execPath, args, { stdio: ["ignore", "inherit", "inherit"] });
farm.kill("SIGTERM");
await new Promise((resolve) => farm.once("exit", resolve));
if (r.status !== 0) process.exit(r.status ?? 1);

const { readFileSync } = await import("node:fs");
const res = JSON.parse(readFileSync(OUT, "utf8"));
const login = res.scenarios?.login ?? res.login ?? null;
const msgs = res.scenarios?.messages ?? res.messages ?? null;
const idle = res.scenarios?.idle ?? res.idle ?? null;
const summary = { login, idle, messages: msgs };
writeFileSync(OUT.replace(/\.json$/, ".summary.json"), JSON.stringify(summary, null, 2));
console.log(JSON.stringify(summary, null, 2).slice(0, 4000));
