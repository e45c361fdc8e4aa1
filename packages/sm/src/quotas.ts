/**
 * Per-user limits of the SM's modules, one config section per module, each
 * with documented defaults (docs/security.md, "Quotas"). They bound what one
 * user (or one sender) can make the farm store or hold in memory, and keep
 * every storage answer within what the routers' links take (1 MiB by
 * default): what can grow is paged, and what must come in one piece (the
 * roster, which a client gets as one iq) is bounded so that it always fits.
 */
import { z } from "zod";
import { FARM_LINK_MAX_BYTES } from "@jabberfarm/component";

const count = z.number().int().min(0);
const KiB = 1024;
const MiB = 1024 * KiB;

/** Sliding-window rate: at most `count` events per `seconds`. */
const rate = (c: number, s: number) => z.strictObject({
  count: z.number().int().min(1).default(c),
  seconds: z.number().int().min(1).max(86_400).default(s),
}).prefault({});

export const offlineConfigSchema = z.strictObject({
  /** Messages kept per user while they are offline; beyond it senders get service-unavailable (RFC 6121 §8.5.2.2.1). */
  limit: count.default(1000),
  /** Bytes of those messages together. */
  maxBytes: count.default(10 * MiB),
  /** Delivery at login goes page by page, each acknowledged (deleted) after it was sent. */
  pageMessages: z.number().int().min(1).max(1000).default(100),
  pageBytes: z.number().int().min(1).max(512 * KiB).default(256 * KiB),
}).prefault({});

// What the roster answer (the xdb answer as JSON, then the client's iq as
// XML in a route) may take of a link: the rest is room for the envelopes.
const ROSTER_BUDGET = FARM_LINK_MAX_BYTES - 32 * KiB;

export const rosterConfigSchema = z.strictObject({
  /** Items per roster; a new one beyond it is refused with resource-constraint. */
  maxItems: z.number().int().min(1).default(1000),
  /** One item as stored and as sent (jid, name and groups, escaped); beyond it: not-acceptable (RFC 6121 §2.3.3). */
  maxItemBytes: z.number().int().min(128).default(1000),
}).prefault({}).refine((r) => r.maxItems * r.maxItemBytes <= ROSTER_BUDGET, {
  message: `roster.maxItems × roster.maxItemBytes must stay within ${ROSTER_BUDGET} bytes, so that a whole roster fits in one answer`,
});

export const subscriptionConfigSchema = z.strictObject({
  /** Pending inbound subscription requests per user (from distinct contacts). */
  maxPending: count.default(100),
  /** Bytes of those requests together (each is the subscribe stanza as received). */
  maxPendingBytes: count.default(1 * MiB),
  /** One request: a subscribe with a status and a nick is far smaller. */
  maxRequestBytes: count.default(16 * KiB),
  /** Requests one sender (bare JID) may make here, to users who do not have them in their roster. */
  inboundPerSender: rate(30, 60),
  /** Subscribe stanzas one local user may send. */
  outboundPerUser: rate(30, 60),
}).prefault({});

export const privateConfigSchema = z.strictObject({
  /** Elements (distinct name and namespace) per user (XEP-0049). */
  maxItems: count.default(100),
  /** One element; beyond it: not-acceptable. */
  maxItemBytes: count.default(64 * KiB),
  /** All of a user's elements together. */
  maxBytes: count.default(1 * MiB),
}).prefault({});

export const vcardConfigSchema = z.strictObject({
  /** One vCard (XEP-0054): enough for a full card with a small photo; avatars belong in XEP-0084. */
  maxBytes: count.default(64 * KiB),
}).prefault({});

export const presenceConfigSchema = z.strictObject({
  /** Entities one session sent directed presence to (each is owed an unavailable; MUC rooms count here). */
  maxDirected: count.default(1000),
}).prefault({});

export const blockingConfigSchema = z.strictObject({
  /** JIDs one user may block (XEP-0191); a block beyond it: resource-constraint. */
  maxItems: count.default(1000),
}).prefault({});

export const streamManagementConfigSchema = z.strictObject({
  /**
   * How long a session whose client's connection dropped waits for the
   * client to resume it (XEP-0198 `max`); a client may ask for less. Held
   * messages then go to the user's other resources or offline storage.
   */
  resumeTimeoutSeconds: z.number().int().min(1).max(86_400).default(300),
  /** Stanzas sent and not acknowledged beyond which a client that does not ack is ended. */
  maxUnacked: z.number().int().min(10).default(1000),
}).prefault({});

export const mamConfigSchema = z.strictObject({
  /** What is archived for a user who set no preferences (XEP-0313 §6.1): every message, none, or those with roster contacts. */
  default: z.enum(["always", "never", "roster"]).default("always"),
  /** Messages kept per user; beyond it the oldest go (checked every `trimEvery` appends of a user, so it may overshoot by that many). */
  maxItems: count.default(10_000),
  trimEvery: z.number().int().min(1).default(100),
  /** One archived message; a larger one is delivered but not archived. */
  maxItemBytes: count.default(64 * KiB),
  /** Messages older than this are deleted (at the user's next login) and never answered; 0 keeps them. */
  retentionDays: z.number().int().min(0).default(0),
  /** Most results one query answers (RSM `max` above it is lowered to it). */
  pageMax: z.number().int().min(1).max(1000).default(100),
  /** Archive writes go to storage in batches of at most these (one round trip per batch, docs/carbons-mam.md). */
  batchMaxItems: z.number().int().min(1).max(500).default(500),
  batchMaxBytes: z.number().int().min(1024).max(512 * KiB).default(256 * KiB),
}).prefault({});

export const pepConfigSchema = z.strictObject({
  /** Nodes per account (XEP-0163); one more is refused with policy-violation and pubsub#errors max-nodes-exceeded. */
  maxNodes: z.number().int().min(1).default(100),
  /** Items a node may keep: the most `pubsub#max_items` may be, and what `max` means; older items go as newer ones come. */
  maxItemsPerNode: z.number().int().min(1).max(10_000).default(256),
  /** One item's payload; larger: not-acceptable with payload-too-big. Avatars (XEP-0084) are the large ones. */
  maxItemBytes: z.number().int().min(1024).max(512 * KiB).default(256 * KiB),
  /** All of an account's nodes and items together; beyond it a publish gets policy-violation. */
  maxBytes: count.default(10 * MiB),
  /** Entity-capabilities hashes (XEP-0115) whose verified features this SM remembers (least recently used go). */
  capsCacheSize: z.number().int().min(1).default(10_000),
}).prefault({});

/** The modules' sections of the SM config. */
export const moduleQuotaSections = {
  offline: offlineConfigSchema,
  blocking: blockingConfigSchema,
  streamManagement: streamManagementConfigSchema,
  roster: rosterConfigSchema,
  subscription: subscriptionConfigSchema,
  private: privateConfigSchema,
  vcard: vcardConfigSchema,
  presence: presenceConfigSchema,
  mam: mamConfigSchema,
  pep: pepConfigSchema,
};

export type RosterConfig = z.output<typeof rosterConfigSchema>;
export type MamConfig = z.output<typeof mamConfigSchema>;
