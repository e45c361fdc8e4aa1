#!/usr/bin/env node
// Memory at start (benchmark, not a test): what each server holds before its
// first user, summed over its processes, in one run beside the peers.
//
//   node bench/memory.mjs                       # jabberfarm, ejabberd, prosody, jabberd2 (those installed)
//   node bench/memory.mjs jabberfarm ejabberd   # a subset
//   SETTLE=10 USERS=300 node bench/memory.mjs
//
// jabberfarm is measured three ways: `jabberfarm up` as an admin starts it
// (router, xdb on PGlite, sm, c2s, muc, upload, s2s and the supervisor) on a
// fresh data directory, the same farm started again on that directory, and
// the core farm alone (--muc 0 --upload 0 --s2s 0: router, xdb, sm, c2s,
// supervisor), the shape issue 17's 744 MB was measured on. The peers are
// started by the shared harness's launchers (../shared/bench/servers/*.sh)
// with USERS accounts.
//
// Two sums per server, from /proc/PID/smaps_rollup once the processes have
// settled (three samples 1 s apart within 1 %, at most SETTLE seconds):
// RSS, what each process maps resident, so pages shared between processes
// (the node binary's code, shared libraries) are counted once per process;
// and PSS, where each shared page is split between the processes sharing
// it, so the sum is what the server takes from the machine.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CLI, PEERS, ROOT, dpkgVersion, jabberfarmVersion, startPeer } from "./lib/targets.mjs";
import { processName } from "./load/procstat.mjs";

const SETTLE = Number(process.env.SETTLE ?? 15);
const USERS = Number(process.env.USERS ?? 300);
const DOMAIN = "bench.test";
const OUT = process.env.OUT ?? join(ROOT, "bench/results/memory.json");
const wanted = process.argv.slice(2);
const targets = wanted.length ? wanted : ["jabberfarm", "ejabberd", "prosody", "jabberd2"];
const log = (m) => process.stderr.write(`[memory] ${m}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function smaps(pid) {
  try {
    const text = readFileSync(`/proc/${pid}/smaps_rollup`, "utf8");
    const kb = (k) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, "m").exec(text)?.[1] ?? 0);
    return { rss: kb("Rss"), pss: kb("Pss") };
  } catch {
    return null;
  }
}

function children(pid) {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function sample(procs) {
  const by = procs.map((p) => ({ ...p, ...smaps(p.pid) }));
  return { by, rss: by.reduce((a, p) => a + (p.rss ?? 0), 0), pss: by.reduce((a, p) => a + (p.pss ?? 0), 0) };
}

/** Samples every second until three in a row are within 1 % of each other, or SETTLE s. */
async function settled(procs) {
  const end = Date.now() + SETTLE * 1000;
  const last = [];
  for (;;) {
    const s = sample(procs());
    last.push(s);
    if (last.length > 3) last.shift();
    const steady = last.length === 3 && Math.max(...last.map((x) => x.pss)) <= Math.min(...last.map((x) => x.pss)) * 1.01;
    if (steady || Date.now() >= end) return { ...s, settled: steady };
    await sleep(1000);
  }
}

async function farm(label, dataDir, extra) {
  const args = [CLI, "up", "--data", dataDir, "--domain", DOMAIN, "--port", "0", "--tls-port", "0", "--ws-port", "0",
    "--router-port", "0", "--upload-port", "0", "--s2s-port", "0", "--log-level", "warn", ...extra];
  const env = { ...process.env };
  for (const k of ["DATABASE_URL", "JABBERFARM_DATA", "JABBERFARM_PROFILE_DIR", "NODE_OPTIONS"]) delete env[k];
  const t0 = Date.now();
  const proc = spawn(process.execPath, args, { stdio: ["ignore", "ignore", "pipe"], env });
  let err = "";
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${label}: not up in 120 s: ${err.slice(-1000)}`)), 120_000);
    proc.stderr.setEncoding("utf8").on("data", (d) => {
      err += d;
      if (err.includes("jabberfarm is up")) {
        clearTimeout(timer);
        resolve();
      }
    });
    proc.once("exit", (c) => reject(new Error(`${label}: up exited ${c}: ${err.slice(-1000)}`)));
  });
  const upS = (Date.now() - t0) / 1000;
  const procs = () => [proc.pid, ...children(proc.pid)].map((pid) => ({ pid, name: pid === proc.pid ? "up" : processName(pid) }));
  const s = await settled(procs);
  proc.kill("SIGTERM");
  await new Promise((r) => proc.once("exit", r));
  return { label, up_s: upS, ...s };
}

async function peer(name) {
  const work = mkdtempSync(join(tmpdir(), `mem-${name}-`));
  const inst = await startPeer({ name, domain: DOMAIN, users: USERS, tls: true, benchWork: work, log });
  try {
    const s = await settled(() => inst.procs);
    return { label: `${name} ${dpkgVersion(PEERS[name].pkg)}`, ...s };
  } finally {
    await inst.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

const rows = [];
for (const t of targets) {
  try {
    if (t === "jabberfarm") {
      const dir = mkdtempSync(join(tmpdir(), "mem-jf-"));
      try {
        rows.push(await farm("jabberfarm up, fresh data directory", join(dir, "a"), []));
        rows.push(await farm("jabberfarm up, started again", join(dir, "a"), []));
        rows.push(await farm("jabberfarm core (--muc 0 --upload 0 --s2s 0)", join(dir, "b"), ["--muc", "0", "--upload", "0", "--s2s", "0"]));
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    } else if (PEERS[t]) {
      if (dpkgVersion(PEERS[t].pkg) === "unknown") {
        log(`${t}: not installed (../shared/bench/setup.sh); left out`);
        continue;
      }
      rows.push(await peer(t));
    } else throw new Error(`unknown target ${t} (jabberfarm, ${Object.keys(PEERS).join(", ")})`);
    const r = rows.at(-1);
    log(`${r.label}: RSS ${Math.round(r.rss / 1024)} MB, PSS ${Math.round(r.pss / 1024)} MB`);
  } catch (e) {
    log(`${t}: ${e.message}`);
    process.exitCode = 1;
  }
}

const mb = (kb) => (kb / 1024).toFixed(0);
const lines = [
  `Memory at start, ${new Date().toISOString()}, jabberfarm ${jabberfarmVersion()}; peers with ${USERS} accounts, STARTTLS`,
  "",
  "| server | processes | RSS sum, MB | PSS sum, MB | by process (PSS, MB) |",
  "| --- | ---: | ---: | ---: | --- |",
  ...rows.map((r) => `| ${r.label}${r.settled ? "" : " (still moving)"} | ${r.by.length} | ${mb(r.rss)} | ${mb(r.pss)} | ${r.by.map((p) => `${p.name} ${mb(p.pss ?? 0)}`).join(", ")} |`),
];
process.stdout.write(lines.join("\n") + "\n");
writeFileSync(OUT, JSON.stringify({ when: new Date().toISOString(), jabberfarm: jabberfarmVersion(), users: USERS, rows }, null, 2));
