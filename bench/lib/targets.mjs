// Servers under test for bench/side-by-side.mjs: jabberfarm (embedded PGlite
// or PostgreSQL) started with `jabberfarm up`, and the peers started by the
// shared harness's launchers (../shared/bench/servers/*.sh). Everything
// listens on 127.0.0.1 only; everything started here is stopped here.
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { cpSync, createWriteStream, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, join } from "node:path";
import { processName } from "../load/procstat.mjs";
import { presencePlan } from "../load/roster-plan.mjs";

export const ROOT = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");
export const CLI = join(ROOT, "packages/farm/dist/cli.js");
export const SHARED = process.env.SHARED_BENCH ?? join(ROOT, "../shared/bench");

export const PEERS = {
  ejabberd: { port: 15242, pkg: "ejabberd" },
  prosody: { port: 15222, pkg: "prosody" },
  jabberd2: { port: 15232, pkg: "jabberd2" },
};

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitExit(pids, ms) {
  const end = Date.now() + ms;
  while (pids.some(alive) && Date.now() < end) await sleep(100);
  return !pids.some(alive);
}

export function dpkgVersion(pkg) {
  try {
    return execFileSync("dpkg-query", ["-W", "-f", "${Version}", pkg], { encoding: "utf8" }).trim();
  } catch {
    return "unknown";
  }
}

export function jabberfarmVersion() {
  try {
    const rev = execFileSync("git", ["-C", ROOT, "rev-parse", "--short", "HEAD"], { encoding: "utf8" }).trim();
    const dirty = execFileSync("git", ["-C", ROOT, "status", "--porcelain", "--", "packages"], { encoding: "utf8" }).trim() ? "+uncommitted changes in packages/" : "";
    return `${rev}${dirty}`;
  } catch {
    return "unknown";
  }
}

/**
 * True when the built CLI knows `up --plaintext` (no TLS required, PLAIN in
 * the clear). The option has lived in cli.js and later in options.js beside
 * it; a miss would make the farm run STARTTLS against plaintext peers.
 */
export function farmSupportsPlaintext() {
  return builtFarmFileMentions("--plaintext");
}

/** True when the built CLI knows `up --ws-port` (the c2s WebSocket listener, RFC 7395). */
export function farmSupportsWebSocket() {
  return builtFarmFileMentions("--ws-port");
}

function builtFarmFileMentions(text) {
  return ["cli.js", "options.js"].some((file) => {
    try {
      return readFileSync(join(dirname(CLI), file), "utf8").includes(text);
    } catch {
      return false;
    }
  });
}

// ------------------------------------------------------------------ storage

async function xdb() {
  const x = await import(join(ROOT, "packages/xdb/dist/index.js"));
  const s = await import(join(ROOT, "packages/sasl/dist/index.js"));
  return { ...x, deriveCredentials: s.deriveCredentials };
}

/** psql against the admin URL (trust auth on the project's machines). */
function psql(adminUrl, sql) {
  const r = spawnSync("psql", [adminUrl, "-v", "ON_ERROR_STOP=1", "-Atqc", sql], { encoding: "utf8", timeout: 120_000 });
  if (r.error) throw new Error(`psql: ${r.error.message} (is the postgresql client installed?)`);
  if (r.status !== 0) throw new Error(`psql failed (${sql}): ${r.stderr.trim()}`);
  return r.stdout.trim();
}

export function checkLoopbackUrl(url) {
  const u = new URL(url);
  if (!["127.0.0.1", "localhost", "[::1]"].includes(u.hostname)) throw new Error(`database URL ${url} is not on loopback`);
}

/** Accounts user1..userN with ONE credential set for all, `concurrency` writes in flight. */
async function createAccounts(storage, deriveCredentials, n, domain, concurrency) {
  const creds = deriveCredentials("pw");
  let next = 1;
  const worker = async () => {
    while (next <= n) {
      const i = next++;
      await storage.createAccount(`user${i}@${domain}`, creds);
      // PGlite answers through microtasks only: without a turn of the event loop now and
      // then, Ctrl-C and SIGTERM wait until every account is written.
      if (i % 200 === 0) await new Promise((r) => setImmediate(r));
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

/** Mutual "both" roster items for the presence scenario, written before the server starts. */
export async function seedRosters(storage, plan, concurrency = 1) {
  const items = [];
  for (const [c, o] of plan.links()) items.push([c, o], [o, c]);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const [user, jid] = items[next++];
      await storage.setRosterItem(user, { jid, subscription: "both", groups: [] });
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return items.length;
}

/**
 * A jabberfarm storage template with the accounts in it, made once per
 * target and cloned for every scenario (a directory copy for PGlite,
 * CREATE DATABASE ... TEMPLATE for Postgres), so each scenario starts on
 * a fresh store without paying for account creation again.
 */
export async function makeJabberfarmTemplate({ kind, users, domain, workDir, pgAdminUrl, log }) {
  const { openPglite, openPostgres, deriveCredentials } = await xdb();
  const t0 = Date.now();
  if (kind === "embedded") {
    const dir = join(workDir, "template-pglite");
    rmSync(dir, { recursive: true, force: true });
    const storage = await openPglite(join(dir, "db"));
    try {
      await createAccounts(storage, deriveCredentials, users, domain, 1);
    } finally {
      await storage.close();
    }
    log(`jabberfarm-embedded: ${users} accounts in PGlite in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    return { kind, dir, seconds: (Date.now() - t0) / 1000, drop: async () => rmSync(dir, { recursive: true, force: true }) };
  }
  checkLoopbackUrl(pgAdminUrl);
  const tag = `jf_bench_${randomBytes(4).toString("hex")}`;
  const tmpl = `${tag}_tmpl`;
  const created = [];
  const dbUrl = (name) => pgAdminUrl.replace(/\/[^/?]*(\?|$)/, `/${name}$1`);
  psql(pgAdminUrl, `CREATE DATABASE ${tmpl}`);
  created.push(tmpl);
  const drop = async (name) => {
    psql(pgAdminUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    const k = created.indexOf(name);
    if (k >= 0) created.splice(k, 1);
  };
  const storage = await openPostgres(dbUrl(tmpl));
  try {
    await createAccounts(storage, deriveCredentials, users, domain, 8);
  } finally {
    await storage.close();
  }
  log(`jabberfarm-postgres: ${users} accounts in database ${tmpl} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return {
    kind, tmpl, tag, dbUrl, created, seconds: (Date.now() - t0) / 1000,
    async clone(name) {
      const db = `${tag}_${name}`;
      psql(pgAdminUrl, `CREATE DATABASE ${db} TEMPLATE ${tmpl}`);
      created.push(db);
      return { db, url: dbUrl(db), drop: () => drop(db) };
    },
    /** Drops every database this template made (itself included). */
    drop: async () => {
      for (const name of [...created].reverse()) await drop(name).catch(() => {});
    },
  };
}

// ------------------------------------------------------------------ jabberfarm

/** True when nothing listens on host:port (TCP). */
function portFree(port, host) {
  return new Promise((resolve) => {
    const s = createServer();
    s.once("error", () => resolve(false));
    s.listen(port, host, () => s.close(() => resolve(true)));
  });
}

/** A port free on every one of `hosts`, with the next `run - 1` ports free too (routers take BASE, BASE+1, ...). */
async function freePortOn(hosts, run = 1) {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = await freePort();
    if (base + run - 1 > 65535) continue;
    let ok = true;
    for (let p = base; p < base + run && ok; p++) for (const h of hosts) if (!(await portFree(p, h))) ok = false;
    if (ok) return base;
  }
  throw new Error(`no run of ${run} free port(s) on ${hosts.join(", ")}`);
}

/** Where `jabberfarm up --c2s N --host 127.0.0.1` puts its c2s: 127.0.0.1, 127.0.0.2, ... (packages/farm/src/cli.ts). */
export const c2sHosts = (n) => Array.from({ length: n }, (_, i) => `127.0.0.${i + 1}`);

/**
 * A farm child's name as `up` names it: its kind, with the instance number
 * when there are several of that kind (sm-1, sm-2, c2s-3, router-2), read
 * from the environment `up` gave it (/proc/PID/environ: the instance id, or
 * the router's port).
 */
function farmChildName(pid, topology, routerPort) {
  const kind = processName(pid);
  const count = { router: topology.routers, sm: topology.sm, c2s: topology.c2s }[kind];
  if (!count || count === 1) return kind;
  let env = "";
  try {
    env = readFileSync(`/proc/${pid}/environ`, "utf8");
  } catch { /* gone */ }
  const v = (k) => new RegExp(`(?:^|\0)${k}=([^\0]*)`).exec(env)?.[1];
  if (kind === "router") {
    const port = Number(v("JABBERFARM__ROUTER__PORT"));
    return port ? `router-${port - routerPort + 1}` : kind;
  }
  return v(`JABBERFARM__${kind.toUpperCase()}__INSTANCE`) ?? kind;
}

/**
 * Starts `jabberfarm up` on a fresh clone of the template; resolves once
 * stderr says "jabberfarm is up". Server processes are the children of
 * the `up` process. `topology` is `up --routers/--sm/--c2s`; with several
 * c2s, clients reach them on `hosts` (same port).
 */
export async function startJabberfarm({
  template, scenario, domain, tls, plaintextSupported, presence, workDir, log, rateLimit = "off", archive = "default", startTimeoutMs = 90_000,
  topology = { routers: 1, sm: 1, c2s: 1 },
}) {
  const dataDir = join(workDir, `jabberfarm-${template.kind}-${scenario}`);
  rmSync(dataDir, { recursive: true, force: true });
  mkdirSync(dataDir, { recursive: true });
  const cleanups = [async () => rmSync(dataDir, { recursive: true, force: true })];
  let databaseUrl;
  try {
    if (template.kind === "embedded") {
      cpSync(template.dir, dataDir, { recursive: true });
    } else {
      const c = await template.clone(scenario);
      databaseUrl = c.url;
      cleanups.unshift(c.drop);
    }
    let rosterItems = 0;
    if (presence) {
      const { openPglite, openPostgres } = await xdb();
      const storage = databaseUrl ? await openPostgres(databaseUrl) : await openPglite(join(dataDir, "db"));
      try {
        rosterItems = await seedRosters(storage, presencePlan({ ...presence, domain }), databaseUrl ? 8 : 1);
      } finally {
        await storage.close();
      }
    }
    const hosts = c2sHosts(topology.c2s);
    const port = await freePortOn(hosts);
    const tlsPort = await freePortOn(hosts);
    // Not the default 5280: another farm (or another bench) may hold it.
    const wsPort = farmSupportsWebSocket() ? await freePortOn(hosts) : undefined;
    const routerPort = await freePortOn(["127.0.0.1"], topology.routers);
    const plaintext = !tls && plaintextSupported;
    const counts = [["routers", topology.routers], ["xdb", topology.xdb ?? 1], ["sm", topology.sm], ["c2s", topology.c2s]].filter(([, n]) => n > 1).flatMap(([k, n]) => [`--${k}`, String(n)]);
    // Group chat only where a run asks for it (the rooms scenario); no upload service or federation in benchmarks.
    counts.push("--muc", String(topology.muc ?? 0), "--upload", "0", "--s2s", "0");
    const args = [CLI, "up", "--data", dataDir, "--domain", domain, "--host", "127.0.0.1",
      "--port", String(port), "--tls-port", String(tlsPort), ...(wsPort === undefined ? [] : ["--ws-port", String(wsPort)]),
      "--router-port", String(routerPort), "--log-level", "warn",
      ...counts, ...(databaseUrl ? ["--database-url", databaseUrl] : []), ...(plaintext ? ["--plaintext"] : [])];
    const env = { ...process.env };
    for (const k of ["DATABASE_URL", "JABBERFARM_DATA", "JABBERFARM_PROFILE_DIR", "NODE_OPTIONS"]) delete env[k];
    for (const k of Object.keys(env)) if (k.startsWith("JABBERFARM__")) delete env[k];
    // The peers run without traffic shaping (../shared/bench/README.md); c2s has a per-client
    // byte rate (64 KiB/s by default) that a fast sender in the message test exceeds. The same
    // farm as the flags alone give, with that lifted through up's environment overrides
    // (docs/operations.md), which every child inherits.
    // The same for the PBKDF2 budget of PLAIN (200 checks a second per c2s): a login storm measures the hashing, not the cap.
    const overrides = rateLimit === "off" ? {
      JABBERFARM__C2S__LIMITS__BYTES_PER_SECOND: "1000000000", JABBERFARM__C2S__LIMITS__BURST_BYTES: "1000000000",
      JABBERFARM__C2S__LIMITS__PLAIN_CHECKS_PER_SECOND: "1000000",
    } : {};
    Object.assign(env, overrides);
    // ARCHIVE=off: the archive module stays loaded (as in any farm) but writes nothing.
    if (archive === "off") env.JABBERFARM__SM__MAM__DEFAULT = "never";
    const logFile = join(workDir, `jabberfarm-${template.kind}-${scenario}.log`);
    const logStream = createWriteStream(logFile);
    const tStart = Date.now();
    const proc = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"], env });
    const warnings = [];
    let stderr = "";
    proc.stdout.setEncoding("utf8").on("data", (d) => {
      logStream.write(d);
      for (const line of d.split("\n")) {
        if (line.includes("child exited; restarting")) warnings.push(`a farm process died and was restarted: ${line.slice(0, 300)}`);
        // Delivered but not archived (the SM's archive writer past its queue, or a batch failed twice): the run's
        // msgs/s then overstates what the farm archives. The writer logs every 1000th drop; the first is enough.
        if (line.includes("not archived") && !warnings.some((w) => w.startsWith("messages not archived"))) {
          warnings.push(`messages not archived: ${line.slice(0, 300)}`);
        }
      }
    });
    const up = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`jabberfarm did not report "jabberfarm is up" within ${startTimeoutMs / 1000} s`)), startTimeoutMs);
      proc.stderr.setEncoding("utf8").on("data", (d) => {
        logStream.write(d);
        stderr += d;
        if (stderr.includes("jabberfarm is up")) {
          clearTimeout(timer);
          resolve();
        }
      });
      proc.once("exit", (code, sig) => {
        clearTimeout(timer);
        reject(new Error(`jabberfarm up exited (${code ?? sig}) before it was up: ${stderr.slice(-2000)}`));
      });
    });
    let stopping;
    const stop = () => (stopping ??= stopFarm());
    const stopFarm = async () => {
      const kids = childPids(proc.pid);
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill("SIGTERM");
        if (!(await waitExit([proc.pid], 75_000))) proc.kill("SIGKILL");
      }
      // Children that outlived their supervisor (should not happen) are ours too.
      if (!(await waitExit(kids, 5_000))) for (const k of kids) if (alive(k)) process.kill(k, "SIGKILL");
      logStream.end();
      for (const c of cleanups) await c().catch((e) => log(`cleanup: ${e.message}`));
    };
    try {
      await up;
    } catch (err) {
      await stop();
      throw err;
    }
    const pids = childPids(proc.pid);
    const procs = pids.map((pid) => ({ name: farmChildName(pid, topology, routerPort), pid }));
    const envText = Object.entries(overrides).map(([k, v]) => `${k}=${v} `).join("");
    return {
      port, wsPort, hosts, domain, tls: !plaintext, procs, warnings, stop, logFile, rosterItems, topology,
      start_s: (Date.now() - tStart) / 1000,
      mode: plaintext ? "plaintext (--plaintext)" : tls ? "STARTTLS" : "STARTTLS (this build has no --plaintext)",
      command: `${envText}node ${args.map((a) => a.replace(ROOT + "/", "")).join(" ")}`,
      rate_limit: rateLimit === "off" ? "c2s byte rate lifted (limits.bytesPerSecond = burstBytes = 1e9)" : "c2s defaults (64 KiB/s per client)",
      database: databaseUrl ? `PostgreSQL ${databaseUrl.replace(/\/\/[^@]*@/, "//")}` : "PGlite",
      supervisor_pid: proc.pid,
    };
  } catch (err) {
    for (const c of cleanups) await c().catch(() => {});
    throw err;
  }
}

function childPids(pid) {
  const r = spawnSync("pgrep", ["-P", String(pid)], { encoding: "utf8" });
  return r.stdout.split("\n").map((s) => Number(s.trim())).filter((n) => n > 0);
}

// ------------------------------------------------------------------ peers

/**
 * The shared launchers with features turned on that they leave off, copied
 * under `benchWork` so the shared harness stays as it is:
 * - `streamManagement`: XEP-0198 (ejabberd's mod_stream_mgmt, prosody 0.12's
 *   mod_smacks); jabberd2 has none, so its logins fail under `--sm`, which
 *   the report shows;
 * - `muc`: group chat at conference.DOMAIN (ejabberd's mod_muc, prosody's
 *   muc component); jabberd2 ships no MUC.
 * - `archive`: every one-to-one message archived (XEP-0313; ejabberd's
 *   mod_mam in its default Mnesia, prosody's mod_mam in its default file
 *   storage, both with the default policy "always").
 * - `scram`: passwords stored as SCRAM keys, as the farm stores them
 *   (ejabberd's `auth_password_format: scram` with `auth_scram_hash` sha256,
 *   or sha for SCRAM-SHA-1; prosody's internal_hashed, SCRAM-SHA-1 only in
 *   0.12, which hashes the launcher's plaintext account files at their first
 *   login); PLAIN then costs each of them a PBKDF2 as it costs the farm.
 * - `websocketPort`: XMPP over WebSocket (RFC 7395) at
 *   http(s)://127.0.0.1:PORT/xmpp-websocket (ejabberd's ejabberd_http_ws,
 *   prosody's mod_websocket; TLS as the c2s listener has it); jabberd2 has none.
 */
function patchedLaunchers(benchWork, { streamManagement, muc, websocketPort, archive, scram }) {
  const dir = join(benchWork, `servers${streamManagement ? "-sm" : ""}${muc ? "-muc" : ""}${archive ? "-mam" : ""}${scram ? `-scram-${scram}` : ""}${websocketPort ? `-ws${websocketPort}` : ""}`);
  if (existsSync(dir)) return dir;
  mkdirSync(benchWork, { recursive: true });
  cpSync(join(SHARED, "servers"), dir, { recursive: true });
  const patch = (file, from, to) => {
    const path = join(dir, file);
    const text = readFileSync(path, "utf8");
    if (!text.includes(from)) throw new Error(`${file}: cannot patch the launcher (no "${from}" in it)`);
    writeFileSync(path, text.replace(from, to));
  };
  if (streamManagement) {
    patch("ejabberd.sh", "  mod_ping: {}\n", "  mod_ping: {}\n  mod_stream_mgmt: {}\n");
    patch("prosody.sh", "\"iq\" }", "\"iq\"; \"smacks\" }");
  }
  if (muc) {
    patch("ejabberd.sh", "  mod_ping: {}\n", "  mod_ping: {}\n  mod_muc: {}\n");
    patch("prosody.sh", "VirtualHost \"$domain\"\n", "VirtualHost \"$domain\"\nComponent \"conference.$domain\" \"muc\"\n");
  }
  if (archive) {
    patch("ejabberd.sh", "  mod_ping: {}\n", "  mod_ping: {}\n  mod_mam:\n    default: always\n");
    patch("prosody.sh", "modules_enabled = {", "modules_enabled = { \"mam\";");
    patch("prosody.sh", "VirtualHost \"$domain\"\n", "default_archive_policy = true\narchive_expires_after = \"never\"\nVirtualHost \"$domain\"\n");
  }
  if (scram) {
    patch("ejabberd.sh", "auth_password_format: plain", `auth_password_format: scram\nauth_scram_hash: ${scram}`);
    patch("prosody.sh", 'authentication = "internal_plain"', 'authentication = "internal_hashed"');
  }
  if (websocketPort) {
    // An ejabberd_http listener beside the c2s one, TLS when the c2s has it ($tls_cfg holds the certificate then).
    patch("ejabberd.sh", "$listen_tls\n", `$listen_tls
  -
    port: ${websocketPort}
    ip: "127.0.0.1"
    module: ejabberd_http
    tls: $( [ "$tls" = tls ] && echo true || echo false )
    request_handlers:
      /xmpp-websocket: ejabberd_http_ws
`);
    // Prosody: mod_http on its own port (https with the launcher's certificate in TLS mode), mod_websocket on it.
    patch("prosody.sh", "modules_enabled = {", "modules_enabled = { \"websocket\";");
    patch("prosody.sh", "VirtualHost \"$domain\"\n", `http_interfaces = { "127.0.0.1" }
https_interfaces = { "127.0.0.1" }
$( [ "$tls" = tls ] && echo 'http_ports = { }' || echo 'http_ports = { ${websocketPort} }' )
$( [ "$tls" = tls ] && echo 'https_ports = { ${websocketPort} }' || echo 'https_ports = { }' )
$( [ "$tls" = tls ] && echo 'https_ssl = { certificate = "'"$DIR"'/cert.pem"; key = "'"$DIR"'/key.pem"; }' )
consider_websocket_secure = true  -- as allow_unencrypted_plain_auth above: benchmark only
cross_domain_websocket = true
VirtualHost "$domain"\n`);
  }
  return dir;
}

function runLauncher(name, args, env, timeoutMs, launchers = join(SHARED, "servers")) {
  return new Promise((resolve, reject) => {
    const script = join(launchers, `${name}.sh`);
    if (!existsSync(script)) return reject(new Error(`no launcher ${script}`));
    // The servers hold one socket per session: give them the hard open-file limit.
    const p = spawn("bash", ["-c", 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec bash "$@"', "launcher", script, ...args], {
      env, stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    p.stdout.setEncoding("utf8").on("data", (d) => { out += d; });
    p.stderr.setEncoding("utf8").on("data", (d) => { err += d; });
    const timer = setTimeout(() => p.kill("SIGKILL"), timeoutMs);
    p.on("exit", (code) => {
      clearTimeout(timer);
      if (code === 0) resolve({ out, err });
      else reject(new Error(`${name}.sh ${args[0]} failed (${code}): ${err.slice(-1500)}`));
    });
  });
}

export async function startPeer({ name, domain, users, tls, benchWork, log, streamManagement = false, muc = false, websocketPort = 0, archive = false, scram = undefined }) {
  const peer = PEERS[name];
  const env = { ...process.env, BENCH_WORK: benchWork };
  delete env.TLS;
  delete env.NODELAY;
  const launchers = streamManagement || muc || websocketPort || archive || scram ? patchedLaunchers(benchWork, { streamManagement, muc, websocketPort, archive, scram }) : join(SHARED, "servers");
  const { out, err } = await runLauncher(name, ["start", String(peer.port), domain, String(users), ...(tls ? ["tls"] : [])], env, 300_000, launchers);
  const m = /^PIDS: (.+)$/m.exec(out);
  if (!m) {
    await runLauncher(name, ["stop"], env, 60_000, launchers).catch(() => {});
    throw new Error(`${name}.sh start printed no PIDS line: ${out} ${err}`);
  }
  const pids = m[1].trim().split(/\s+/).map(Number);
  log(`${name}: ${err.trim().split("\n").pop()}`);
  return {
    port: peer.port, domain, tls, procs: pids.map((pid) => ({ name: processName(pid), pid })), warnings: [],
    mode: tls ? "STARTTLS" : "plaintext",
    ...(websocketPort ? { wsUrl: `${tls ? "wss" : "ws"}://127.0.0.1:${websocketPort}/xmpp-websocket` } : {}),
    stop() {
      this.stopping ??= (async () => {
        await runLauncher(name, ["stop"], env, 60_000, launchers).catch((e) => log(`${name} stop: ${e.message}`));
        if (!(await waitExit(pids, 5_000))) for (const p of pids) if (alive(p)) process.kill(p, "SIGKILL");
      })();
      return this.stopping;
    },
  };
}
