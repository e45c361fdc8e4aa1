#!/usr/bin/env node
// The farm's shape against its throughput and memory, on this machine: for
// each topology (`jabberfarm up --routers R --sm S --c2s C`, plaintext c2s,
// c2s k on 127.0.0.k) the same accounts and the same load from
// bench/load/xmppload.mjs, spread over every c2s address: logins, messages
// between online pairs, idle sessions. Records msgs/s, logins/s, CPU of
// every farm process per scenario, and RSS of every farm process from /proc
// (after start, peak during each scenario, per idle session). Writes
// bench/results/scale-<date>.json and bench/results/SCALE-<date>.md.
//
//   node bench/scale.mjs                        # 1x1x1 1x2x1 1x1x3 1x2x3 (ROUTERSxSMxC2S), ~4-5 min
//   node bench/scale.mjs 1x1x1 2x2x3            # other topologies (2x2x3: a second router)
//   REPEAT=2 DEADLINE=600 node bench/scale.mjs  # every topology twice (second round in reverse order)
//   node bench/scale.mjs --report bench/results/scale-X.json   # rewrite the Markdown
//
// Benchmarks, not tests; see bench/README.md.
import { spawn } from "node:child_process";
import { pbkdf2Sync } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, release, tmpdir } from "node:os";
import { basename, join } from "node:path";
import { rssSnapshot } from "./load/procstat.mjs";
import { ROOT, farmSupportsPlaintext, jabberfarmVersion, makeJabberfarmTemplate, startJabberfarm } from "./lib/targets.mjs";
import { scaleMarkdown, topologyName } from "./lib/scale-report.mjs";

const XMPPLOAD = join(ROOT, "bench/load/xmppload.mjs");
// A fifth shape with 2 routers does not fit in 5 minutes on this box; run it on its own (see bench/README.md).
const DEFAULT_TOPOLOGIES = ["1x1x1", "1x2x1", "1x1x3", "1x2x3"];
const ALL_SCENARIOS = ["login", "messages", "idle"];

const HELP = `usage: node bench/scale.mjs [ROUTERSxSMxC2S ...]     (default: ${DEFAULT_TOPOLOGIES.join(" ")})
       node bench/scale.mjs --report RESULT.json       (rewrite the Markdown from a result file)

environment (defaults in brackets):
  USERS [2000] accounts user1..userN / pw          SCENARIOS [${ALL_SCENARIOS.join(",")}] (in this order)
  LOGINS [800] CONC [50]                           login scenario (CONC is every ramp's concurrency)
  PAIRS [100] WINDOW [10] DURATION [8] DRAIN [5]   messages scenario
  IDLE [1500] HOLD [2]                             idle scenario
  REPEAT [1]   rounds over the topologies (even rounds in reverse order)
  DEADLINE [300] hard limit in seconds for the whole run; a topology that would not fit is skipped
  DOMAIN [bench.test]   OUT_DIR [bench/results]
`;

function config(argv) {
  const env = (k, d) => (process.env[k] === undefined || process.env[k] === "" ? d : process.env[k]);
  const num = (k, d) => {
    const v = Number(env(k, d));
    if (!Number.isFinite(v) || v < 0) throw new Error(`${k}=${process.env[k]} is not a number`);
    return v;
  };
  const topologies = (argv.length ? argv : DEFAULT_TOPOLOGIES).map((t) => {
    const m = /^(\d)x(\d)x(\d)$/.exec(t);
    if (!m || [m[1], m[2], m[3]].some((n) => Number(n) < 1)) throw new Error(`topology "${t}": expected ROUTERSxSMxC2S, e.g. 1x2x3 (1-9 each)`);
    return { routers: Number(m[1]), sm: Number(m[2]), c2s: Number(m[3]) };
  });
  const c = {
    users: num("USERS", 2000),
    logins: num("LOGINS", 800),
    concurrency: num("CONC", 50),
    pairs: num("PAIRS", 100),
    window: num("WINDOW", 10),
    duration: num("DURATION", 8),
    drain: num("DRAIN", 5),
    idle: num("IDLE", 1500),
    hold: num("HOLD", 2),
    repeat: Math.max(1, num("REPEAT", 1)),
    deadline: num("DEADLINE", 300),
    domain: env("DOMAIN", "bench.test"),
    outDir: env("OUT_DIR", join(ROOT, "bench/results")),
    scenarios: env("SCENARIOS", ALL_SCENARIOS.join(",")).split(",").map((s) => s.trim()).filter(Boolean),
    topologies,
  };
  for (const s of c.scenarios) if (!ALL_SCENARIOS.includes(s)) throw new Error(`SCENARIOS: unknown "${s}" (known: ${ALL_SCENARIOS.join(", ")})`);
  if (c.scenarios.includes("messages") && 2 * c.pairs > c.users) throw new Error(`PAIRS=${c.pairs} needs ${2 * c.pairs} accounts; USERS=${c.users}`);
  return c;
}

/**
 * CPU ms of one PBKDF2-SHA-256 with 4096 iterations (what a SASL PLAIN login
 * costs c2s), the median of `n` in this process: how much work a core does
 * right now. On a shared box the same code can take several times the CPU
 * time when the neighbours are busy, so every row carries it: before the
 * row, and sampled once a second while each scenario runs.
 */
function coreSpeedProbe(n = 15) {
  const xs = [];
  for (let i = 0; i < n; i++) {
    const u0 = process.cpuUsage();
    pbkdf2Sync("pw", "jabberfarm-scale", 4096, 32, "sha256");
    const u = process.cpuUsage(u0);
    xs.push((u.user + u.system) / 1000);
  }
  return median(xs);
}

function median(xs) {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return Math.round(s[Math.floor(s.length / 2)] * 1000) / 1000;
}

const log = (msg) => process.stderr.write(`[scale ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** What one scenario may take at worst, in seconds; the generator gets it (or what is left) as --deadline. */
function scenarioBudget(c, scenario) {
  const ramp = 60; // --scenario-time-limit 45 + slack
  switch (scenario) {
    case "login": return ramp;
    case "messages": return ramp + c.duration + c.drain + 5;
    case "idle": return ramp + c.hold + 5;
    default: return 120;
  }
}

function generatorArgs(c, inst, scenario, out, deadlineS) {
  const a = [XMPPLOAD, "--hosts", inst.hosts.join(","), "--port", String(inst.port), "--domain", c.domain,
    "--users", String(c.users), "--password", "pw", "--concurrency", String(c.concurrency),
    "--pids", inst.procs.map((p) => `${p.name}:${p.pid}`).join(","), "--scenario", scenario,
    "--scenario-time-limit", "45", "--login-timeout", "20", "--deadline", String(Math.max(5, Math.floor(deadlineS))),
    "--label", `jabberfarm ${topologyName(inst.topology)}`, "--out", out];
  if (scenario === "login") a.push("--logins", String(c.logins));
  if (scenario === "messages") a.push("--pairs", String(c.pairs), "--window", String(c.window), "--duration", String(c.duration), "--drain", String(c.drain));
  if (scenario === "idle") a.push("--idle", String(c.idle), "--hold", String(c.hold));
  return a;
}

// ------------------------------------------------------------------ what is running, for cleanup
const running = { generator: undefined, instance: undefined, starting: undefined, template: undefined, templateDir: undefined };

async function cleanup() {
  if (running.starting) {
    const inst = await running.starting.catch(() => undefined);
    if (inst) running.instance = inst;
  }
  const g = running.generator;
  if (g && g.exitCode === null && g.signalCode === null) {
    g.kill("SIGTERM");
    await sleep(500);
    if (g.exitCode === null && g.signalCode === null) g.kill("SIGKILL");
  }
  const inst = running.instance;
  running.instance = undefined;
  if (inst) await inst.stop().catch((e) => log(`stop: ${e.message}`));
  if (running.template) await running.template.drop().catch(() => {});
  // Interrupted while the accounts were being written: the half-made template goes too.
  else if (running.templateDir) rmSync(running.templateDir, { recursive: true, force: true });
}

/**
 * Runs the generator while sampling the farm's RSS every 250 ms and the core
 * speed every second (3 PBKDF2s, ~1 % of a core); resolves with its exit, the
 * highest RSS each process reached meanwhile and the median core speed.
 */
function runGenerator(args, killAfterS, procs) {
  return new Promise((resolve) => {
    // One socket per session: the hard open-file limit.
    const g = spawn("bash", ["-c", 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@"', "gen", process.execPath, ...args], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    running.generator = g;
    let out = "";
    g.stdout.setEncoding("utf8").on("data", (d) => { out += d; });
    const peak = {};
    const speed = [];
    let ticks = 0;
    const sample = () => {
      for (const [k, v] of Object.entries(rssSnapshot(procs).by_process_kb)) peak[k] = Math.max(peak[k] ?? 0, v);
      if (ticks++ % 4 === 3) speed.push(coreSpeedProbe(3));
    };
    sample();
    const poll = setInterval(sample, 250);
    const t1 = setTimeout(() => g.kill("SIGTERM"), killAfterS * 1000);
    const t2 = setTimeout(() => g.kill("SIGKILL"), (killAfterS + 10) * 1000);
    g.on("exit", (code, signal) => {
      clearInterval(poll);
      clearTimeout(t1);
      clearTimeout(t2);
      sample();
      running.generator = undefined;
      resolve({ code, signal, stdout: out, peak, pbkdf2: median(speed) });
    });
  });
}

async function main() {
  const argv = process.argv.slice(2);
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(HELP);
    return 0;
  }
  if (argv[0] === "--report") {
    process.stdout.write(scaleMarkdown(JSON.parse(readFileSync(argv[1], "utf8"))));
    return 0;
  }
  let c;
  try {
    c = config(argv);
  } catch (err) {
    process.stderr.write(`${err.message}\n\n${HELP}`);
    return 2;
  }
  const t0 = Date.now();
  const stamp = new Date().toISOString().replace(/:/g, "-").replace(/\..*$/, "");
  mkdirSync(c.outDir, { recursive: true });
  const workDir = mkdtempSync(join(tmpdir(), "jf-scale-"));
  const jsonPath = join(c.outDir, `scale-${stamp}.json`);
  const mdPath = join(c.outDir, `SCALE-${stamp}.md`);
  const plaintext = farmSupportsPlaintext();
  if (!plaintext) throw new Error("this build has no `up --plaintext`; the scale runs are plaintext only");

  const result = {
    tool: "jabberfarm bench/scale.mjs",
    command: `${Object.entries(process.env).filter(([k]) => ["USERS", "LOGINS", "CONC", "PAIRS", "WINDOW", "DURATION", "DRAIN", "IDLE", "HOLD", "REPEAT", "DEADLINE", "SCENARIOS"].includes(k)).map(([k, v]) => `${k}=${v} `).join("")}node bench/scale.mjs${argv.length ? ` ${argv.join(" ")}` : ""}`,
    started_at: new Date().toISOString(),
    jabberfarm: jabberfarmVersion(),
    host: { cores: cpus().length, cpu: cpus()[0]?.model, kernel: release(), node: process.version, loadavg_at_start: loadavg().map((x) => Math.round(x * 100) / 100) },
    pbkdf2_cpu_ms_at_start: coreSpeedProbe(),
    config: { ...c, outDir: undefined, topologies: c.topologies.map(topologyName) },
    json_file: basename(jsonPath),
    runs: [],
  };
  const save = () => {
    result.finished_at = new Date().toISOString();
    writeFileSync(jsonPath, JSON.stringify(result, null, 2) + "\n");
    writeFileSync(mdPath, scaleMarkdown(result));
  };
  let aborted = false;
  const abort = async (why, code) => {
    if (aborted) return;
    aborted = true;
    log(`${why}: stopping what runs and writing partial results`);
    result.error = why;
    await cleanup();
    save();
    log(`wrote ${jsonPath} and ${mdPath} (farm logs and generator JSON in ${workDir})`);
    process.exit(code);
  };
  process.on("SIGINT", () => void abort("interrupted (SIGINT)", 130));
  process.on("SIGTERM", () => void abort("terminated (SIGTERM)", 143));
  const hard = setTimeout(() => void abort(`overall deadline of ${c.deadline} s reached`, 3), c.deadline * 1000);
  hard.unref();
  const left = () => c.deadline - (Date.now() - t0) / 1000;

  running.templateDir = join(workDir, "template-pglite"); // where makeJabberfarmTemplate writes
  running.template = await makeJabberfarmTemplate({ kind: "embedded", users: c.users, domain: c.domain, workDir, log });
  result.accounts_created_s = Math.round(running.template.seconds * 10) / 10;

  const order = [];
  for (let r = 0; r < c.repeat; r++) order.push(...(r % 2 ? [...c.topologies].reverse() : c.topologies).map((t) => ({ t, round: r + 1 })));
  // What a row usually takes on 2 busy cores: starting costs ~2 s per process, each
  // scenario its ramp and window. A row that runs long is cut by the generators'
  // deadlines and, at the very end, by DEADLINE itself.
  const rowBudget = (t) => Math.round(10 + 2 * (t.routers + 1 + t.sm + t.c2s) + c.scenarios.reduce((s, sc) => s + 5 +
    (sc === "login" ? c.logins / 200 : sc === "messages" ? c.duration + 2 + (2 * c.pairs) / 200 : c.idle / 200 + c.hold + 1), 0));
  for (const { t, round } of order) {
    const name = topologyName(t);
    const row = { topology: t, name, round, scenarios: {}, rss_peak_kb: {}, rss_after_kb: {}, pbkdf2_cpu_ms_during: {} };
    result.runs.push(row);
    if (left() < rowBudget(t)) {
      row.error = `not run: ${Math.round(left())} s left of DEADLINE=${c.deadline}, this topology usually needs ~${rowBudget(t)} s`;
      log(`${name}: ${row.error}`);
      continue;
    }
    row.loadavg_before = loadavg().map((x) => Math.round(x * 100) / 100);
    row.pbkdf2_cpu_ms_before = coreSpeedProbe();
    log(`=== ${name} (routers ${t.routers}, sm ${t.sm}, c2s ${t.c2s}), round ${round}: starting the farm`);
    let inst;
    try {
      running.starting = startJabberfarm({
        template: running.template, scenario: `${name}-r${round}`, domain: c.domain, tls: false, plaintextSupported: true, workDir, log, topology: t,
      });
      inst = await running.starting;
      running.starting = undefined;
      running.instance = inst;
    } catch (err) {
      running.starting = undefined;
      row.error = `farm did not start: ${err.message.slice(0, 1500)}`;
      log(`${name}: ${row.error}`);
      continue;
    }
    row.start_s = Math.round(inst.start_s * 10) / 10;
    row.command = inst.command;
    row.hosts = inst.hosts;
    row.processes = inst.procs.map((p) => `${p.name}:${p.pid}`);
    await sleep(1000);
    row.rss_after_start_kb = rssSnapshot(inst.procs).by_process_kb;
    for (const scenario of c.scenarios) {
      const budget = Math.min(scenarioBudget(c, scenario), left() - 15);
      if (budget < 10) {
        row.scenarios[scenario] = { scenario, error: "not run: deadline" };
        continue;
      }
      const out = join(workDir, `${name}-r${round}.${scenario}.json`);
      const args = generatorArgs(c, inst, scenario, out, budget);
      log(`${name} / ${scenario}: node ${args.map((a) => a.replace(ROOT + "/", "")).join(" ")}`);
      const g = await runGenerator(args, budget + 25, inst.procs);
      let entry;
      try {
        const run = JSON.parse(readFileSync(out, "utf8"));
        entry = run.scenarios[scenario] ?? { scenario, error: "no result for the scenario" };
        if (run.error) entry.generator_error = run.error;
      } catch (err) {
        entry = { scenario, error: `generator wrote no result (exit ${g.code ?? g.signal}): ${err.message}` };
      }
      if (g.code !== 0) entry.generator_exit = g.code ?? g.signal;
      row.scenarios[scenario] = entry;
      row.rss_peak_kb[scenario] = g.peak;
      row.pbkdf2_cpu_ms_during[scenario] = g.pbkdf2;
      row.rss_after_kb[scenario] = rssSnapshot(inst.procs).by_process_kb;
      save();
    }
    const tStop = Date.now();
    await inst.stop();
    running.instance = undefined;
    row.stop_s = Math.round((Date.now() - tStop) / 100) / 10;
    if (inst.warnings.length) row.server_warnings = inst.warnings;
    save();
  }
  clearTimeout(hard);
  result.pbkdf2_cpu_ms_at_end = coreSpeedProbe();
  await running.template.drop();
  running.template = undefined;
  save();
  log(`wrote ${jsonPath} and ${mdPath} in ${Math.round((Date.now() - t0) / 1000)} s (farm logs and generator JSON in ${workDir})`);
  process.stdout.write(scaleMarkdown(result));
  return 0;
}

main().then((code) => process.exit(code), async (err) => {
  log(`failed: ${err.stack ?? err}`);
  await cleanup();
  process.exit(1);
});
