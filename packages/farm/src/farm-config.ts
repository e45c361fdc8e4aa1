/**
 * The farm's one config file: a section per process, plus a few shared
 * top-level keys (`domain`, `dataDir`) from which each section's routine
 * fields (its routers, its secret, its domain) are derived, so an operator
 * writes each fact once.
 */
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { UPLOAD_PORT, serviceComponents, serviceSection } from "./service-config.js";

/** Where other servers connect to the embedded farm's s2s (RFC 6120's port). */
export const S2S_PORT = 5269;

export type Doc = Record<string, unknown>;

/** Top-level keys a farm file may have: shared values and one section per process. */
export const TOP_LEVEL_KEYS: ReadonlySet<string> = new Set(["domain", "dataDir", "databaseUrl", "redisUrl", "routers", "router", "xdb", "sm", "c2s", "muc", "upload", "s2s"]);

function obj(v: unknown): Doc {
  return v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Doc) : {};
}

/** The names farm processes connect to the router under. */
export const COMPONENT_NAMES = { c2s: "c2s", xdb: "xdb", cli: "cli", s2s: "s2s" } as const;

function routerAddresses(doc: Doc): Array<{ host: string; port: number }> {
  const listed = doc.routers;
  if (Array.isArray(listed)) return listed as Array<{ host: string; port: number }>;
  const r = obj(doc.router);
  return [{ host: typeof r.host === "string" ? r.host : "127.0.0.1", port: typeof r.port === "number" ? r.port : 5347 }];
}

function secretOf(doc: Doc, name: string): string | undefined {
  const entry = obj(obj(obj(doc.router).components)[name]);
  return typeof entry.secret === "string" ? entry.secret : undefined;
}

function domainOf(doc: Doc): string {
  return typeof doc.domain === "string" ? doc.domain : "localhost";
}

/**
 * The section for one process, with what it shares with the others filled
 * in where the section leaves it out. Explicit keys in the section win.
 */
export function sectionFor(doc: Doc, process: "router" | "xdb" | "sm" | "c2s" | "cli" | "muc" | "upload" | "s2s"): Doc {
  const section = obj(doc[process]);
  const domain = domainOf(doc);
  const dataDir = typeof doc.dataDir === "string" ? doc.dataDir : undefined;
  const routers = routerAddresses(doc);
  const redisUrl = typeof doc.redisUrl === "string" ? doc.redisUrl : undefined;
  switch (process) {
    case "router":
      return { domains: [domain], ...section };
    case "xdb":
      return {
        routers, secret: secretOf(doc, COMPONENT_NAMES.xdb),
        ...(dataDir ? { dataDir: join(dataDir, "db") } : {}),
        ...(typeof doc.databaseUrl === "string" ? { databaseUrl: doc.databaseUrl } : {}),
        ...section,
      };
    case "sm":
      return { domain, routers, secret: secretOf(doc, domain), ...(redisUrl ? { redisUrl } : {}), ...section };
    case "c2s": {
      const tls = dataDir ? { dataDir: join(dataDir, "tls"), ...obj(section.tls) } : section.tls;
      // The farm's Redis carries the c2s loads for redirection too.
      const redirect = redisUrl ? { redisUrl, ...obj(section.redirect) } : section.redirect;
      return {
        domain, routers, secret: secretOf(doc, COMPONENT_NAMES.c2s), ...section, ...(tls ? { tls } : {}), ...(redirect ? { redirect } : {}),
      };
    }
    case "cli":
      return { domain, routers, secret: secretOf(doc, COMPONENT_NAMES.cli), dataDir, databaseUrl: doc.databaseUrl, redisUrl };
    case "s2s": {
      // The farm's domain; the certificate made in the data directory unless the section names one.
      const tls = dataDir ? { dataDir: join(dataDir, "s2s-tls"), ...obj(section.tls) } : section.tls;
      return { domains: [domain], routers, secret: secretOf(doc, COMPONENT_NAMES.s2s), ...section, ...(tls ? { tls } : {}) };
    }
    case "muc":
    case "upload":
      return serviceSection(process, section, { domain, routers, dataDir, redisUrl, secret: (name) => secretOf(doc, name) });
  }
}

export interface FarmSecrets {
  sm: string;
  c2s: string;
  xdb: string;
  cli: string;
  muc: string;
  upload: string;
  /** Signs the upload service's PUT URLs (HMAC). */
  uploadUrl: string;
  s2s: string;
  /** XEP-0220 keys, shared by every s2s of the farm. */
  dialback: string;
}

/** Secrets for an embedded farm: made once, kept in the data directory (mode 0600). */
export function loadOrCreateSecrets(dataDir: string): FarmSecrets {
  const file = join(dataDir, "secrets.json");
  const make = (): string => randomBytes(18).toString("base64url");
  const kept = existsSync(file) ? (JSON.parse(readFileSync(file, "utf8")) as Partial<FarmSecrets>) : undefined;
  const secrets: FarmSecrets = {
    sm: make(), c2s: make(), xdb: make(), cli: make(), muc: make(), upload: make(), uploadUrl: make(), s2s: make(), dialback: make(), ...kept,
  };
  // A data directory from before a process kind existed gets that kind's secret added.
  if (kept !== undefined && Object.keys(secrets).every((k) => k in kept)) return secrets;
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(file, JSON.stringify(secrets, null, 2) + "\n", { mode: 0o600 });
  chmodSync(file, 0o600);
  return secrets;
}

export interface EmbeddedFarmOptions {
  domain: string;
  dataDir: string;
  routerPort: number;
  c2sPort: number;
  c2sTlsPort: number;
  /** The WebSocket and host-meta port (absent: 5280). */
  c2sWsPort?: number | undefined;
  /** Web page origins allowed to open WebSockets. */
  wsOrigins?: string[] | undefined;
  host: string;
  databaseUrl?: string | undefined;
  /** Redis for the session registry and the c2s loads (several SMs, redirection). */
  redisUrl?: string | undefined;
  registration?: boolean;
  /** Streams without TLS and PLAIN in the clear: for benchmarks on loopback, never for users. */
  plaintext?: boolean;
  /** Health and metrics endpoints on loopback: router on this port, xdb +1, sm +2, c2s +3, muc +4, upload +5. */
  metricsPort?: number | undefined;
  /** External (untrusted) components the router accepts. */
  components?: Array<{ name: string; secret: string }>;
  /** The upload service's HTTPS port (default 5443). */
  uploadPort?: number | undefined;
  /** Where other servers connect to the (first) s2s (default 5269). */
  s2sPort?: number | undefined;
  /** DNS servers the s2s asks, else the system's. */
  dns?: string[] | undefined;
}

/** The config document `jabberfarm up` runs when no file is given. */
export function embeddedFarmDocument(o: EmbeddedFarmOptions): Doc {
  const dataDir = resolve(o.dataDir);
  const s = loadOrCreateSecrets(dataDir);
  const metrics = (offset: number): Doc =>
    o.metricsPort === undefined ? {} : { metrics: { host: "127.0.0.1", port: o.metricsPort + offset } };
  return {
    domain: o.domain,
    dataDir,
    ...(o.databaseUrl ? { databaseUrl: o.databaseUrl } : {}),
    ...(o.redisUrl ? { redisUrl: o.redisUrl } : {}),
    router: {
      host: "127.0.0.1",
      port: o.routerPort,
      domains: [o.domain],
      // Every other domain goes to the s2s processes (docs/s2s.md).
      remoteRoute: COMPONENT_NAMES.s2s,
      ...metrics(0),
      components: {
        [o.domain]: { secret: s.sm, trusted: true },
        [COMPONENT_NAMES.c2s]: { secret: s.c2s, trusted: true },
        [COMPONENT_NAMES.xdb]: { secret: s.xdb, trusted: true },
        [COMPONENT_NAMES.cli]: { secret: s.cli, trusted: true },
        [COMPONENT_NAMES.s2s]: { secret: s.s2s, trusted: true },
        ...Object.fromEntries((o.components ?? []).map((c) => [c.name, { secret: c.secret }])),
        ...serviceComponents(o.domain, s),
      },
    },
    xdb: { ...metrics(1) },
    sm: { ...metrics(2) },
    c2s: {
      ...metrics(3),
      listeners: {
        starttls: { host: o.host, port: o.c2sPort },
        directTls: { host: o.host, port: o.c2sTlsPort },
        websocket: { host: o.host, port: o.c2sWsPort ?? 5280 },
      },
      // wss with the c2s certificate; with --plaintext, plain ws like the other listeners.
      websocket: { tls: !o.plaintext, allowedOrigins: o.wsOrigins ?? [] },
      ...(o.registration ? { registration: { allow: true } } : {}),
      ...(o.plaintext ? { requireTls: false, allowPlainWithoutTls: true } : {}),
    },
    muc: { ...metrics(4) },
    upload: { ...metrics(5), urlSecret: s.uploadUrl, http: { host: o.host, port: o.uploadPort ?? UPLOAD_PORT } },
    s2s: {
      ...metrics(6), dialbackSecret: s.dialback, listen: { host: o.host, port: o.s2sPort ?? S2S_PORT },
      ...(o.dns && o.dns.length > 0 ? { dns: { servers: o.dns } } : {}),
    },
  };
}
