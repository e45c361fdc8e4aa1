import { z } from "zod";
import { componentLinkFields } from "@jabberfarm/component";
import { metricsEndpointSchema } from "@jabberfarm/metrics";
import { moduleQuotaSections } from "./quotas.js";

export const smConfigSchema = z.object({
  /** The domain this SM serves; also its component name on the routers. */
  domain: z.string().min(1).default("localhost"),
  ...componentLinkFields("sm-1"),
  /**
   * Sessions (bound resources) one account may have at once; one more is
   * refused with the bind error resource-constraint (RFC 6120 §7.6.2.1), so
   * one account cannot fill a farm with sessions.
   */
  maxSessionsPerUser: z.number().int().min(1).default(10),
  /**
   * Routes this SM sent (to c2s, to other SMs) and not yet acknowledged
   * above which it holds back its acknowledgement of what its own sessions
   * route, until half are: their c2s then stops reading from them
   * (c2s limits.maxUnconfirmedRoutes). Routes from other SMs are
   * acknowledged regardless, so two SMs never wait on each other.
   */
  maxUnconfirmedRoutes: z.number().int().min(16).default(8192),
  /** XEP-0077: may an authenticated user change their password / cancel the account in band? */
  registration: z.object({
    passwordChange: z.boolean().default(true),
    cancel: z.boolean().default(true),
  }).strict().default({ passwordChange: true, cancel: true }),
  /** Per-module limits: offline, roster, subscription, private, vcard, presence (quotas.ts). */
  ...moduleQuotaSections,
  xdb: z.object({
    timeoutMs: z.number().int().positive().default(5000),
  }).strict().default({ timeoutMs: 5000 }),
  /**
   * The session registry in Redis (`redis://host:port/db`), which lets the
   * SMs of a farm take each other's users over; absent: sessions live only
   * in this process (a farm of one SM).
   */
  redisUrl: z.string().url().optional(),
  /** Lifetime of this SM's keys in Redis without a heartbeat (renewed every third of it). */
  sessionTtlSeconds: z.number().int().min(3).default(60),
  /**
   * XEP-0157 contact addresses in the server's disco#info (URIs such as
   * `mailto:abuse@example.org` or `xmpp:admin@example.org`); none by default.
   */
  contactAddresses: z.object({
    abuse: z.array(z.string().min(1)).default([]),
    admin: z.array(z.string().min(1)).default([]),
    feedback: z.array(z.string().min(1)).default([]),
    sales: z.array(z.string().min(1)).default([]),
    security: z.array(z.string().min(1)).default([]),
    status: z.array(z.string().min(1)).default([]),
    support: z.array(z.string().min(1)).default([]),
  }).strict().default({ abuse: [], admin: [], feedback: [], sales: [], security: [], status: [], support: [] }),
  /** Modules to load, in order; the default loads every built-in one. */
  modules: z.array(z.string()).optional(),
  /** Health and Prometheus endpoints (GET /metrics, /healthz, /readyz); absent: none. */
  metrics: metricsEndpointSchema.optional(),
}).strict();

export type SmConfigInput = z.input<typeof smConfigSchema>;
export type SmConfig = z.output<typeof smConfigSchema>;
