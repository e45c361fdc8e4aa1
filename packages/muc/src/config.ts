import { z } from "zod";
import { componentLinkFields } from "@jabberfarm/component";
import { metricsEndpointSchema } from "@jabberfarm/metrics";

export const mucConfigSchema = z.object({
  /** The service's domain, also its component name on the routers: `conference.DOMAIN`. */
  service: z.string().min(1).default("conference.localhost"),
  ...componentLinkFields("muc-1"),
  /**
   * Who may create rooms: `local` (users of `userDomains`), `anyone`
   * (any JID the routers bring, other servers' users included), or
   * `nobody` (only rooms that exist already).
   */
  createRooms: z.enum(["local", "anyone", "nobody"]).default("local"),
  /** The farm's user domains (default: the service's parent domain). */
  userDomains: z.array(z.string().min(1)).optional(),
  /** What a new room starts with (each a room configuration option, XEP-0045 §10.2). */
  roomDefaults: z.object({
    persistent: z.boolean().default(false),
    public: z.boolean().default(true),
    membersOnly: z.boolean().default(false),
    moderated: z.boolean().default(false),
    whois: z.enum(["moderators", "anyone"]).default("moderators"),
    changeSubject: z.boolean().default(false),
    allowInvites: z.boolean().default(false),
    allowPm: z.enum(["anyone", "participants", "moderators", "none"]).default("anyone"),
    maxUsers: z.number().int().min(1).max(10_000).default(200),
  }).strict().default({
    persistent: false, public: true, membersOnly: false, moderated: false, whois: "moderators", changeSubject: false,
    allowInvites: false, allowPm: "anyone", maxUsers: 200,
  }),
  /** Occupants in one room at most, whatever a room's owner configures. */
  maxUsersLimit: z.number().int().min(1).max(10_000).default(1000),
  history: z.object({
    /** Messages sent on join when the client asks for no particular amount (XEP-0045 §7.2.14). */
    default: z.number().int().min(0).max(1000).default(20),
    /** Most messages sent on join, whatever the client asks. */
    max: z.number().int().min(0).max(1000).default(100),
  }).strict().default({ default: 20, max: 100 }),
  archive: z.object({
    /**
     * How long a room's messages are kept for history and MAM. Older ones
     * are deleted every `pruneEvery` messages of the room and when it is
     * loaded (a count-based limit would count the archive at every append).
     */
    expireAfterDays: z.number().min(0.0001).default(365),
    pruneEvery: z.number().int().min(1).default(1000),
    /** Largest message archived (the rest are still delivered). */
    maxItemBytes: z.number().int().min(1024).default(64 * 1024),
    /** Most results in one MAM page. */
    maxPage: z.number().int().min(1).max(1000).default(250),
  }).strict().default({ expireAfterDays: 365, pruneEvery: 1000, maxItemBytes: 64 * 1024, maxPage: 250 }),
  /** Affiliations per room (owner, admin, member, outcast lists together). */
  maxAffiliations: z.number().int().min(1).default(2000),
  /** Public rooms listed in the service's disco#items at most. */
  maxListedRooms: z.number().int().min(1).max(5000).default(500),
  xdb: z.object({
    timeoutMs: z.number().int().positive().default(5000),
  }).strict().default({ timeoutMs: 5000 }),
  /**
   * Redis (`redis://host:port/db`) for the occupant lists, so that another
   * muc process takes a dead one's rooms over with their occupants
   * (docs/muc.md). Absent: occupants live only in this process, and after
   * it restarts clients find out by self-ping (XEP-0410) and rejoin.
   */
  redisUrl: z.string().url().optional(),
  /** Lifetime of a room's occupant list in Redis without a heartbeat (renewed every third of it). */
  occupantTtlSeconds: z.number().int().min(3).default(60),
  /** Health and Prometheus endpoints (GET /metrics, /healthz, /readyz); absent: none. */
  metrics: metricsEndpointSchema.optional(),
}).strict();

export type MucConfigInput = z.input<typeof mucConfigSchema>;
export type MucConfig = z.output<typeof mucConfigSchema>;

/** The user domains: configured, or the service's parent (`conference.example.org` → `example.org`). */
export function userDomainsOf(config: MucConfig): string[] {
  if (config.userDomains !== undefined) return config.userDomains;
  const dot = config.service.indexOf(".");
  return [dot > 0 ? config.service.slice(dot + 1) : config.service];
}
