#!/usr/bin/env node
/**
 * `jabberfarm`: one binary for every farm process and admin task.
 * See USAGE below; docs/operations.md has the longer story.
 */
import { resolve } from "node:path";
import { existsSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import type { Logger } from "pino";
import { c2sConfigSchema, startC2s } from "@jabberfarm/c2s";
import { Metrics, startHealthServer, type MetricsEndpoint } from "@jabberfarm/metrics";
import { Router, routerConfigSchema } from "@jabberfarm/router";
import { mucConfigSchema, startMuc } from "@jabberfarm/muc";
import { smConfigSchema, startSm } from "@jabberfarm/sm";
import { startUpload, uploadConfigSchema } from "@jabberfarm/upload";
import { openStorage, startXdb, xdbConfigSchema } from "@jabberfarm/xdb";
import { accountJid, addUser, changePassword, openAdminStorage, readPassword } from "./admin.js";
import { ConfigError, applyEnvOverrides, readConfigFile, validateSection } from "./config-file.js";
import { TOP_LEVEL_KEYS, embeddedFarmDocument, sectionFor, type Doc } from "./farm-config.js";
import { stopOnSignals } from "./lifecycle.js";
import { createLogger, toggleDebugOnSignal } from "./logger.js";
import { OperatorLink, farmStatus, formatSessions, formatStatus, kickSession, statusComplete, userSessions } from "./operator.js";
import { START_ORDER, Supervisor, serviceChildren, type ChildSpec } from "./up.js";

const USAGE = `usage: jabberfarm <command> [options]

the farm on one machine:
  up                      start router, xdb, sm, c2s, muc and upload as child processes
                          (embedded PGlite storage unless --database-url)
    --domain D            served domain (default localhost)
    --data DIR            data directory (default ./.jabberfarm)
    --port N              client STARTTLS port (default 5222)
    --tls-port N          client direct TLS port (default 5223)
    --router-port N       router port for components (default 5347)
    --host ADDR           address clients connect to (default 127.0.0.1)
    --database-url URL    use PostgreSQL instead of PGlite (also DATABASE_URL)
    --redis-url URL       Redis for the session registry shared by the SMs
                          and the c2s loads for redirection (also REDIS_URL)
    --registration        allow in-band registration (XEP-0077)
    --routers N, --sm N, --c2s N
                          how many of each to run (default 1 each); c2s i
                          listens on the --host address + i-1 (127.0.0.2, ...)
    --muc N, --upload N   group chat (conference.DOMAIN) and HTTP upload
                          (upload.DOMAIN) processes (default 1 each; 0: none)
    --upload-port N       the upload service's HTTPS port (default 5443)
    --plaintext           allow streams without TLS and PLAIN in the clear
                          (benchmarks on loopback only; never for real users)
    --metrics-port BASE   /metrics, /healthz and /readyz on 127.0.0.1: router
                          on BASE, xdb BASE+1, sm BASE+2, c2s BASE+3, then
                          muc and upload (one port per child; default off)

one process (each reads its section of --config FILE):
  router | xdb | sm | c2s | muc | upload --config FILE

accounts (through the running farm, or directly on its storage):
  adduser USER@DOMAIN     password from standard input, or asked
  passwd USER@DOMAIN
  deluser USER@DOMAIN
  migrate                 apply storage migrations and exit

operating a running farm (through its routers, as the component 'cli'):
  status                  every router and every c2s, sm and xdb behind them:
                          pid, uptime, memory, connections and sessions
                          (exit 1 when one of them does not answer)
  sessions USER@DOMAIN    that user's sessions: resource, c2s, sm, presence
  kick USER@DOMAIN/RES    end that session (policy-violation, "kicked by the operator")
    --json                machine-readable output (status, sessions, kick)

checking a config file:
  config check FILE       validate every section; print each mistake with its key path

common options:
  --config FILE           farm config file (YAML or JSON); see farm.example.yaml
                          (without it, account and operator commands read the
                          config the embedded farm wrote to --data)
  --log-level LEVEL       trace, debug, info (default), warn, error, silent
  --pretty                human-readable log lines instead of JSON
                          (SIGUSR2 to a process switches it to debug and back)
`;

const LEVELS = ["trace", "debug", "info", "warn", "error", "fatal", "silent"] as const;
type Level = (typeof LEVELS)[number];
const CLI_PATH = fileURLToPath(import.meta.url);

class UsageError extends Error {}

interface Options {
  config?: string | undefined;
  level: Level;
  domain: string;
  data: string;
  port: number;
  tlsPort: number;
  routerPort: number;
  host: string;
  databaseUrl?: string | undefined;
  redisUrl?: string | undefined;
  registration: boolean;
  plaintext: boolean;
  metricsPort?: number | undefined;
  pretty: boolean;
  json: boolean;
  counts: { router: number; sm: number; c2s: number; muc: number; upload: number };
  uploadPort: number;
  positionals: string[];
}

function parse(argv: string[]): Options {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: "string", short: "c" },
      "log-level": { type: "string", default: "info" },
      domain: { type: "string", default: "localhost" },
      data: { type: "string", default: process.env.JABBERFARM_DATA ?? "./.jabberfarm" },
      port: { type: "string", default: "5222" },
      "tls-port": { type: "string", default: "5223" },
      "router-port": { type: "string", default: "5347" },
      host: { type: "string", default: "127.0.0.1" },
      "database-url": { type: "string", default: process.env.DATABASE_URL },
      "redis-url": { type: "string", default: process.env.REDIS_URL },
      registration: { type: "boolean", default: false },
      plaintext: { type: "boolean", default: false },
      "metrics-port": { type: "string" },
      pretty: { type: "boolean", default: false },
      json: { type: "boolean", default: false },
      routers: { type: "string", default: "1" },
      sm: { type: "string", default: "1" },
      c2s: { type: "string", default: "1" },
      muc: { type: "string", default: "1" },
      upload: { type: "string", default: "1" },
      "upload-port": { type: "string", default: "5443" },
    },
  });
  const level = values["log-level"] as Level;
  if (!LEVELS.includes(level)) throw new UsageError(`--log-level: got "${level}"; expected one of ${LEVELS.join(", ")}`);
  const port = (name: string, v: string | undefined): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0 || n > 65535) throw new UsageError(`--${name}: got "${v}"; expected a port number`);
    return n;
  };
  const count = (name: string, v: string | undefined, min = 1): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > 9) throw new UsageError(`--${name}: got "${v}"; expected a number from ${min} to 9`);
    return n;
  };
  const metricsPort = values["metrics-port"] === undefined ? undefined : port("metrics-port", values["metrics-port"]);
  if (metricsPort !== undefined && (metricsPort < 1 || metricsPort > 65535 - 3)) {
    throw new UsageError(`--metrics-port: got "${metricsPort}"; expected a port from 1 to 65532 (four ports from it are used)`);
  }
  return {
    metricsPort, pretty: values.pretty ?? false, json: values.json ?? false,
    counts: {
      router: count("routers", values.routers), sm: count("sm", values.sm), c2s: count("c2s", values.c2s),
      muc: count("muc", values.muc, 0), upload: count("upload", values.upload, 0),
    },
    uploadPort: port("upload-port", values["upload-port"]),
    config: values.config, level, domain: values.domain!, data: values.data!, host: values.host!,
    port: port("port", values.port), tlsPort: port("tls-port", values["tls-port"]), routerPort: port("router-port", values["router-port"]),
    databaseUrl: values["database-url"] || undefined, redisUrl: values["redis-url"] || undefined, registration: values.registration ?? false, plaintext: values.plaintext ?? false, positionals,
  };
}

/** The farm document: the config file when given, else the embedded farm's in the data directory. */
function farmDocument(o: Options): Doc {
  if (o.config) return readConfigFile(o.config);
  return applyEnvOverrides(embeddedFarmDocument({
    domain: o.domain, dataDir: o.data, routerPort: o.routerPort, c2sPort: o.port, c2sTlsPort: o.tlsPort,
    host: o.host, databaseUrl: o.databaseUrl, redisUrl: o.redisUrl, registration: o.registration, plaintext: o.plaintext, metricsPort: o.metricsPort,
    uploadPort: o.uploadPort,
  }));
}

/**
 * The document admin commands work with: --config, else the one the
 * embedded farm wrote to its data directory (it knows every router of
 * `up --routers N` and the ports `up` was given), else the one `up` would
 * write with these options.
 */
function adminDocument(o: Options): Doc {
  if (!o.config) {
    const generated = resolve(o.data, "farm.generated.json");
    if (existsSync(generated)) return readConfigFile(generated);
  }
  return farmDocument(o);
}

interface Stoppable {
  stop(): Promise<void>;
}

/**
 * Starts one farm process with its health server when its section has
 * `metrics`. The server comes first, so /healthz answers while the process
 * starts (xdb may be migrating); /readyz follows the process and turns 503
 * as soon as it is asked to stop. Signals are handled from the start: one
 * that arrives while the process starts stops it once it has.
 */
async function serve<P extends Stoppable>(
  name: string, instance: string, endpoint: MetricsEndpoint | undefined, processLog: Logger,
  start: (metrics: Metrics | undefined, log: Logger) => Promise<P>, ready: (p: P) => boolean | Promise<boolean>,
): Promise<void> {
  // Every line names the instance, so the lines of a farm's processes can be told apart once merged.
  const log = processLog.child({ instance });
  const metrics = endpoint ? new Metrics({ process: name, instance }) : undefined;
  let proc: P | undefined;
  let stopping = false;
  const health = endpoint && metrics
    ? await startHealthServer({ host: endpoint.host, port: endpoint.port, metrics, ready: () => !stopping && proc !== undefined && ready(proc) })
    : undefined;
  if (health) log.info({ host: health.host, port: health.port }, "metrics and health endpoints listening");
  const starting = start(metrics, log);
  stopOnSignals(log, async () => {
    stopping = true;
    const started = await starting.catch(() => undefined);
    await started?.stop();
    await health?.close();
  });
  try {
    proc = await starting;
  } catch (err) {
    await health?.close();
    throw err;
  }
}

async function runProcess(name: "router" | "xdb" | "sm" | "c2s" | "muc" | "upload", o: Options): Promise<void> {
  if (!o.config) throw new UsageError(`jabberfarm ${name}: --config FILE is required`);
  const doc = readConfigFile(o.config);
  const log = createLogger(name, o.level, o.pretty);
  toggleDebugOnSignal(log);
  switch (name) {
    case "router": {
      const config = validateSection(sectionFor(doc, "router"), "router", routerConfigSchema);
      // A router has no instance id; where it listens tells routers apart.
      return serve(name, `${config.host}:${config.port}`, config.metrics, log, async (metrics, log) => {
        const router = new Router(config, { logger: log, metrics });
        await router.start();
        return router;
      }, (router) => router.listening);
    }
    case "xdb": {
      const config = validateSection(sectionFor(doc, "xdb"), "xdb", xdbConfigSchema);
      return serve(name, config.instance, config.metrics, log, (metrics, log) => startXdb(config, { logger: log, metrics }), (xdb) => xdb.ready());
    }
    case "sm": {
      const config = validateSection(sectionFor(doc, "sm"), "sm", smConfigSchema);
      return serve(name, config.instance, config.metrics, log, (metrics, log) => startSm(config, { logger: log, metrics }), (sm) => sm.ready());
    }
    case "c2s": {
      const config = validateSection(sectionFor(doc, "c2s"), "c2s", c2sConfigSchema);
      return serve(name, config.instance, config.metrics, log, (metrics, log) => startC2s(config, { logger: log, metrics }), (c2s) => c2s.ready());
    }
    case "muc": {
      const config = validateSection(sectionFor(doc, "muc"), "muc", mucConfigSchema);
      return serve(name, config.instance, config.metrics, log, (metrics, log) => startMuc(config, { logger: log, metrics }), (muc) => muc.ready());
    }
    case "upload": {
      const config = validateSection(sectionFor(doc, "upload"), "upload", uploadConfigSchema);
      return serve(name, config.instance, config.metrics, log, (metrics, log) => startUpload(config, { logger: log, metrics }), (u) => u.ready());
    }
  }
}

/** The c2s listen addresses: --host, then the next loopback addresses for more c2s. */
function c2sHosts(o: Options): string[] {
  if (o.counts.c2s === 1) return [o.host];
  const m = /^127\.(\d+)\.(\d+)\.(\d+)$/.exec(o.host);
  if (!m || Number(m[3]) + o.counts.c2s - 1 > 254) throw new UsageError(`--c2s ${o.counts.c2s}: needs --host on 127.0.0.0/8 with room for the next addresses`);
  return Array.from({ length: o.counts.c2s }, (_, i) => `127.${m[1]}.${m[2]}.${Number(m[3]) + i}`);
}

/**
 * The embedded farm's children: every router, xdb, every sm, every c2s, each
 * told its own instance id, port or address through the environment
 * (JABBERFARM__... overrides, docs/operations.md). Components get the list
 * of all routers, so each links to every one.
 */
function farmChildren(o: Options, doc: Doc): ChildSpec[] {
  const name = (kind: string, i: number, n: number): string => (n === 1 ? kind : `${kind}-${i}`);
  const specs: ChildSpec[] = [];
  if (o.counts.router > 1) {
    doc.routers = Array.from({ length: o.counts.router }, (_, i) => ({ host: "127.0.0.1", port: o.routerPort + i }));
  }
  for (let i = 1; i <= o.counts.router; i++) {
    specs.push({
      kind: "router", id: name("router", i, o.counts.router),
      env: { JABBERFARM__ROUTER__PORT: String(o.routerPort + i - 1), JABBERFARM__ROUTER__INSTANCE: `router-${i}` },
    });
  }
  specs.push({ kind: "xdb", id: "xdb", env: {} });
  for (let i = 1; i <= o.counts.sm; i++) specs.push({ kind: "sm", id: name("sm", i, o.counts.sm), env: { JABBERFARM__SM__INSTANCE: `sm-${i}` } });
  const hosts = c2sHosts(o);
  hosts.forEach((host, k) => {
    const i = k + 1;
    specs.push({
      kind: "c2s", id: name("c2s", i, o.counts.c2s),
      env: { JABBERFARM__C2S__INSTANCE: `c2s-${i}`, JABBERFARM__C2S__LISTENERS__STARTTLS__HOST: host, JABBERFARM__C2S__LISTENERS__DIRECT_TLS__HOST: host },
    });
  });
  specs.push(...serviceChildren(o.counts));
  if (o.metricsPort !== undefined) {
    specs.forEach((s, k) => (s.env = { ...s.env, [`JABBERFARM__${s.kind.toUpperCase()}__METRICS__PORT`]: String(o.metricsPort! + k) }));
  }
  return specs;
}

async function runUp(o: Options): Promise<void> {
  if (o.config && o.metricsPort !== undefined) {
    throw new UsageError("--metrics-port sets up the embedded farm's endpoints; with --config, give each section its own 'metrics'");
  }
  const topology = o.counts.router > 1 || o.counts.sm > 1 || o.counts.c2s > 1 || o.counts.muc !== 1 || o.counts.upload !== 1;
  if (o.config && topology) throw new UsageError("--routers/--sm/--c2s/--muc/--upload shape the embedded farm; with --config, run each process yourself");
  const doc = farmDocument(o);
  // With a config file, the service processes run when it has their sections.
  const children = o.config
    ? START_ORDER.filter((k) => (k !== "muc" && k !== "upload") || doc[k] !== undefined).map((kind) => ({ kind, id: kind }))
    : farmChildren(o, doc);
  if (o.counts.sm > 1 && typeof doc.redisUrl !== "string") {
    process.stderr.write("jabberfarm: warning: several SMs without --redis-url (REDIS_URL): an SM that stops takes its users' sessions with it\n");
  }
  // Validate every section before starting anything, so a mistake is one clear message.
  validateSection(sectionFor(doc, "router"), "router", routerConfigSchema);
  validateSection(sectionFor(doc, "xdb"), "xdb", xdbConfigSchema);
  validateSection(sectionFor(doc, "sm"), "sm", smConfigSchema);
  const c2s = validateSection(sectionFor(doc, "c2s"), "c2s", c2sConfigSchema);
  if (!o.config || doc.muc !== undefined) validateSection(sectionFor(doc, "muc"), "muc", mucConfigSchema);
  if (!o.config || doc.upload !== undefined) validateSection(sectionFor(doc, "upload"), "upload", uploadConfigSchema);
  let configPath = o.config ? resolve(o.config) : "";
  if (!o.config) {
    configPath = resolve(o.data, "farm.generated.json");
    writeFileSync(configPath, JSON.stringify(doc, null, 2) + "\n", { mode: 0o600 });
  }
  const log = createLogger("farm", o.level, o.pretty);
  const domain = typeof doc.domain === "string" ? doc.domain : "localhost";
  const listeners = c2s.listeners as { starttls?: { host: string; port: number } | false | null; directTls?: { host: string; port: number } | false | null };
  const supervisor = new Supervisor({
    cliPath: CLI_PATH, configPath, logLevel: o.level, pretty: o.pretty, log, children,
    onReady: () => {
      const hosts = c2sHosts(o);
      const where = [
        listeners.starttls ? `${hosts.join(", ")} port ${listeners.starttls.port} (STARTTLS)` : undefined,
        listeners.directTls ? `port ${listeners.directTls.port} (direct TLS)` : undefined,
      ].filter(Boolean).join(" and ");
      const cfg = o.config ? ` --config ${o.config}` : o.data === "./.jabberfarm" ? "" : ` --data ${o.data}`;
      process.stderr.write(`
jabberfarm is up for ${domain}: clients connect to ${where}.
Add an account:   pnpm jabberfarm adduser alice@${domain}${cfg}
Stop:             Ctrl-C
`);
    },
  });
  supervisor.start();
  stopOnSignals(log, () => supervisor.stop(), 60_000);
}

async function runAdmin(command: string, o: Options): Promise<void> {
  const doc = adminDocument(o);
  const cli = sectionFor(doc, "cli");
  const log = createLogger("cli", o.level === "info" ? "warn" : o.level);
  if (command === "migrate") {
    const s = await openStorage({ databaseUrl: cli.databaseUrl as string | undefined, dataDir: `${String(cli.dataDir ?? o.data)}/db` });
    await s.close();
    process.stderr.write("storage is at the latest schema version\n");
    return;
  }
  const user = accountJid(o.positionals[0], String(cli.domain));
  const admin = await openAdminStorage(cli, log);
  try {
    switch (command) {
      case "adduser": {
        const created = await addUser(admin.storage, user, await readPassword(`password for ${user}: `));
        if (!created) throw new Error(`${user} already exists`);
        process.stderr.write(`created ${user}\n`);
        return;
      }
      case "passwd": {
        if (!(await changePassword(admin.storage, user, await readPassword(`new password for ${user}: `)))) throw new Error(`no account ${user}`);
        process.stderr.write(`password of ${user} changed\n`);
        return;
      }
      case "deluser": {
        if (!(await admin.storage.deleteAccount(user))) throw new Error(`no account ${user}`);
        process.stderr.write(`deleted ${user} and all its data\n`);
        return;
      }
    }
  } finally {
    await admin.close();
  }
}

/** `status`, `sessions`, `kick`: questions to the running farm (operator.ts). */
async function runOperator(command: "status" | "sessions" | "kick", o: Options): Promise<number> {
  const cli = sectionFor(adminDocument(o), "cli");
  const link = await OperatorLink.open(cli);
  const json = (v: unknown): void => void process.stdout.write(JSON.stringify(v, null, 2) + "\n");
  try {
    switch (command) {
      case "status": {
        const status = await farmStatus(link);
        if (o.json) json(status);
        else process.stdout.write(formatStatus(status));
        return statusComplete(status) ? 0 : 1;
      }
      case "sessions": {
        const { user, sessions } = await userSessions(link, o.positionals[0], String(cli.domain));
        if (o.json) json({ user, sessions });
        else process.stdout.write(formatSessions(user, sessions));
        return 0;
      }
      case "kick": {
        const kicked = await kickSession(link, o.positionals[0]);
        if (o.json) json({ kicked });
        else process.stderr.write(`kicked ${kicked.jid} (session ${kicked.sid} on ${kicked.c2s})\n`);
        return 0;
      }
    }
  } finally {
    await link.close();
  }
}

/**
 * `jabberfarm config check FILE`: every section present (a file may serve
 * only some processes) is completed with the shared values and validated;
 * every mistake is printed with its key path. Exit 0 when all is well.
 */
function runConfigCheck(o: Options): number {
  const [sub, fileArg] = o.positionals;
  if (sub !== "check") throw new UsageError("usage: jabberfarm config check FILE");
  const file = fileArg ?? o.config;
  if (!file) throw new UsageError("usage: jabberfarm config check FILE");
  const doc = readConfigFile(file);
  const problems: string[] = [];
  for (const k of Object.keys(doc)) if (!TOP_LEVEL_KEYS.has(k)) problems.push(`${k}: unknown key (expected one of ${[...TOP_LEVEL_KEYS].join(", ")})`);
  const checks = [
    ["router", routerConfigSchema], ["xdb", xdbConfigSchema], ["sm", smConfigSchema], ["c2s", c2sConfigSchema],
    ["muc", mucConfigSchema], ["upload", uploadConfigSchema],
  ] as const;
  const present = checks.filter(([name]) => doc[name] !== undefined);
  if (present.length === 0) problems.push("no process section: expected at least one of router, xdb, sm, c2s");
  for (const [name, schema] of present) {
    try {
      validateSection(sectionFor(doc, name), name, schema);
    } catch (e) {
      if (e instanceof ConfigError) problems.push(...e.problems);
      else throw e;
    }
  }
  if (problems.length > 0) {
    process.stderr.write(`${file}: ${problems.length} problem${problems.length === 1 ? "" : "s"}\n  ${problems.join("\n  ")}\n`);
    return 1;
  }
  process.stdout.write(`${file}: ok (${present.map(([n]) => n).join(", ")})\n`);
  return 0;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === "help" || command === "--help" || command === "-h") {
    process.stdout.write(USAGE);
    return command === undefined ? 2 : 0;
  }
  const o = parse(rest);
  switch (command) {
    case "router":
    case "xdb":
    case "sm":
    case "c2s":
    case "muc":
    case "upload":
      await runProcess(command, o);
      // Under `jabberfarm up`, tell the supervisor this process serves now.
      process.send?.({ type: "ready" });
      return -1; // runs until a signal
    case "up":
      await runUp(o);
      return -1;
    case "adduser":
    case "passwd":
    case "deluser":
    case "migrate":
      await runAdmin(command, o);
      return 0;
    case "status":
    case "sessions":
    case "kick":
      return runOperator(command, o);
    case "config":
      return runConfigCheck(o);
    default:
      throw new UsageError(`jabberfarm: unknown command '${command}'`);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (err: unknown) => {
    if (err instanceof ConfigError) {
      process.stderr.write(`config error:\n  ${err.problems.join("\n  ")}\n`);
      process.exit(1);
    }
    if (err instanceof UsageError || (err instanceof Error && (err as NodeJS.ErrnoException).code?.startsWith("ERR_PARSE_ARGS"))) {
      process.stderr.write(`${(err as Error).message}\n\n${USAGE}`);
      process.exit(2);
    }
    process.stderr.write(`jabberfarm: ${err instanceof Error ? err.message : String(err)}\n`);
    if (process.env.JABBERFARM_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
    process.exit(1);
  },
);
