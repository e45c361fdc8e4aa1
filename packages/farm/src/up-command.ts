/**
 * `jabberfarm up`: the embedded farm's children (every router, xdb, every
 * sm, every c2s) and their supervisor, and the banner once all serve.
 */
import { writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { c2sConfigSchema } from "@jabberfarm/c2s";
import { routerConfigSchema } from "@jabberfarm/router";
import { smConfigSchema } from "@jabberfarm/sm";
import { xdbConfigSchema } from "@jabberfarm/xdb";
import { validateSection } from "./config-file.js";
import { sectionFor, type Doc } from "./farm-config.js";
import { stopOnSignals } from "./lifecycle.js";
import { createLogger } from "./logger.js";
import { UsageError, farmDocument, type Options } from "./options.js";
import { Supervisor, type ChildSpec } from "./up.js";

const CLI_PATH = fileURLToPath(new URL("./cli.js", import.meta.url));

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
  if (o.metricsPort !== undefined) {
    specs.forEach((s, k) => (s.env = { ...s.env, [`JABBERFARM__${s.kind.toUpperCase()}__METRICS__PORT`]: String(o.metricsPort! + k) }));
  }
  return specs;
}

export async function runUp(o: Options): Promise<void> {
  if (o.config && o.metricsPort !== undefined) {
    throw new UsageError("--metrics-port sets up the embedded farm's endpoints; with --config, give each section its own 'metrics'");
  }
  const topology = o.counts.router > 1 || o.counts.sm > 1 || o.counts.c2s > 1;
  if (o.config && topology) throw new UsageError("--routers/--sm/--c2s shape the embedded farm; with --config, run each process yourself");
  const doc = farmDocument(o);
  const children = o.config ? undefined : farmChildren(o, doc);
  if (o.counts.sm > 1 && typeof doc.redisUrl !== "string") {
    process.stderr.write("jabberfarm: warning: several SMs without --redis-url (REDIS_URL): an SM that stops takes its users' sessions with it\n");
  }
  // Validate every section before starting anything, so a mistake is one clear message.
  validateSection(sectionFor(doc, "router"), "router", routerConfigSchema);
  validateSection(sectionFor(doc, "xdb"), "xdb", xdbConfigSchema);
  validateSection(sectionFor(doc, "sm"), "sm", smConfigSchema);
  const c2s = validateSection(sectionFor(doc, "c2s"), "c2s", c2sConfigSchema);
  let configPath = o.config ? resolve(o.config) : "";
  if (!o.config) {
    configPath = resolve(o.data, "farm.generated.json");
    writeFileSync(configPath, JSON.stringify(doc, null, 2) + "\n", { mode: 0o600 });
  }
  const log = createLogger("farm", o.level, o.pretty);
  const domain = typeof doc.domain === "string" ? doc.domain : "localhost";
  const listeners = c2s.listeners as { starttls?: { host: string; port: number } | false | null; directTls?: { host: string; port: number } | false | null };
  const supervisor = new Supervisor({
    cliPath: CLI_PATH, configPath, logLevel: o.level, pretty: o.pretty, log, ...(children ? { children } : {}),
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
