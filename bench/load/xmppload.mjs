#!/usr/bin/env node
// jabberfarm's XMPP load generator (benchmarks, not tests). One process,
// raw sockets, a hand-rolled client (./client.mjs); every phase is bounded
// in count and time and the whole run has a hard deadline. Loopback targets
// only. See bench/README.md.
//
//   node bench/load/xmppload.mjs --port 5222 --domain localhost --users 1000 \
//        --scenario login,idle,messages,presence --pids "c2s:123,sm:124" --out r.json
import { lookup } from "node:dns/promises";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { isIP } from "node:net";
import { cpus } from "node:os";
import { dirname } from "node:path";
import { parseArgs } from "node:util";
import { XmppClient, now } from "./client.mjs";
import { parsePids, rssSnapshot } from "./procstat.mjs";
import { runMarkdown } from "./report.mjs";
import { idle } from "./scenarios/idle.mjs";
import { login } from "./scenarios/login.mjs";
import { messages } from "./scenarios/messages.mjs";
import { presence } from "./scenarios/presence.mjs";
import { rooms } from "./scenarios/rooms.mjs";

const SCENARIOS = { login, idle, messages, presence, rooms };

const USAGE = `usage: node bench/load/xmppload.mjs [options]

target (loopback only):
  --host ADDR            127.0.0.1 (any 127.0.0.0/8 address, ::1 or localhost)
  --hosts A,B,...        several c2s on one --port (jabberfarm up --c2s N listens on
                         127.0.0.1, 127.0.0.2, ...): clients go round-robin over them
                         in the order they are created; overrides --host
  --port N               5222
  --domain D             localhost
  --tls                  STARTTLS (required; certificate not checked)
  --mech M               PLAIN | SCRAM-SHA-256 | SCRAM-SHA-1 (default PLAIN)
  --no-scram-cache       run PBKDF2 for every SCRAM login (default: cached per salt, as clients may)
  --sm N                 XEP-0198 on every client: enable after binding (login fails if the
                         server refuses), answer the server's <r/>, ask for an ack every N
                         stanzas sent (default 0: off)
  --users N              accounts user1..userN exist with --password (default 1000)
  --user-prefix P        "user"
  --password PW          "pw"
  --pids LIST            server processes to measure: "PID,PID" or "name:PID,name:PID"

scenarios (--scenario login,idle,messages,presence | all; default login):
  login:    --logins 2000 --concurrency 50
  idle:     --idle 5000 --hold 5 [--no-idle-presence]
  messages: --pairs 100 --window 10 --duration 10 --drain 5 [--bare] [--body-bytes 0]
  rooms:    --rooms 10 --occupants 10 --window 10 --duration 10 --drain 5
            [--room-service conference.DOMAIN] (group chat fan-out, XEP-0045)
  presence: --churners 100 --observers <churners> --roster 20 --duration 10
            --presence-timeout 5 [--no-roster-get] [--seed none|xmpp] [--seed-timeout 60]

limits:
  --login-timeout S      one login (connect to bound), 30
  --scenario-time-limit S  no new logins after this long in one login/idle ramp, 120
  --deadline S           hard limit for the whole run (default: computed from the sizes)
  --settle-ms MS         pause before measuring (RSS baseline, presence settling), 1000

output:
  --label TEXT  --meta JSON  --out FILE (JSON)   Markdown goes to stdout, progress to stderr
`;

function parse(argv) {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      help: { type: "boolean" },
      host: { type: "string", default: "127.0.0.1" },
      hosts: { type: "string", default: "" },
      port: { type: "string", default: "5222" },
      domain: { type: "string", default: "localhost" },
      tls: { type: "boolean", default: false },
      mech: { type: "string", default: "PLAIN" },
      "no-scram-cache": { type: "boolean", default: false },
      sm: { type: "string", default: "0" },
      users: { type: "string", default: "1000" },
      "user-prefix": { type: "string", default: "user" },
      password: { type: "string", default: "pw" },
      pids: { type: "string", default: "" },
      scenario: { type: "string", default: "login" },
      logins: { type: "string", default: "2000" },
      concurrency: { type: "string", default: "50" },
      idle: { type: "string", default: "5000" },
      hold: { type: "string", default: "5" },
      "no-idle-presence": { type: "boolean", default: false },
      pairs: { type: "string", default: "100" },
      window: { type: "string", default: "10" },
      duration: { type: "string", default: "10" },
      drain: { type: "string", default: "5" },
      bare: { type: "boolean", default: false },
      "body-bytes": { type: "string", default: "0" },
      churners: { type: "string", default: "100" },
      rooms: { type: "string", default: "10" },
      occupants: { type: "string", default: "10" },
      "room-service": { type: "string", default: "" },
      observers: { type: "string", default: "0" },
      roster: { type: "string", default: "20" },
      "presence-timeout": { type: "string", default: "5" },
      "no-roster-get": { type: "boolean", default: false },
      seed: { type: "string", default: "none" },
      "seed-timeout": { type: "string", default: "60" },
      "login-timeout": { type: "string", default: "30" },
      "scenario-time-limit": { type: "string", default: "120" },
      deadline: { type: "string", default: "0" },
      "settle-ms": { type: "string", default: "1000" },
      label: { type: "string", default: "" },
      meta: { type: "string", default: "" },
      out: { type: "string", default: "" },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const num = (k, min = 0) => {
    const v = Number(values[k]);
    if (!Number.isFinite(v) || v < min) throw new Error(`--${k}: "${values[k]}" is not a number >= ${min}`);
    return v;
  };
  const scenarios = values.scenario === "all" ? Object.keys(SCENARIOS) : values.scenario.split(",").map((s) => s.trim()).filter(Boolean);
  for (const s of scenarios) if (!SCENARIOS[s]) throw new Error(`--scenario: unknown "${s}" (known: ${Object.keys(SCENARIOS).join(", ")}, all)`);
  if (!["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-1"].includes(values.mech)) throw new Error(`--mech: "${values.mech}"`);
  if (!["none", "xmpp"].includes(values.seed)) throw new Error(`--seed: "${values.seed}" (none or xmpp)`);
  let meta = {};
  if (values.meta) meta = JSON.parse(values.meta);
  const hosts = values.hosts ? values.hosts.split(",").map((h) => h.trim()).filter(Boolean) : [values.host];
  if (hosts.length === 0) throw new Error(`--hosts: "${values.hosts}" names no address`);
  return {
    host: hosts[0],
    hosts,
    port: num("port", 1),
    domain: values.domain,
    tls: values.tls,
    mech: values.mech,
    scramCache: !values["no-scram-cache"],
    sm: num("sm"),
    users: num("users", 1),
    userPrefix: values["user-prefix"],
    password: values.password,
    pids: values.pids,
    scenarios,
    logins: num("logins", 1),
    concurrency: num("concurrency", 1),
    idle: num("idle", 1),
    hold: num("hold"),
    idlePresence: !values["no-idle-presence"],
    pairs: num("pairs", 1),
    window: num("window", 1),
    duration: num("duration", 0.1),
    drain: num("drain"),
    bare: values.bare,
    bodyBytes: num("body-bytes"),
    churners: num("churners", 1),
    rooms: num("rooms", 1),
    occupants: num("occupants", 1),
    roomService: values["room-service"],
    observers: num("observers"),
    roster: num("roster", 1),
    presenceTimeout: num("presence-timeout", 0.1),
    rosterGet: !values["no-roster-get"],
    seed: values.seed,
    seedTimeout: num("seed-timeout", 1),
    loginTimeout: num("login-timeout", 1),
    scenarioTimeLimit: num("scenario-time-limit", 1),
    deadline: num("deadline"),
    settleMs: num("settle-ms"),
    label: values.label,
    meta,
    out: values.out,
  };
}

/** Upper bound for a run, from its sizes: what each scenario may take at worst, plus slack. */
function defaultDeadline(o) {
  let t = 30;
  for (const s of o.scenarios) {
    if (s === "login") t += o.scenarioTimeLimit + o.loginTimeout;
    if (s === "idle") t += o.scenarioTimeLimit + o.loginTimeout + o.hold + o.settleMs / 1000 + 15;
    if (s === "messages") t += o.scenarioTimeLimit + o.loginTimeout + o.duration + o.drain + 15;
    if (s === "rooms") t += o.scenarioTimeLimit + o.loginTimeout + 30 + o.duration + 2 * o.drain + 15;
    if (s === "presence") t += 2 * (o.scenarioTimeLimit + o.loginTimeout) + o.duration + o.presenceTimeout + o.drain + 20 + (o.seed === "xmpp" ? o.seedTimeout + 40 : 0);
  }
  return t;
}

async function checkLoopback(host) {
  const isLoop = (a) => a === "::1" || /^127\./.test(a) || a === "::ffff:127.0.0.1";
  const addrs = isIP(host) ? [host] : (await lookup(host, { all: true })).map((a) => a.address);
  if (addrs.length === 0 || !addrs.every(isLoop)) {
    throw new Error(`--host ${host} (${addrs.join(", ")}) is not a loopback address; this generator only loads servers on this machine`);
  }
}

function fdLimit() {
  try {
    const m = /Max open files\s+(\d+)/.exec(readFileSync("/proc/self/limits", "utf8"));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

const log = (msg) => process.stderr.write(`[xmppload ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);

async function main() {
  let o;
  try {
    o = parse(process.argv.slice(2));
    for (const h of o.hosts) await checkLoopback(h);
  } catch (err) {
    process.stderr.write(`${err.message}\n\n${USAGE}`);
    process.exit(2);
  }
  const procs = parsePids(o.pids);
  const fds = fdLimit();
  const needFds = Math.max(o.scenarios.includes("idle") ? o.idle : 0, 2 * o.pairs, o.churners + (o.observers || o.churners), o.rooms * o.occupants) + 100;
  if (fds !== undefined && fds < needFds) log(`warning: open-file limit ${fds} < ${needFds} sockets this run may need (ulimit -n)`);

  const deadlineS = o.deadline || defaultDeadline(o);
  const tDeadline = now() + deadlineS * 1000;
  const run = {
    tool: "jabberfarm bench/load/xmppload.mjs",
    label: o.label || `${o.hosts.join(", ")}:${o.port}`,
    target: { host: o.host, ...(o.hosts.length > 1 ? { hosts: o.hosts } : {}), port: o.port, domain: o.domain, tls: o.tls, mech: o.mech, scram_cache: o.mech === "PLAIN" ? undefined : o.scramCache },
    accounts: { users: o.users, prefix: o.userPrefix },
    server_processes: procs,
    generator: { node: process.version, pid: process.pid, cores: cpus().length, fd_limit: fds },
    meta: o.meta,
    deadline_s: deadlineS,
    started_at: new Date().toISOString(),
    server_rss_at_start_kb: procs.length ? rssSnapshot(procs).total_kb : null,
    scenarios: {}, // name -> { scenario, params, figures... }
  };

  const finish = (code) => {
    run.finished_at = new Date().toISOString();
    if (procs.length) run.server_rss_at_end_kb = rssSnapshot(procs).total_kb;
    if (o.out) {
      mkdirSync(dirname(o.out), { recursive: true });
      writeFileSync(o.out, JSON.stringify(run, null, 2) + "\n");
    }
    process.stdout.write(runMarkdown(run) + "\n");
    process.exit(code);
  };

  // The hard deadline: loops see ctx.expired() and stop; if something still hangs 20 s later, give up.
  const hard = setTimeout(() => {
    run.error = `hard deadline of ${deadlineS} s (+20 s grace) reached; results are partial`;
    log(run.error);
    finish(3);
  }, deadlineS * 1000 + 20_000);
  hard.unref();

  // With several c2s addresses, the k-th client made goes to hosts[k mod n]: in the messages
  // scenario, sender 2k and receiver 2k+1 then always sit on different c2s when n > 1.
  let clientsMade = 0;
  const ctx = {
    o,
    procs,
    account: (i) => `${o.userPrefix}${(i % o.users) + 1}`,
    client: (user, extra = {}) => new XmppClient({
      host: o.hosts[clientsMade++ % o.hosts.length], port: o.port, domain: o.domain, user, password: o.password, tls: o.tls, mech: o.mech,
      timeoutMs: o.loginTimeout * 1000, scramCache: o.scramCache, sm: o.sm, ...extra,
    }),
    expired: () => now() >= tDeadline,
    log,
  };

  let code = 0;
  for (const name of o.scenarios) {
    if (ctx.expired()) {
      run.scenarios[name] = { scenario: name, error: "not run: deadline reached" };
      code = 3;
      continue;
    }
    log(`${name}: starting`);
    try {
      const r = await SCENARIOS[name](ctx);
      run.scenarios[name] = r;
      log(`${name}: done`);
    } catch (err) {
      log(`${name}: failed: ${err.stack ?? err}`);
      run.scenarios[name] = { scenario: name, error: String(err.message ?? err) };
      code = 1;
    }
    if (ctx.expired()) {
      run.error = `deadline of ${deadlineS} s reached`;
      code = 3;
    }
  }
  finish(code);
}

process.on("SIGTERM", () => process.exit(143));
process.on("SIGINT", () => process.exit(130));
await main();
