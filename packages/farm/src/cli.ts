#!/usr/bin/env node
/**
 * `jabberfarm`: one binary for every farm process and admin task.
 * See USAGE (options.ts); docs/operations.md has the longer story.
 */
import type { Logger } from "pino";
import type { Metrics, MetricsEndpoint } from "@jabberfarm/metrics";
import { ConfigError, readConfigFile, validateSection } from "./config-file.js";
import { TOP_LEVEL_KEYS, sectionFor } from "./farm-config.js";
import { stopOnSignals } from "./lifecycle.js";
import { createLogger, toggleDebugOnSignal } from "./logger.js";
import { USAGE, UsageError, adminDocument, parse, type Options } from "./options.js";
import { routersKnown } from "./farm-wait.js";
import type { ChildReport } from "./up.js";


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
  start: (metrics: Metrics | undefined, log: Logger, signal: AbortSignal) => Promise<P>, ready: (p: P) => boolean | Promise<boolean>,
): Promise<{ proc: P; metricsPort: number | undefined }> {
  // Every line names the instance, so the lines of a farm's processes can be told apart once merged.
  const log = processLog.child({ instance });
  // prom-client is loaded only by a process that serves metrics.
  const { Metrics, startHealthServer } = endpoint ? await import("@jabberfarm/metrics") : { Metrics: undefined, startHealthServer: undefined };
  const metrics = endpoint && Metrics ? new Metrics({ process: name, instance }) : undefined;
  let proc: P | undefined;
  let stopping = false;
  const health = endpoint && metrics && startHealthServer
    ? await startHealthServer({ host: endpoint.host, port: endpoint.port, metrics, ready: () => !stopping && proc !== undefined && ready(proc) })
    : undefined;
  if (health) log.info({ host: health.host, port: health.port }, "metrics and health endpoints listening");
  // A process still starting (a c2s waiting for the farm) gives up at a signal rather than after its stop's grace.
  const abort = new AbortController();
  const starting = start(metrics, log, abort.signal);
  stopOnSignals(log, async () => {
    stopping = true;
    abort.abort();
    const started = await starting.catch(() => undefined);
    await started?.stop();
    await health?.close();
  });
  try {
    proc = await starting;
  } catch (err) {
    // Given up on a signal: the signal's handler exits 0 once the rest is closed.
    if (stopping) return new Promise<never>(() => {});
    await health?.close();
    throw err;
  }
  return { proc, metricsPort: health?.port };
}

/**
 * Runs one process; resolves with the ports it bound once it serves (the
 * supervisor of `up` learns them). Each kind loads only its own package:
 * a router never loads PGlite, an sm never loads the TLS certificate maker
 * (docs/performance.md, memory at start).
 */
async function runProcess(name: "router" | "xdb" | "sm" | "c2s" | "muc" | "upload" | "s2s", o: Options): Promise<ChildReport> {
  if (!o.config) throw new UsageError(`jabberfarm ${name}: --config FILE is required`);
  const doc = readConfigFile(o.config);
  const log = createLogger(name, o.level, o.pretty);
  toggleDebugOnSignal(log);
  switch (name) {
    case "router": {
      const { Router, routerConfigSchema } = await import("@jabberfarm/router");
      const config = validateSection(sectionFor(doc, "router"), "router", routerConfigSchema);
      // Without an instance name, where it listens tells routers apart.
      const { proc, metricsPort } = await serve(name, config.instance ?? `${config.host}:${config.port}`, config.metrics, log, async (metrics, log) => {
        const router = new Router(config, { logger: log, metrics });
        await router.start();
        return router;
      }, (router) => router.listening);
      return { router: proc.address?.port, metrics: metricsPort };
    }
    case "xdb": {
      const { startXdb, xdbConfigSchema } = await import("@jabberfarm/xdb");
      const config = validateSection(sectionFor(doc, "xdb"), "xdb", xdbConfigSchema);
      const { metricsPort } = await serve(name, config.instance, config.metrics, log, (metrics, log) => startXdb(config, { logger: log, metrics }), (xdb) => xdb.ready());
      return { metrics: metricsPort };
    }
    case "sm": {
      const { smConfigSchema, startSm } = await import("@jabberfarm/sm");
      const config = validateSection(sectionFor(doc, "sm"), "sm", smConfigSchema);
      const { metricsPort } = await serve(name, config.instance, config.metrics, log, (metrics, log) => startSm(config, { logger: log, metrics }), (sm) => sm.ready());
      return { metrics: metricsPort };
    }
    case "c2s": {
      const { c2sConfigSchema, startC2s } = await import("@jabberfarm/c2s");
      const config = validateSection(sectionFor(doc, "c2s"), "c2s", c2sConfigSchema);
      const { proc, metricsPort } = await serve(name, config.instance, config.metrics, log, (metrics, log, signal) => startC2s(config, { logger: log, metrics, signal }), (c2s) => c2s.ready());
      return { ...proc.ports, metrics: metricsPort };
    }
    case "muc": {
      const { mucConfigSchema, startMuc } = await import("@jabberfarm/muc");
      const config = validateSection(sectionFor(doc, "muc"), "muc", mucConfigSchema);
      const { metricsPort } = await serve(name, config.instance, config.metrics, log, (metrics, log) => startMuc(config, { logger: log, metrics }), (muc) => muc.ready());
      return { metrics: metricsPort };
    }
    case "upload": {
      const { startUpload, uploadConfigSchema } = await import("@jabberfarm/upload");
      const config = validateSection(sectionFor(doc, "upload"), "upload", uploadConfigSchema);
      const { proc, metricsPort } = await serve(name, config.instance, config.metrics, log, (metrics, log) => startUpload(config, { logger: log, metrics }), (u) => u.ready());
      return { upload: proc.address.port, metrics: metricsPort };
    }
    case "s2s": {
      const { s2sConfigSchema, startS2s } = await import("@jabberfarm/s2s");
      const config = validateSection(sectionFor(doc, "s2s"), "s2s", s2sConfigSchema);
      const { proc, metricsPort } = await serve(name, config.instance, config.metrics, log, (metrics, log) => startS2s(config, { logger: log, metrics }), (s) => s.ready());
      return { s2s: proc.address.port, metrics: metricsPort };
    }
  }
}


async function runAdmin(command: string, o: Options): Promise<void> {
  const say = (line: string): void => void process.stderr.write(`${line}\n`);
  // A farm that is starting has not yet written its routers' ports (with port 0): wait for them.
  const cli = command === "migrate" ? sectionFor(adminDocument(o), "cli") : await routersKnown(() => sectionFor(adminDocument(o), "cli"), o.waitMs, say);
  const log = createLogger("cli", o.level === "info" ? "warn" : o.level);
  if (command === "migrate") {
    const { openStorage } = await import("@jabberfarm/xdb");
    const s = await openStorage({ databaseUrl: cli.databaseUrl as string | undefined, dataDir: `${String(cli.dataDir ?? o.data)}/db` });
    await s.close();
    process.stderr.write("storage is at the latest schema version\n");
    return;
  }
  const { accountJid, addUser, changePassword, openAdminStorage, readPassword } = await import("./admin.js");
  const user = accountJid(o.positionals[0], String(cli.domain));
  const admin = await openAdminStorage(cli, log, o.waitMs, say);
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
  const { OperatorLink, farmStatus, formatSessions, formatStatus, kickSession, statusComplete, userSessions } = await import("./operator.js");
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
 * `jabberfarm certificate --config FILE`: makes the c2s's self-signed
 * certificate for the domain in its tls.dataDir (or keeps the one there),
 * then exits. Run once before the c2s replicas start on a shared volume, so
 * they all present the same certificate instead of racing to make their
 * own (docker-compose.yml's `certificate` service).
 */
async function runCertificate(o: Options): Promise<number> {
  if (!o.config) throw new UsageError("jabberfarm certificate: --config FILE is required");
  const { c2sConfigSchema, loadTlsMaterial } = await import("@jabberfarm/c2s");
  const config = validateSection(sectionFor(readConfigFile(o.config), "c2s"), "c2s", c2sConfigSchema);
  const tls = await loadTlsMaterial(config.tls, config.domain, createLogger("certificate", o.level, o.pretty));
  process.stdout.write(`${tls.certPath}: ${tls.source} certificate for ${config.domain}, SHA-256 ${tls.fingerprint256}\n`);
  return 0;
}

/**
 * `jabberfarm config check FILE`: every section present (a file may serve
 * only some processes) is completed with the shared values and validated;
 * every mistake is printed with its key path. Exit 0 when all is well.
 */
async function runConfigCheck(o: Options): Promise<number> {
  const [sub, fileArg] = o.positionals;
  if (sub !== "check") throw new UsageError("usage: jabberfarm config check FILE");
  const file = fileArg ?? o.config;
  if (!file) throw new UsageError("usage: jabberfarm config check FILE");
  const doc = readConfigFile(file);
  const problems: string[] = [];
  for (const k of Object.keys(doc)) if (!TOP_LEVEL_KEYS.has(k)) problems.push(`${k}: unknown key (expected one of ${[...TOP_LEVEL_KEYS].join(", ")})`);
  const checks = [
    ["router", (await import("@jabberfarm/router/config")).routerConfigSchema],
    ["xdb", (await import("@jabberfarm/xdb/config")).xdbConfigSchema],
    ["sm", (await import("@jabberfarm/sm/config")).smConfigSchema],
    ["c2s", (await import("@jabberfarm/c2s/config")).c2sConfigSchema],
    ["muc", (await import("@jabberfarm/muc/config")).mucConfigSchema],
    ["upload", (await import("@jabberfarm/upload/config")).uploadConfigSchema],
    ["s2s", (await import("@jabberfarm/s2s/config")).s2sConfigSchema],
  ] as const;
  const present = checks.filter(([name]) => doc[name] !== undefined);
  if (present.length === 0) problems.push("no process section: expected at least one of router, xdb, sm, c2s, muc, upload, s2s");
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
  // `jabberfarm up --help` (or -h after any command) is a question, not an unknown option.
  if (command === undefined || command === "help" || command === "--help" || command === "-h" || rest.includes("--help") || rest.includes("-h")) {
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
    case "s2s":
      {
        const report = await runProcess(command, o);
        // Under `jabberfarm up`, tell the supervisor this process serves now, and on which ports.
        process.send?.({ type: "ready", ...report });
      }
      return -1; // runs until a signal
    case "up":
      // The supervisor loads what it validates; its children load only their own kind.
      await (await import("./up-command.js")).runUp(o);
      return -1;
    case "import":
    case "export":
      return (await import("./bulk-command.js")).runBulk(command, o);
    case "adduser":
      if (o.from !== undefined) return (await import("./bulk-command.js")).runBulk(command, o);
      await runAdmin(command, o);
      return 0;
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
    case "certificate":
      return runCertificate(o);
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
