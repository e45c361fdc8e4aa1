#!/usr/bin/env node
// jabberfarm next to ejabberd, prosody and jabberd2, in one run, on this
// machine: for every target and every scenario, a freshly started server
// with accounts user1..userN / "pw", the same load from bench/load/xmppload.mjs,
// then stop. Writes bench/results/side-by-side-<date>.json and
// bench/results/SIDE-BY-SIDE.md (tables per scenario, ratios jabberfarm/peer).
//
//   node bench/side-by-side.mjs                        # all five targets, default sizes
//   node bench/side-by-side.mjs prosody jabberfarm-embedded
//   USERS=1000 LOGINS=500 IDLE=500 PAIRS=20 DURATION=5 node bench/side-by-side.mjs
//   TLS=1 node bench/side-by-side.mjs                  # STARTTLS everywhere
//   node bench/side-by-side.mjs --report bench/results/side-by-side-X.json   # rewrite the Markdown
//
// Sizes and switches are environment variables; see --help and bench/README.md.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, release, tmpdir } from "node:os";
import { basename, join } from "node:path";
import {
  PEERS, ROOT, SHARED, dpkgVersion, farmSupportsPlaintext, jabberfarmVersion, makeJabberfarmTemplate, startJabberfarm, startPeer,
} from "./lib/targets.mjs";
import { sideBySideMarkdown } from "./lib/side-report.mjs";
import { envNumber, envText } from "./lib/env-settings.mjs";
import { XMPPLOAD, runGenerator, scenarioEntry } from "./lib/generator.mjs";
import { abortOnSignalsAndDeadline, answerHelpOrReport, exitWhenDone, stopGeneratorAndServer } from "./lib/run-lifecycle.mjs";

const ALL_TARGETS = ["jabberfarm-embedded", "jabberfarm-postgres", "ejabberd", "prosody", "jabberd2"];
const ALL_SCENARIOS = ["login", "idle", "messages", "presence"];
// Run only when asked for (SCENARIOS=...,rooms): peers get a MUC service for it.
const OPTIONAL_SCENARIOS = ["rooms"];

const HELP = `usage: node bench/side-by-side.mjs [TARGET...]      (default: ${ALL_TARGETS.join(" ")})
       node bench/side-by-side.mjs --report RESULT.json   (rewrite the Markdown from a result file)

environment (defaults in brackets):
  USERS [10000] accounts user1..userN / pw     SCENARIOS [${ALL_SCENARIOS.join(",")}]
  LOGINS [2000] CONC [50]                       login scenario (CONC is also every ramp's concurrency)
  IDLE [5000] HOLD [5]                          idle scenario
  PAIRS [100] WINDOW [10] DURATION [10] DRAIN [5]   messages scenario
  PRESENCE_CHURNERS [100] PRESENCE_OBSERVERS [= churners] PRESENCE_ROSTER [20]
  PRESENCE_DURATION [= DURATION]                presence scenario
  ROOMS [10] OCCUPANTS [10]                     rooms scenario (group chat fan-out; only when SCENARIOS names it;
                                                uses WINDOW, DURATION, DRAIN; ejabberd gets mod_muc, prosody a muc component)
  TLS [0]      1: STARTTLS (required) on every target; 0: plaintext c2s
  SM [0]       N > 0: XEP-0198 on every client (enabled after binding, an ack asked every N
               stanzas sent); ejabberd gets mod_stream_mgmt, prosody mod_smacks; jabberd2 has none
  ARCHIVE [default]  what each server archives of one-to-one chat (XEP-0313): default: its own default
               (jabberfarm every message, the peers nothing); on: all of them every message (ejabberd
               mod_mam, prosody mod_mam, default always); off: none (jabberfarm sm.mam.default never)
  MECH [PLAIN] or SCRAM-SHA-256 / SCRAM-SHA-1 (what a peer does not offer fails its logins)
  PEER_PASSWORDS [plain]  plain: the peers keep plaintext passwords (the shared harness's choice);
               scram: SCRAM keys as the farm keeps them (ejabberd auth_password_format scram with
               sha256, or sha under MECH=SCRAM-SHA-1; prosody internal_hashed), so PLAIN costs
               every server a PBKDF2
  DOMAIN [bench.test]
  PEER_PRESENCE [xmpp]   xmpp: peers' rosters made over XMPP before the presence run; skip: no presence for peers
  JF_PRESENCE_SEED [storage]  storage: rosters written into jabberfarm's storage before start; xmpp: as for peers
  JF_XDB [1]     storage processes of jabberfarm-postgres (up --xdb N; PGlite is always one)
  JF_RATE_LIMIT [off]    off: c2s byte-rate limit lifted like the peers' shapers; default: the farm's defaults
  PG_ADMIN_URL [postgres://postgres@127.0.0.1:5432/postgres]   where jabberfarm-postgres creates its databases
  OUT_DIR [bench/results]   DEADLINE [computed] hard limit in seconds for the whole run
`;

function config() {
  const c = {
    users: envNumber("USERS", 10000),
    logins: envNumber("LOGINS", 2000),
    concurrency: envNumber("CONC", 50),
    idle: envNumber("IDLE", 5000),
    hold: envNumber("HOLD", 5),
    pairs: envNumber("PAIRS", 100),
    window: envNumber("WINDOW", 10),
    duration: envNumber("DURATION", 10),
    drain: envNumber("DRAIN", 5),
    churners: envNumber("PRESENCE_CHURNERS", 100),
    observers: envNumber("PRESENCE_OBSERVERS", 0),
    roster: envNumber("PRESENCE_ROSTER", 20),
    presenceDuration: envNumber("PRESENCE_DURATION", envNumber("DURATION", 10)),
    rooms: envNumber("ROOMS", 10),
    occupants: envNumber("OCCUPANTS", 10),
    tls: envText("TLS", "0") === "1",
    mech: envText("MECH", "PLAIN"),
    sm: envNumber("SM", 0),
    archive: envText("ARCHIVE", "default"),
    peerPasswords: envText("PEER_PASSWORDS", "plain"),
    jfXdb: envNumber("JF_XDB", 1),
    domain: envText("DOMAIN", "bench.test"),
    peerPresence: envText("PEER_PRESENCE", "xmpp"),
    jfPresenceSeed: envText("JF_PRESENCE_SEED", "storage"),
    jfRateLimit: envText("JF_RATE_LIMIT", "off"),
    pgAdminUrl: envText("PG_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres"),
    outDir: envText("OUT_DIR", join(ROOT, "bench/results")),
    scenarios: envText("SCENARIOS", ALL_SCENARIOS.join(",")).split(",").map((s) => s.trim()).filter(Boolean),
    deadline: envNumber("DEADLINE", 0),
  };
  c.observers ||= c.churners;
  for (const s of c.scenarios) if (!ALL_SCENARIOS.includes(s) && !OPTIONAL_SCENARIOS.includes(s)) throw new Error(`SCENARIOS: unknown "${s}"`);
  if (!["xmpp", "skip"].includes(c.peerPresence)) throw new Error("PEER_PRESENCE must be xmpp or skip");
  if (!["storage", "xmpp"].includes(c.jfPresenceSeed)) throw new Error("JF_PRESENCE_SEED must be storage or xmpp");
  if (!["default", "on", "off"].includes(c.archive)) throw new Error("ARCHIVE must be default, on or off");
  if (!["plain", "scram"].includes(c.peerPasswords)) throw new Error("PEER_PASSWORDS must be plain or scram");
  if (!["off", "default"].includes(c.jfRateLimit)) throw new Error("JF_RATE_LIMIT must be off or default");
  if (c.scenarios.includes("messages") && 2 * c.pairs > c.users) throw new Error(`PAIRS=${c.pairs} needs ${2 * c.pairs} accounts; USERS=${c.users}`);
  if (c.scenarios.includes("presence") && c.churners + c.observers > c.users) throw new Error(`presence needs ${c.churners + c.observers} accounts; USERS=${c.users}`);
  if (c.scenarios.includes("presence") && c.roster > c.observers) throw new Error(`PRESENCE_ROSTER=${c.roster} > observers ${c.observers}`);
  return c;
}

const log = (msg) => process.stderr.write(`[side-by-side ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Hard limit for one generator run, from the sizes (the generator gets it as --deadline). */
function generatorDeadline(c, scenario) {
  const ramp = 120 + 30; // --scenario-time-limit + --login-timeout
  switch (scenario) {
    case "login": return 30 + ramp;
    case "idle": return 45 + ramp + c.hold;
    case "messages": return 45 + ramp + c.duration + c.drain;
    case "rooms": return 90 + ramp + c.duration + c.drain;
    case "presence": return 60 + 2 * ramp + c.presenceDuration + 5 + c.drain + 100;
    default: return 300;
  }
}

function generatorArgs(c, target, inst, scenario, out, seed) {
  const a = [XMPPLOAD, "--host", "127.0.0.1", "--port", String(inst.port), "--domain", c.domain,
    "--users", String(c.users), "--password", "pw", "--mech", c.mech, "--concurrency", String(c.concurrency),
    "--pids", inst.procs.map((p) => `${p.name}:${p.pid}`).join(","), "--scenario", scenario,
    "--scenario-time-limit", "120", "--login-timeout", "30", "--deadline", String(generatorDeadline(c, scenario)),
    "--label", target, "--out", out];
  if (inst.tls) a.push("--tls");
  if (c.sm > 0) a.push("--sm", String(c.sm));
  if (scenario === "login") a.push("--logins", String(c.logins));
  if (scenario === "idle") a.push("--idle", String(c.idle), "--hold", String(c.hold));
  if (scenario === "messages") a.push("--pairs", String(c.pairs), "--window", String(c.window), "--duration", String(c.duration), "--drain", String(c.drain));
  if (scenario === "rooms") a.push("--rooms", String(c.rooms), "--occupants", String(c.occupants), "--window", String(c.window), "--duration", String(c.duration), "--drain", String(c.drain));
  if (scenario === "presence") {
    a.push("--churners", String(c.churners), "--observers", String(c.observers), "--roster", String(c.roster),
      "--duration", String(c.presenceDuration), "--drain", String(c.drain), "--seed", seed);
  }
  return a;
}

// ------------------------------------------------------------------ what is running, for cleanup
const running = { generator: undefined, instance: undefined, starting: undefined, preparing: undefined, templates: new Set() };

async function cleanup() {
  // Something being started or prepared right now: let it finish, then undo it.
  if (running.preparing) {
    const t = await running.preparing.catch(() => undefined);
    if (t) running.templates.add(t);
  }
  await stopGeneratorAndServer(running, log);
  for (const t of [...running.templates]) {
    await t.drop().catch((e) => log(`drop template: ${e.message}`));
    running.templates.delete(t);
  }
}

function peerInstalled(name) {
  if (!existsSync(join(SHARED, "servers", `${name}.sh`))) return `no launcher in ${SHARED}/servers`;
  const ok = {
    prosody: () => spawnSync("sh", ["-c", "command -v prosody"]).status === 0,
    jabberd2: () => existsSync("/usr/sbin/jabberd2-router"),
    ejabberd: () => dpkgVersion("ejabberd") !== "unknown",
  }[name]();
  return ok ? undefined : `not installed (run: bash ${SHARED}/setup.sh)`;
}

async function main() {
  const argv = process.argv.slice(2);
  if (answerHelpOrReport(argv, { help: HELP, markdown: sideBySideMarkdown })) return 0;
  const c = config();
  const targets = argv.length ? argv : process.env.TARGETS ? process.env.TARGETS.split(/[\s,]+/).filter(Boolean) : ALL_TARGETS;
  for (const t of targets) if (!ALL_TARGETS.includes(t)) throw new Error(`unknown target ${t} (known: ${ALL_TARGETS.join(", ")})`);

  const stamp = new Date().toISOString().replace(/:/g, "-").replace(/\..*$/, "");
  mkdirSync(c.outDir, { recursive: true });
  const workDir = mkdtempSync(join(tmpdir(), "jf-side-by-side-"));
  const variant = `${c.jfXdb > 1 ? `-xdb${c.jfXdb}` : ""}${c.tls ? "-tls" : ""}${c.sm > 0 ? "-sm" : ""}${c.archive === "default" ? "" : `-archive-${c.archive}`}${c.mech === "PLAIN" ? "" : `-${c.mech.toLowerCase()}`}${c.peerPasswords === "scram" ? "-peers-scram" : ""}`;
  const jsonPath = join(c.outDir, `side-by-side-${stamp}${variant}.json`);
  const mdPath = join(c.outDir, `SIDE-BY-SIDE${variant}.md`);
  const plaintextSupported = farmSupportsPlaintext();

  const perScenario = c.scenarios.reduce((s, sc) => s + generatorDeadline(c, sc) + 150, 0);
  const deadlineS = c.deadline || targets.length * perScenario + 120 + c.users / 100;
  const result = {
    tool: "jabberfarm bench/side-by-side.mjs",
    started_at: new Date().toISOString(),
    host: { cores: cpus().length, cpu: cpus()[0]?.model, kernel: release(), node: process.version },
    config: { ...c, pgAdminUrl: undefined, outDir: undefined, targets, deadline_s: deadlineS, jabberfarm_plaintext_flag: plaintextSupported },
    work_dir: workDir,
    json_file: basename(jsonPath),
    targets: {},
  };
  const save = () => {
    result.finished_at = new Date().toISOString();
    writeFileSync(jsonPath, JSON.stringify(result, null, 2) + "\n");
    writeFileSync(mdPath, sideBySideMarkdown(result));
  };

  const { haltIfAborted, disarm } = abortOnSignalsAndDeadline({
    deadlineS, shownDeadline: Math.round(deadlineS), log,
    stop: async (why) => {
      result.error = why;
      await cleanup();
      save();
      log(`wrote ${jsonPath} and ${mdPath}`);
    },
  });
  log(`targets ${targets.join(", ")}; scenarios ${c.scenarios.join(", ")}; ${c.tls ? "STARTTLS" : "plaintext"}, SASL ${c.mech}${c.sm > 0 ? `, XEP-0198 (ack every ${c.sm})` : ""}; archive ${c.archive}; peers' passwords ${c.peerPasswords}; deadline ${Math.round(deadlineS)} s; work dir ${workDir}`);

  for (const target of targets) {
    const isFarm = target.startsWith("jabberfarm-");
    const kind = isFarm ? target.slice("jabberfarm-".length) : undefined;
    const t = result.targets[target] = { scenarios: {}, notes: [] };
    if (isFarm) {
      t.version = `jabberfarm ${jabberfarmVersion()}`;
      t.storage = kind === "embedded" ? "PGlite (embedded)" : "PostgreSQL 127.0.0.1:5432, fresh database per scenario";
    } else {
      t.version = `${target} ${dpkgVersion(PEERS[target].pkg)}`;
      const missing = peerInstalled(target);
      if (missing) {
        t.error = missing;
        log(`${target}: ${missing}; skipped`);
        continue;
      }
    }
    let template;
    if (isFarm) {
      try {
        running.preparing = makeJabberfarmTemplate({ kind, users: c.users, domain: c.domain, workDir, pgAdminUrl: c.pgAdminUrl, log });
        template = await running.preparing;
        running.preparing = undefined;
        running.templates.add(template);
        await haltIfAborted();
        t.accounts_created_s = Math.round(template.seconds * 10) / 10;
      } catch (err) {
        running.preparing = undefined;
        t.error = `account creation failed: ${err.message}`;
        log(`${target}: ${t.error}`);
        continue;
      }
    }
    for (const scenario of c.scenarios) {
      if (scenario === "presence" && !isFarm && c.peerPresence === "skip") {
        t.scenarios[scenario] = { scenario, skipped: "PEER_PRESENCE=skip" };
        continue;
      }
      const seed = isFarm ? (c.jfPresenceSeed === "storage" ? "none" : "xmpp") : "xmpp";
      log(`=== ${target} / ${scenario}: starting a fresh server`);
      await haltIfAborted();
      let inst;
      try {
        running.starting = isFarm
          ? startJabberfarm({
            template, scenario, domain: c.domain, tls: c.tls, plaintextSupported, workDir, log, rateLimit: c.jfRateLimit, archive: c.archive,
            topology: { routers: 1, xdb: target === "jabberfarm-postgres" ? c.jfXdb : 1, sm: 1, c2s: 1, muc: scenario === "rooms" ? 1 : 0 },
            presence: scenario === "presence" && c.jfPresenceSeed === "storage" ? { churners: c.churners, observers: c.observers, roster: c.roster } : undefined,
          })
          : startPeer({ name: target, domain: c.domain, users: c.users, tls: c.tls, benchWork: join(workDir, "peers"), log, streamManagement: c.sm > 0, muc: c.scenarios.includes("rooms"), archive: c.archive === "on",
            scram: c.peerPasswords === "scram" ? (c.mech === "SCRAM-SHA-1" ? "sha" : "sha256") : undefined });
        inst = await running.starting;
        running.starting = undefined;
        running.instance = inst;
        await haltIfAborted();
      } catch (err) {
        running.starting = undefined;
        running.preparing = undefined;
        t.scenarios[scenario] = { scenario, error: `server did not start: ${err.message.slice(0, 1500)}` };
        log(`${target}: ${t.scenarios[scenario].error}`);
        continue;
      }
      t.mode = inst.mode;
      if (inst.command) t.command = inst.command;
      if (inst.rate_limit) t.rate_limit = inst.rate_limit;
      t.processes = inst.procs.map((p) => p.name).join(", ");
      await sleep(1000);
      const out = join(workDir, `${target}.${scenario}.json`);
      const args = generatorArgs(c, target, inst, scenario, out, seed);
      log(`${target} / ${scenario}: node ${args.map((a) => a.replace(ROOT + "/", "")).join(" ")}`);
      const g = await runGenerator(args, generatorDeadline(c, scenario) + 40, running);
      process.stderr.write(g.stdout);
      await haltIfAborted();
      await inst.stop();
      running.instance = undefined;
      const entry = scenarioEntry({
        out, scenario, exit: g,
        annotate: (e, run) => {
          e.server = {
            processes: run.server_processes, rss_at_start_kb: run.server_rss_at_start_kb, mode: inst.mode,
            ...(inst.rosterItems ? { roster_items_written: inst.rosterItems } : {}),
          };
        },
      });
      if (inst.warnings.length) entry.server_warnings = inst.warnings;
      t.scenarios[scenario] = entry;
      save();
      await sleep(1000);
    }
    if (template) {
      await template.drop().catch((e) => log(`drop template: ${e.message}`));
      running.templates.delete(template);
    }
  }
  disarm();
  save();
  rmSync(join(workDir, "template-pglite"), { recursive: true, force: true });
  log(`wrote ${jsonPath} and ${mdPath} (logs and generator JSON in ${workDir})`);
  process.stdout.write(sideBySideMarkdown(result));
  return 0;
}

exitWhenDone(main, { log, cleanup });
