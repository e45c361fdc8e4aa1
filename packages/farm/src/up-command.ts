/**
 * `jabberfarm up`: the embedded farm's children (every router, xdb, every
 * sm, every c2s) and their supervisor, and the banner once all serve.
 */
import { renameSync, rmSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { c2sConfigSchema } from "@jabberfarm/c2s/config";
import { mucConfigSchema } from "@jabberfarm/muc/config";
import { routerConfigSchema } from "@jabberfarm/router/config";
import { s2sConfigSchema } from "@jabberfarm/s2s/config";
import { smConfigSchema } from "@jabberfarm/sm/config";
import { uploadConfigSchema } from "@jabberfarm/upload/config";
import { xdbConfigSchema } from "@jabberfarm/xdb/config";
import { validateSection } from "./config-file.js";
import { sectionFor, type Doc } from "./farm-config.js";
import { stopOnSignals } from "./lifecycle.js";
import { createLogger } from "./logger.js";
import { UsageError, farmDocument, type Options } from "./options.js";
import { START_ORDER, Supervisor, pinnedPorts, serviceChildren, type ChildSpec } from "./up.js";

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
 *
 * A port given as 0 is picked by the kernel when the child binds it (no
 * other process can take it between picking and binding): the child reports
 * it when it serves (ChildReport), and whoever needs it waits for that:
 * components for the routers' ports, the other c2s for the first one's
 * (every c2s listens on the same port of its own address).
 */
function farmChildren(o: Options): ChildSpec[] {
  const name = (kind: string, i: number, n: number): string => (n === 1 ? kind : `${kind}-${i}`);
  const specs: ChildSpec[] = [];
  const routerIds: string[] = [];
  for (let i = 1; i <= o.counts.router; i++) {
    const id = name("router", i, o.counts.router);
    routerIds.push(id);
    specs.push({
      kind: "router", id,
      env: { JABBERFARM__ROUTER__PORT: String(o.routerPort === 0 ? 0 : o.routerPort + i - 1), JABBERFARM__ROUTER__INSTANCE: `router-${i}` },
    });
  }
  const afterRouters = o.routerPort === 0 ? { after: routerIds } : {};
  // Several only on PostgreSQL (runUp checks): each request goes to one of them by its user (XdbClient).
  for (let i = 1; i <= o.counts.xdb; i++) specs.push({ kind: "xdb", id: name("xdb", i, o.counts.xdb), env: { JABBERFARM__XDB__INSTANCE: `xdb-${i}` }, ...afterRouters });
  for (let i = 1; i <= o.counts.sm; i++) specs.push({ kind: "sm", id: name("sm", i, o.counts.sm), env: { JABBERFARM__SM__INSTANCE: `sm-${i}` }, ...afterRouters });
  const hosts = c2sHosts(o);
  const first = name("c2s", 1, o.counts.c2s);
  hosts.forEach((host, k) => {
    const i = k + 1;
    const spec: ChildSpec = {
      kind: "c2s", id: name("c2s", i, o.counts.c2s), ...afterRouters,
      env: { JABBERFARM__C2S__INSTANCE: `c2s-${i}`, JABBERFARM__C2S__LISTENERS__STARTTLS__HOST: host, JABBERFARM__C2S__LISTENERS__DIRECT_TLS__HOST: host, JABBERFARM__C2S__LISTENERS__WEBSOCKET__HOST: host },
    };
    if (i > 1 && (o.port === 0 || o.tlsPort === 0 || o.wsPort === 0)) {
      spec.after = [...(spec.after ?? []), first];
      spec.envFrom = (reports) => pinnedPorts("c2s", { starttls: reports.get(first)?.starttls, directTls: reports.get(first)?.directTls, websocket: reports.get(first)?.websocket });
    }
    specs.push(spec);
  });
  // Group chat and upload, once the routers are known; the upload service on its own HTTPS port.
  for (const spec of serviceChildren({ muc: o.counts.muc, upload: o.counts.upload })) {
    if (spec.kind === "upload") spec.env = { ...spec.env, JABBERFARM__UPLOAD__HTTP__PORT: String(o.uploadPort) };
    specs.push({ ...spec, ...afterRouters });
  }
  // Federation last: it serves only once the farm it speaks for is there. Each s2s on its own port.
  for (let i = 1; i <= o.counts.s2s; i++) {
    specs.push({
      kind: "s2s", id: name("s2s", i, o.counts.s2s), ...afterRouters,
      env: { JABBERFARM__S2S__INSTANCE: `s2s-${i}`, JABBERFARM__S2S__LISTEN__PORT: String(o.s2sPort === 0 ? 0 : o.s2sPort + i - 1) },
    });
  }
  if (o.metricsPort !== undefined) {
    specs.forEach((s, k) => (s.env = { ...s.env, [`JABBERFARM__${s.kind.toUpperCase()}__METRICS__PORT`]: String(o.metricsPort === 0 ? 0 : o.metricsPort! + k) }));
  }
  return specs;
}

/** The routers' addresses in the document the children read (a placeholder port until a router with port 0 reported its own). */
function setRouters(doc: Doc, ports: number[]): void {
  doc.routers = ports.map((port) => ({ host: "127.0.0.1", port }));
}

/** Written whole or not at all: a reader polling the file never sees half of it. */
function writeAtomically(path: string, text: string): void {
  writeFileSync(`${path}.tmp`, text, { mode: 0o600 });
  renameSync(`${path}.tmp`, path);
}

export interface FarmPorts {
  routers: Array<{ id: string; host: string; port: number }>;
  c2s: Array<{ id: string; host: string; starttls?: number; directTls?: number; websocket?: number }>;
  /** The upload services' HTTPS ports. */
  upload: Array<{ id: string; port: number }>;
  /** Where each s2s listens for other servers (the farm's SRV records name these). */
  s2s: Array<{ id: string; host: string; port: number }>;
  /** Each child's metrics and health endpoints, by id. */
  metrics: Record<string, number>;
}

export async function runUp(o: Options): Promise<void> {
  if (o.config && o.metricsPort !== undefined) {
    throw new UsageError("--metrics-port sets up the embedded farm's endpoints; with --config, give each section its own 'metrics'");
  }
  const topology = o.counts.router > 1 || o.counts.xdb > 1 || o.counts.sm > 1 || o.counts.c2s > 1 || o.counts.muc !== 1 || o.counts.upload !== 1 || o.counts.s2s !== 1;
  if (o.config && topology) throw new UsageError("--routers/--xdb/--sm/--c2s/--muc/--upload/--s2s shape the embedded farm; with --config, run each process yourself");
  if (o.counts.xdb > 1 && !o.databaseUrl) throw new UsageError(`--xdb ${o.counts.xdb}: several storage processes need PostgreSQL (--database-url); PGlite is one process per directory`);
  const doc = farmDocument(o);
  const children = o.config ? undefined : farmChildren(o);
  if (o.counts.sm > 1 && typeof doc.redisUrl !== "string") {
    process.stderr.write("jabberfarm: warning: several SMs without --redis-url (REDIS_URL): an SM that stops takes its users' sessions with it\n");
  }
  const routerIds = children?.filter((c) => c.kind === "router").map((c) => c.id) ?? [];
  if (children && (o.counts.router > 1 || o.routerPort === 0)) {
    // Port 1 stands for "not known yet" while validating; the children read the real ones.
    setRouters(doc, routerIds.map((_, i) => (o.routerPort === 0 ? 1 : o.routerPort + i)));
  }
  // Validate every section before starting anything, so a mistake is one clear message.
  validateSection(sectionFor(doc, "router"), "router", routerConfigSchema);
  validateSection(sectionFor(doc, "xdb"), "xdb", xdbConfigSchema);
  validateSection(sectionFor(doc, "sm"), "sm", smConfigSchema);
  const c2s = validateSection(sectionFor(doc, "c2s"), "c2s", c2sConfigSchema);
  if (!o.config || doc.muc !== undefined) validateSection(sectionFor(doc, "muc"), "muc", mucConfigSchema);
  if (!o.config || doc.upload !== undefined) validateSection(sectionFor(doc, "upload"), "upload", uploadConfigSchema);
  if (!o.config || doc.s2s !== undefined) validateSection(sectionFor(doc, "s2s"), "s2s", s2sConfigSchema);
  let configPath = o.config ? resolve(o.config) : "";
  const portsPath = resolve(o.data, "farm.ports.json");
  if (!o.config) {
    configPath = resolve(o.data, "farm.generated.json");
    rmSync(portsPath, { force: true });
    // Account commands wait while a router's port is 0 (not known yet); see admin.ts.
    if (o.routerPort === 0) setRouters(doc, routerIds.map(() => 0));
    writeAtomically(configPath, JSON.stringify(doc, null, 2) + "\n");
  }
  const log = createLogger("farm", o.level, o.pretty);
  const domain = typeof doc.domain === "string" ? doc.domain : "localhost";
  const listeners = c2s.listeners as { starttls?: { host: string; port: number } | null; directTls?: { host: string; port: number } | null; websocket?: { host: string; port: number } | null };
  const ws = c2s.websocket as { tls?: boolean; path?: string } | undefined;
  const wsScheme = ws?.tls === false ? "ws" : "wss";
  const hosts = c2sHosts(o);
  const routerPorts = new Map<string, number>();
  const supervisor = new Supervisor({
    cliPath: CLI_PATH, configPath, logLevel: o.level, pretty: o.pretty, log,
    // With a config file: one of each kind, group chat and upload only when the file has their sections.
    children: children ?? START_ORDER.filter((k) => (k !== "muc" && k !== "upload" && k !== "s2s") || doc[k] !== undefined).map((kind) => ({ kind, id: kind })),
    onChildReady: (id, report) => {
      if (!children || o.routerPort !== 0 || !routerIds.includes(id)) return;
      routerPorts.set(id, report.router!);
      if (routerPorts.size < routerIds.length) return;
      // Every router's port is known: the components about to start read them here.
      setRouters(doc, routerIds.map((r) => routerPorts.get(r)!));
      writeAtomically(configPath, JSON.stringify(doc, null, 2) + "\n");
    },
    onReady: (reports) => {
      const ports: FarmPorts = { routers: [], c2s: [], upload: [], s2s: [], metrics: {} };
      for (const c of children ?? []) {
        const r = reports.get(c.id) ?? {};
        if (r.router !== undefined) ports.routers.push({ id: c.id, host: "127.0.0.1", port: r.router });
        if (c.kind === "c2s") ports.c2s.push({ id: c.id, host: hosts[ports.c2s.length]!, starttls: r.starttls, directTls: r.directTls, websocket: r.websocket });
        if (r.upload !== undefined) ports.upload.push({ id: c.id, port: r.upload });
        if (r.s2s !== undefined) ports.s2s.push({ id: c.id, host: o.host, port: r.s2s });
        if (r.metrics !== undefined) ports.metrics[c.id] = r.metrics;
      }
      if (!o.config) writeAtomically(portsPath, JSON.stringify(ports, null, 2) + "\n");
      const firstC2s = [...reports.entries()].find(([id]) => id === "c2s" || id === "c2s-1")?.[1] ?? {};
      const starttls = firstC2s.starttls ?? listeners.starttls?.port;
      const directTls = firstC2s.directTls ?? listeners.directTls?.port;
      const websocket = firstC2s.websocket ?? listeners.websocket?.port;
      const where = [
        listeners.starttls ? `${hosts.join(", ")} port ${starttls} (STARTTLS)` : undefined,
        listeners.directTls ? `port ${directTls} (direct TLS)` : undefined,
        listeners.websocket ? `${wsScheme}://${hosts[0]}:${websocket}${ws?.path ?? "/xmpp-websocket"} (WebSocket; host-meta on the same port)` : undefined,
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
