/**
 * The command line of `jabberfarm`: its usage text, its options, and the
 * farm document a command works with (a config file, or the embedded farm's).
 */
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { applyEnvOverrides, readConfigFile } from "./config-file.js";
import { embeddedFarmDocument, type Doc } from "./farm-config.js";

export const USAGE = `usage: jabberfarm <command> [options]

the farm on one machine:
  up                      start router, xdb, sm, c2s, muc, upload and s2s as child processes
                          (embedded PGlite storage unless --database-url)
    --domain D            served domain (default localhost)
    --data DIR            data directory (default ./.jabberfarm)
    --port N              client STARTTLS port (default 5222)
    --tls-port N          client direct TLS port (default 5223)
    --ws-port N           XMPP over WebSocket (wss, RFC 7395) and host-meta
                          (XEP-0156) port (default 5280; plain ws with --plaintext)
    --ws-origin ORIGIN    a web page origin allowed to open WebSockets
                          (https://chat.example.com, or *); repeat for more
    --router-port N       router port for components (default 5347)
                          (0 for any of these: free ports picked at start,
                          printed and written to DIR/farm.ports.json)
    --host ADDR           address clients connect to (default 127.0.0.1)
    --database-url URL    use PostgreSQL instead of PGlite (also DATABASE_URL)
    --redis-url URL       Redis for the session registry shared by the SMs
                          and the c2s loads for redirection (also REDIS_URL)
    --registration        allow in-band registration (XEP-0077)
    --component NAME=SECRET
                          accept an external component (XEP-0114, untrusted: it
                          may send only stanzas from NAME and its subdomains);
                          repeat for more
    --muc N, --upload N   group chat (conference.DOMAIN) and HTTP upload
                          (upload.DOMAIN) processes (default 1 each; 0: none)
    --upload-port N       the upload service's HTTPS port (default 5443)
    --s2s N               federation processes (s2s, default 1; 0: none, the
                          farm talks to no other server)
    --xdb N               storage processes (default 1); more than one needs
                          --database-url (PGlite is one process per directory)
    --s2s-port N          where other servers connect (default 5269; s2s i
                          listens on N + i - 1; 0: free ports)
    --dns ADDR[:PORT]     the DNS server the s2s asks (default the system's)
    --routers N, --sm N, --c2s N
                          how many of each to run (default 1 each); c2s i
                          listens on the --host address + i-1 (127.0.0.2, ...)
    --plaintext           allow streams without TLS and PLAIN in the clear
                          (benchmarks on loopback only; never for real users)
    --metrics-port BASE   /metrics, /healthz and /readyz on 127.0.0.1: router
                          on BASE, xdb BASE+1, sm BASE+2, c2s BASE+3 (default off;
                          0: a free port each, listed in DIR/farm.ports.json)

one process (each reads its section of --config FILE):
  router | xdb | sm | c2s | muc | upload | s2s --config FILE

accounts (through the running farm, or directly on its storage):
  adduser USER@DOMAIN     password from standard input, or asked
  adduser --from FILE     many accounts: one 'USER PASSWORD' per line ('#'
                          comments and blank lines skipped)
  import FILE|DIR         accounts with their rosters, vCards, private XML and
                          offline messages from an XEP-0227 file (prosody's
                          prosody-migrator, ejabberd's export_piefxis), or a
                          directory of them; checked whole before anything is
                          written; accounts already there are left as they are,
                          so an interrupted import is finished by running it again
  export FILE             every account to an XEP-0227 file (SCRAM keys, never
                          a password: the farm has none)
    --batch N             accounts per storage request for import, export and
                          adduser --from (default 500)
  passwd USER@DOMAIN
  deluser USER@DOMAIN
  migrate                 apply storage migrations and exit
    --wait S              while the farm starts, wait up to S seconds for its
                          storage (xdb) to be served (default 30)

operating a running farm (through its routers, as the component 'cli'):
  status                  every router and every c2s, sm and xdb behind them:
                          pid, uptime, memory, connections and sessions
                          (exit 1 when one of them does not answer)
  sessions USER@DOMAIN    that user's sessions: resource, c2s, sm, presence
  kick USER@DOMAIN/RES    end that session (policy-violation, "kicked by the operator")
    --json                machine-readable output (status, sessions, kick)

checking a config file:
  config check FILE       validate every section; print each mistake with its key path

TLS:
  certificate --config FILE
                          make the c2s's self-signed certificate for the domain in
                          c2s.tls.dataDir (or keep the one there) and exit; run it
                          once before c2s replicas that share that directory

common options:
  --config FILE           farm config file (YAML or JSON); see farm.example.yaml
                          (without it, account and operator commands read the
                          config the embedded farm wrote to --data)
  --log-level LEVEL       trace, debug, info (default), warn, error, silent
  --pretty                human-readable log lines instead of JSON
                          (SIGUSR2 to a process switches it to debug and back)
`;

export const LEVELS = ["trace", "debug", "info", "warn", "error", "fatal", "silent"] as const;
export type Level = (typeof LEVELS)[number];

export class UsageError extends Error {}

export interface Options {
  config?: string | undefined;
  level: Level;
  domain: string;
  data: string;
  port: number;
  tlsPort: number;
  /** The WebSocket (and host-meta) port. */
  wsPort: number;
  /** Web page origins allowed to open WebSockets. */
  wsOrigins: string[];
  routerPort: number;
  host: string;
  databaseUrl?: string | undefined;
  redisUrl?: string | undefined;
  registration: boolean;
  /** External (untrusted) components the embedded farm's router accepts: `--component NAME=SECRET`. */
  components: Array<{ name: string; secret: string }>;
  plaintext: boolean;
  metricsPort?: number | undefined;
  /** How long account commands wait for the farm's storage to be served. */
  waitMs: number;
  pretty: boolean;
  json: boolean;
  counts: { router: number; xdb: number; sm: number; c2s: number; muc: number; upload: number; s2s: number };
  /** Where the first s2s listens for other servers (0: any free port). */
  s2sPort: number;
  /** DNS servers for the s2s (`--dns`), else the system's. */
  dns: string[];
  /** The upload service's HTTPS port (0: any free one). */
  uploadPort: number;
  /** `adduser --from FILE`: the file of `user password` lines. */
  from?: string | undefined;
  /** Accounts per storage request of the bulk commands. */
  batch: number;
  positionals: string[];
}

export function parse(argv: string[]): Options {
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
      "ws-port": { type: "string", default: "5280" },
      "ws-origin": { type: "string", multiple: true, default: [] },
      "router-port": { type: "string", default: "5347" },
      host: { type: "string", default: "127.0.0.1" },
      "database-url": { type: "string", default: process.env.DATABASE_URL },
      "redis-url": { type: "string", default: process.env.REDIS_URL },
      registration: { type: "boolean", default: false },
      plaintext: { type: "boolean", default: false },
      "metrics-port": { type: "string" },
      wait: { type: "string", default: "30" },
      pretty: { type: "boolean", default: false },
      json: { type: "boolean", default: false },
      routers: { type: "string", default: "1" },
      sm: { type: "string", default: "1" },
      xdb: { type: "string", default: "1" },
      c2s: { type: "string", default: "1" },
      muc: { type: "string", default: "1" },
      upload: { type: "string", default: "1" },
      "upload-port": { type: "string", default: "5443" },
      s2s: { type: "string", default: "1" },
      "s2s-port": { type: "string", default: "5269" },
      dns: { type: "string", multiple: true, default: [] },
      component: { type: "string", multiple: true, default: [] },
      from: { type: "string" },
      batch: { type: "string", default: "500" },
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
  const seconds = (name: string, v: string | undefined): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0 || n > 3600) throw new UsageError(`--${name}: got "${v}"; expected seconds from 0 to 3600`);
    return n;
  };
  const metricsPort = values["metrics-port"] === undefined ? undefined : port("metrics-port", values["metrics-port"]);
  if (metricsPort !== undefined && metricsPort !== 0 && metricsPort > 65535 - 3) {
    throw new UsageError(`--metrics-port: got "${metricsPort}"; expected 0 or a port from 1 to 65532 (four ports from it are used)`);
  }
  return {
    metricsPort, pretty: values.pretty ?? false, json: values.json ?? false, waitMs: seconds("wait", values.wait) * 1000,
    counts: {
      router: count("routers", values.routers), xdb: count("xdb", values.xdb), sm: count("sm", values.sm), c2s: count("c2s", values.c2s),
      muc: count("muc", values.muc, 0), upload: count("upload", values.upload, 0), s2s: count("s2s", values.s2s, 0),
    },
    s2sPort: port("s2s-port", values["s2s-port"]), dns: values.dns ?? [],
    uploadPort: port("upload-port", values["upload-port"]),
    config: values.config, level, domain: values.domain!, data: values.data!, host: values.host!,
    port: port("port", values.port), tlsPort: port("tls-port", values["tls-port"]), wsPort: port("ws-port", values["ws-port"]), wsOrigins: values["ws-origin"] ?? [], routerPort: port("router-port", values["router-port"]),
    databaseUrl: values["database-url"] || undefined, redisUrl: values["redis-url"] || undefined, registration: values.registration ?? false, plaintext: values.plaintext ?? false, positionals, from: values.from,
    batch: (() => {
      const n = Number(values.batch);
      if (!Number.isInteger(n) || n < 1 || n > 1000) throw new UsageError(`--batch: got "${values.batch}"; expected a number of accounts from 1 to 1000`);
      return n;
    })(),
    components: (values.component ?? []).map((c) => {
      const eq = c.indexOf("=");
      if (eq <= 0) throw new UsageError(`--component: got "${c}"; expected NAME=SECRET (an external component, e.g. bot.localhost=...)`);
      return { name: c.slice(0, eq).toLowerCase(), secret: c.slice(eq + 1) };
    }),
  };
}

/** The farm document: the config file when given, else the embedded farm's in the data directory. */
export function farmDocument(o: Options): Doc {
  if (o.config) return readConfigFile(o.config);
  return applyEnvOverrides(embeddedFarmDocument({
    domain: o.domain, dataDir: o.data, routerPort: o.routerPort, c2sPort: o.port, c2sTlsPort: o.tlsPort, c2sWsPort: o.wsPort, wsOrigins: o.wsOrigins,
    host: o.host, databaseUrl: o.databaseUrl, redisUrl: o.redisUrl, registration: o.registration, plaintext: o.plaintext, metricsPort: o.metricsPort,
    components: o.components, uploadPort: o.uploadPort, s2sPort: o.s2sPort, dns: o.dns,
  }));
}

/**
 * The document admin commands work with: --config, else the one the
 * embedded farm wrote to its data directory (it knows every router of
 * `up --routers N` and the ports `up` was given), else the one `up` would
 * write with these options.
 */
export function adminDocument(o: Options): Doc {
  if (!o.config) {
    const generated = resolve(o.data, "farm.generated.json");
    if (existsSync(generated)) return readConfigFile(generated);
  }
  return farmDocument(o);
}
