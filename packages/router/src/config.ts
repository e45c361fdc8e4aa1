import { z } from "zod";
import { secretSchema } from "@jabberfarm/component";
import { metricsEndpointSchema } from "@jabberfarm/metrics";

const componentEntry = z.object({
  /** Shared secret for the XEP-0114 handshake; placeholders and short ones are refused (component secret.ts). */
  secret: secretSchema,
  /**
   * A farm process (c2s, sm, xdb) that speaks for users and so may send with
   * any `from`. Others may only send from their own name or its subdomains.
   */
  trusted: z.boolean().default(false),
}).strict();

export const routerConfigSchema = z.object({
  /** Address to listen on; loopback unless the farm spans machines. */
  host: z.string().min(1).default("127.0.0.1"),
  port: z.number().int().min(0).max(65535).default(5347),
  /** How `jabberfarm status` names this router (default `host:port`); `up` numbers its routers `router-1`, ... */
  instance: z.string().min(1).regex(/^[A-Za-z0-9._-]+$/, "letters, digits, '.', '_' and '-'").optional(),
  /**
   * Domains this farm serves. A stanza to one of them (or a subdomain) that no
   * component serves is answered service-unavailable; any other domain is
   * foreign and gets remote-server-not-found.
   */
  domains: z.array(z.string().min(1)).default([]),
  /**
   * The component name that carries stanzas for every domain this farm does
   * not serve (federation: the s2s processes, docs/s2s.md). Among several
   * connected under it, the rendezvous rule on the remote *domain* picks one,
   * so that one remote domain's traffic leaves through one s2s. Absent, or
   * nobody connected under it: such stanzas bounce remote-server-not-found.
   */
  remoteRoute: z.string().min(1).optional(),
  /** Component name (the stream header's `to`) → its secret and rights. */
  components: z.record(z.string().min(1), componentEntry),
  handshakeTimeoutMs: z.number().int().positive().default(10_000),
  /**
   * On stop, how long the router keeps routing after telling the farm's
   * processes it is leaving, so they move their traffic to the other routers
   * before the streams close. 0 closes every stream at once. At most 8 s:
   * a stop gets 10 s (packages/farm lifecycle.ts), the closing included.
   */
  drainMs: z.number().int().min(0).max(8000, "at most 8000 ms (a stop must end within 10 s)").default(1000),
  limits: z.object({
    /** Largest stanza from an external (untrusted) component, once re-serialised too. */
    maxStanzaBytes: z.number().int().min(10_000).optional(),
    /**
     * Largest element from a farm process (trusted); announced to each in
     * the stream header so it checks what it builds before sending
     * (docs/security.md). Default FARM_LINK_MAX_BYTES (1 MiB).
     */
    maxInternalBytes: z.number().int().min(64 * 1024).optional(),
    maxDepth: z.number().int().min(2).optional(),
    maxAttributes: z.number().int().min(4).optional(),
    maxHeaderBytes: z.number().int().min(512).optional(),
    /**
     * Bytes queued for one component above which its senders are paused (a
     * farm process) or it is cut off with resource-constraint (an external
     * component: one that stops reading must not freeze the farm's senders).
     */
    highWaterMark: z.number().int().min(16 * 1024).optional(),
  }).strict().default({}),
  /** Health and Prometheus endpoints (GET /metrics, /healthz, /readyz); absent: none. */
  metrics: metricsEndpointSchema.optional(),
}).strict();

export type RouterConfigInput = z.input<typeof routerConfigSchema>;
export type RouterConfig = z.output<typeof routerConfigSchema>;
