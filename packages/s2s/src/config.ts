/**
 * The s2s process's config (docs/s2s.md): the farm's domains, where it
 * listens for other servers, how it finds them (DNS), the certificate it
 * presents and the CAs it trusts, the dialback secret every s2s of the farm
 * shares, and the limits per remote domain.
 */
import { z } from "zod";
import { componentLinkFields, secretSchema } from "@jabberfarm/component";
import { metricsEndpointSchema } from "@jabberfarm/metrics";

const domainName = z.string().min(1).transform((d) => d.toLowerCase());

const listener = z.object({
  host: z.string().min(1).default("127.0.0.1"),
  port: z.number().int().min(0).max(65535),
}).strict();

export const s2sConfigSchema = z.object({
  /** The component name the routers know the s2s processes by (their `remoteRoute`). */
  name: z.string().min(1).default("s2s"),
  ...componentLinkFields("s2s-1"),
  /**
   * The domains this farm serves (the SMs' domains): stanzas from other
   * servers to them travel confirmed to the SM; their subdomains (the farm's
   * services, conference.DOMAIN...) are ours too and get plain stanzas.
   */
  domains: z.array(domainName).min(1),
  /** Where other servers connect: RFC 6120 STARTTLS on 5269; `directTls` (XEP-0368) when set. */
  listen: listener.default({ host: "127.0.0.1", port: 5269 }),
  directTls: listener.optional(),
  tls: z.object({
    /** PEM certificate chain and key for our domains; without them a self-signed one is made in `dataDir` (dialback only). */
    cert: z.string().optional(),
    key: z.string().optional(),
    dataDir: z.string().default("./.jabberfarm/s2s-tls"),
    /**
     * PEM files of the CAs whose certificates are believed (RFC 6125 checks
     * against the remote domain): a valid one allows SASL EXTERNAL; absent,
     * Node's bundled roots.
     */
    ca: z.array(z.string().min(1)).optional(),
    /** Refuse streams that cannot be encrypted (both directions). */
    required: z.boolean().default(true),
  }).strict().default({ dataDir: "./.jabberfarm/s2s-tls", required: true }),
  /** XEP-0220 keys are HMAC-SHA-256 with this secret: the same for every s2s of the farm, so any of them can verify. */
  dialbackSecret: secretSchema,
  dns: z.object({
    /** Resolvers as `host` or `host:port`; absent, the system's. */
    servers: z.array(z.string().min(1)).optional(),
    timeoutMs: z.number().int().positive().default(3000),
  }).strict().default({ timeoutMs: 3000 }),
  /**
   * XEP-0198 on outgoing streams when the remote offers it: a stanza is
   * acknowledged to the SM only once the remote server says it handled it,
   * so that one lost with a remote that died goes again (docs/s2s.md).
   */
  streamManagement: z.boolean().default(true),
  /** Domains we federate with: `allow` (when given) lists the only ones, `deny` the refused ones (subdomains included). */
  allow: z.array(domainName).optional(),
  deny: z.array(domainName).default([]),
  timeouts: z.object({
    /** From the first DNS query to an authenticated outgoing stream. */
    setupMs: z.number().int().positive().default(15_000),
    /** A stream with no traffic either way for this long is closed. */
    idleSeconds: z.number().int().positive().default(600),
    /** A single space on an outgoing stream that has been quiet this long (RFC 6120 §4.6.1). */
    keepaliveSeconds: z.number().int().positive().default(60),
    /** Time for a remote server to authenticate on an incoming stream. */
    authMs: z.number().int().positive().default(30_000),
  }).strict().default({ setupMs: 15_000, idleSeconds: 600, keepaliveSeconds: 60, authMs: 30_000 }),
  limits: z.object({
    /** Largest stanza a remote server may send (policy-violation beyond). */
    maxStanzaBytes: z.number().int().min(10_000).default(256 * 1024),
    /** Stanzas held for one remote domain while its stream is set up; beyond, they bounce resource-constraint. */
    maxQueued: z.number().int().min(1).default(1000),
    /** Incoming streams one remote domain may hold on this s2s at once. */
    maxConnectionsPerDomain: z.number().int().min(1).default(4),
    /** Stanzas per second one remote domain may send (a token bucket; its socket is paused beyond). */
    stanzasPerSecond: z.number().positive().default(500),
    burst: z.number().int().min(1).default(1000),
  }).strict().default({ maxStanzaBytes: 256 * 1024, maxQueued: 1000, maxConnectionsPerDomain: 4, stanzasPerSecond: 500, burst: 1000 }),
  /** Health and Prometheus endpoints (GET /metrics, /healthz, /readyz); absent: none. */
  metrics: metricsEndpointSchema.optional(),
}).strict();

export type S2sConfigInput = z.input<typeof s2sConfigSchema>;
export type S2sConfig = z.output<typeof s2sConfigSchema>;

/** Whether `domain` is `d` or one of its subdomains, for some `d` in `list`. */
export function domainIn(domain: string, list: readonly string[]): boolean {
  for (const d of list) if (domain === d || domain.endsWith("." + d)) return true;
  return false;
}

/** The allow/deny policy: whether we federate with `domain` at all. */
export function mayFederate(config: Pick<S2sConfig, "allow" | "deny">, domain: string): boolean {
  if (domainIn(domain, config.deny)) return false;
  return config.allow === undefined || domainIn(domain, config.allow);
}
