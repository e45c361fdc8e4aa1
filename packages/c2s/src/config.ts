import { z } from "zod";
import { componentLinkFields } from "@jabberfarm/component";
import { metricsEndpointSchema } from "@jabberfarm/metrics";
import { isAddressOrRange } from "./bans.js";

const KiB = 1024;

/** Where a listener binds, or `false`/`null` for none. Port 0 picks a free port (tests). */
function listenerOrOff(defaultPort: number) {
  const on = z.object({
    host: z.string().min(1).default("127.0.0.1"),
    port: z.number().int().min(0).max(65535).default(defaultPort),
  }).strict();
  return z.union([z.literal(false), z.null(), on]).transform((v) => (v === false ? null : v));
}

/** A listener, on unless configured off. */
function listenerSchema(defaultPort: number) {
  return listenerOrOff(defaultPort).prefault({});
}

/** Like listenerSchema, but off unless configured (`jabberfarm up` turns it on). */
function optionalListenerSchema(defaultPort: number) {
  return listenerOrOff(defaultPort).default(null);
}

/** An origin as browsers send it: scheme://host[:port], no path; or "*". */
const originSchema = z.string().refine((o) => o === "*" || /^https?:\/\/[^/\s]+$/.test(o), "an origin such as https://chat.example.com (scheme, host, optional port), or *");

function banRule(d: { failures: number; windowMs: number; banMs: number }) {
  return z.object({
    failures: z.number().int().min(0).default(d.failures),
    windowMs: z.number().int().positive().default(d.windowMs),
    banMs: z.number().int().positive().default(d.banMs),
  }).strict().prefault({});
}

export const c2sConfigSchema = z.object({
  /** The one domain this c2s serves; clients must open their stream `to` it. */
  domain: z.string().min(1).default("localhost"),
  /** Session ids start with the instance id, so they are unique in the farm. */
  ...componentLinkFields("c2s-1"),
  // `secret` (in componentLinkFields) also seeds the fake SCRAM salts of unknown users, so every c2s of a farm shows the same ones.
  listeners: z.object({
    /** RFC 6120 plain TCP with STARTTLS. */
    starttls: listenerSchema(5222),
    /** XEP-0368 direct TLS. */
    directTls: listenerSchema(5223),
    /**
     * RFC 7395 XMPP over WebSocket, and XEP-0156 host-meta, on one HTTP(S)
     * listener (websocket-listener.ts; settings in `websocket`). Off unless
     * configured; `jabberfarm up` serves it on 5280.
     */
    websocket: optionalListenerSchema(5280),
  }).strict().prefault({}),
  /** The WebSocket listener's settings (docs/websocket.md). */
  websocket: z.object({
    /** wss with the c2s certificate (`tls`); false: plain ws, for a TLS-terminating proxy in front. */
    tls: z.boolean().default(true),
    /**
     * Plain ws counts as encrypted (SASL PLAIN, requireTls satisfied): only
     * when the listener is reachable solely through a proxy that did TLS.
     */
    trustProxyTls: z.boolean().default(false),
    /** Where WebSocket clients connect; requests to other paths get 404. */
    path: z.string().regex(/^\/[^\s?#]*$/, "a path such as /xmpp-websocket").default("/xmpp-websocket"),
    /**
     * The URL host-meta announces (wss://xmpp.example.com/xmpp-websocket),
     * e.g. a load balancer's; default: the host the request named, with this
     * listener's scheme and path. (Redirects name each c2s itself:
     * redirect.advertise's host on this listener's port.)
     */
    publicUrl: z.string().regex(/^wss?:\/\/[^\s]+$/, "a ws:// or wss:// URL").optional(),
    /**
     * Web pages (their Origin) allowed to open a WebSocket; "*" for any.
     * Clients that send no Origin (not browsers) are not concerned.
     */
    allowedOrigins: z.array(originSchema).default([]),
    /** Largest WebSocket message; a larger one closes the connection with 1009. Default: maxStanzaBytes plus room for framing. */
    maxMessageBytes: z.number().int().min(10_000).optional(),
    /** A ping on this period; a connection whose pong did not come by the next one is ended. */
    pingIntervalMs: z.number().int().min(100).default(30_000),
  }).strict().prefault({}),
  tls: z.object({
    /** PEM files; without them a self-signed certificate for the domain is made once and kept in `dataDir`. */
    cert: z.string().min(1).optional(),
    key: z.string().min(1).optional(),
    dataDir: z.string().min(1).default("./.jabberfarm/tls"),
  }).strict()
    .refine((t) => (t.cert === undefined) === (t.key === undefined), "tls.cert and tls.key go together")
    .prefault({}),
  /** Refuse authentication and stanzas until the stream is encrypted. */
  requireTls: z.boolean().default(true),
  /** Offer PLAIN on unencrypted streams. Only for benchmarks on loopback. */
  allowPlainWithoutTls: z.boolean().default(false),
  /**
   * Redirection between c2s processes through Redis (load-board.ts): off
   * without `redisUrl`. `advertise` is the host:port clients use to reach
   * this c2s (default: the STARTTLS listener); `margin` how far above its
   * fair share a c2s gets before it sends new clients elsewhere, and
   * `minConnections` the load below which it never does: many clients do
   * not follow see-other-host, and a small farm must work for them too.
   */
  redirect: z.object({
    redisUrl: z.string().url().optional(),
    advertise: z.string().regex(/^[^\s:]+:\d+$/, "host:port").optional(),
    margin: z.number().min(0).max(10).default(0.2),
    minConnections: z.number().int().min(0).default(1000),
  }).strict().prefault({}),
  /** XEP-0077 in-band registration before authentication. */
  registration: z.object({
    allow: z.boolean().default(false),
    /** Accounts one address may create per window, so an open server is not a free account factory. */
    perIpLimit: z.number().int().min(1).default(5),
    perIpWindowMs: z.number().int().positive().default(60 * 60_000),
  }).strict().prefault({}),
  limits: z.object({
    /** Largest stanza a client may send (RFC 6120 §13.12 asks for at least 10,000 bytes). */
    maxStanzaBytes: z.number().int().min(10_000).default(256 * KiB),
    /**
     * Largest `<route/>` envelope sent to a router (and read from one). The
     * routers announce what they take (limits.maxInternalBytes); the smaller
     * of the two applies. A client stanza that would be larger once
     * re-serialised and wrapped is refused with a policy-violation error.
     */
    maxRoutedBytes: z.number().int().min(10_000).default(1024 * KiB),
    /** Sustained bytes per second a client may send; beyond the burst the stream ends with policy-violation. */
    bytesPerSecond: z.number().int().min(1).default(64 * KiB),
    /** Bucket size; at least one stanza of the largest size must fit. Default: max(4 s of rate, 2 × maxStanzaBytes). */
    burstBytes: z.number().int().min(1).optional(),
    /** No data from the client for this long ends the stream with connection-timeout. */
    idleTimeoutMs: z.number().int().positive().default(5 * 60_000),
    /** Whitespace sent on a stream we have not written to for this long, so NATs keep the connection. */
    keepaliveIntervalMs: z.number().int().positive().default(60_000),
    /**
     * A bound stream that sent nothing for this long frees its XML parser
     * (saxes), rebuilt when data comes: ~3 KB and more per idle session
     * (docs/performance.md, "Memory per idle session"). Keepalive white
     * space does not rebuild it.
     */
    releaseParserAfterMs: z.number().int().positive().default(10_000),
    /**
     * Routes to the SMs sent and not yet acknowledged (handled: delivered,
     * archived) above which the sessions that route more stop being read,
     * until half of them are. Without it a farm slower than its clients
     * (an archive that cannot keep up) would queue without bound, and the
     * SM's archive would drop what it cannot hold (docs/performance.md,
     * "Flow control"). The senders' TCP windows do the rest.
     */
    maxUnconfirmedRoutes: z.number().int().min(16).default(4096),
    /** A stream must be authenticated and bound within this long. */
    authTimeoutMs: z.number().int().positive().default(60_000),
    /**
     * A failed authentication is answered after this fixed delay, never
     * more: a client must get its <failure/> well within its own timeout.
     * Guessing is stopped by the bans (`authBans`), not by waiting.
     */
    authFailureDelayMs: z.number().int().min(0).max(250, "at most 250 ms: clients time out; bans stop guessing").default(100),
    /** SASL failures on one stream before it ends with policy-violation (RFC 6120 §6.4.5 suggests 2 to 5). */
    maxAuthFailures: z.number().int().min(1).default(3),
    /** Connections at once from one address (an IPv6 /64); one more is answered policy-violation. */
    maxConnectionsPerAddress: z.number().int().min(1).default(100),
    /**
     * Addresses and ranges (CIDR) that per-address limits and bans never
     * apply to. Loopback by default, as fail2ban's ignoreip: behind a proxy
     * or tunnel on the same machine, every client would be one address.
     */
    exemptAddresses: z.array(z.string().refine(isAddressOrRange, "an IP address or a CIDR range")).default(["127.0.0.0/8", "::1"]),
    /**
     * PLAIN password checks per second for this process: each costs a PBKDF2
     * derivation (4096 iterations or more), so a flood of PLAIN attempts
     * could take every CPU. Beyond it PLAIN is answered temporary-auth-failure
     * at once; SCRAM costs the server no PBKDF2 and is not counted.
     */
    plainChecksPerSecond: z.number().int().min(1).default(200),
    /**
     * After the c2s loses every SM or xdb (or router), a new client waits
     * this long for them to come back before it is refused with
     * internal-server-error; 0 refuses at once.
     */
    unreadyHoldMs: z.number().int().min(0).max(60_000).default(10_000),
    /** How long resource binding waits for the session manager. */
    bindTimeoutMs: z.number().int().positive().default(10_000),
    /** Bytes queued for a client that reads too slowly before its stream is ended. */
    maxQueuedBytes: z.number().int().min(64 * KiB).default(4 * 1024 * KiB),
  }).strict().prefault({}),
  /**
   * Failed-authentication bans (bans.ts, docs/security.md). An address with
   * `address.failures` wrong passwords within `windowMs` is refused, before
   * TLS and SASL, for `banMs`. An account with `account.failures` is refused
   * temporary-auth-failure for its `banMs`: anybody can lock an account out
   * that way, so the count is high and the ban short. `failures: 0` turns a
   * rule off.
   */
  authBans: z.object({
    address: banRule({ failures: 5, windowMs: 10 * 60_000, banMs: 10 * 60_000 }),
    account: banRule({ failures: 20, windowMs: 10 * 60_000, banMs: 5 * 60_000 }),
  }).strict().prefault({}),
  /** Client connections at once; one more is answered resource-constraint. */
  maxConnections: z.number().int().positive().default(10_000),
  xdb: z.object({
    timeoutMs: z.number().int().positive().default(5000),
  }).strict().prefault({}),
  /** Health and Prometheus endpoints (GET /metrics, /healthz, /readyz); absent: none. */
  metrics: metricsEndpointSchema.optional(),
}).strict().transform((c) => ({
  ...c,
  limits: { ...c.limits, burstBytes: c.limits.burstBytes ?? Math.max(4 * c.limits.bytesPerSecond, 2 * c.limits.maxStanzaBytes) },
  websocket: { ...c.websocket, maxMessageBytes: c.websocket.maxMessageBytes ?? c.limits.maxStanzaBytes + 1024 },
}));

export type C2sConfigInput = z.input<typeof c2sConfigSchema>;
export type C2sConfig = z.output<typeof c2sConfigSchema>;
export type ListenerConfig = NonNullable<C2sConfig["listeners"]["starttls"]>;
