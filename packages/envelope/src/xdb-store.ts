/**
 * The generic module stores (docs/storage.md): the parameters and results of
 * `store.read` and `store.write`, the two xdb operations every sm module's
 * data goes through. Two shapes, as in prosody's storagemanager:
 *
 * - a keyed store: (user, store, key) → value text;
 * - an archive: append-mostly items (user, store, id, when, with, value),
 *   ids unique per (user, store), appends idempotent by id.
 *
 * Quotas travel with each write and are enforced by the storage atomically,
 * so two sm processes writing for one user can never pass them together.
 */
import { z } from "zod";

const bareJid = z.string().min(3).max(3071).regex(/^[^@/]+@[^@/]+$/, "a bare JID local@domain");

/** A module's store name: what `openStore(name)` was given. */
export const storeNameSchema = z.string().min(1).max(64).regex(/^[a-z0-9][a-z0-9._-]*$/, "lower-case letters, digits, '.', '_' or '-'");
const key = z.string().max(1024);
const itemId = z.string().min(1).max(256);
const time = z.iso.datetime({ offset: true });
const count = z.number().int().min(0);

/** Most items one read answers; the byte budget usually stops a page first. */
export const MAX_PAGE_ITEMS = 1000;
/** Largest byte budget a read may ask for: the answer, escaped into its envelope, must fit a farm link (1 MiB). */
export const MAX_PAGE_BYTES = 512 * 1024;
export const DEFAULT_PAGE_ITEMS = 100;
/** Most items one `archive.appendMany` carries (values are bounded by the link anyway). */
export const MAX_APPEND_ITEMS = 500;
export const DEFAULT_PAGE_BYTES = 256 * 1024;

const page = {
  limit: z.number().int().min(1).max(MAX_PAGE_ITEMS).default(DEFAULT_PAGE_ITEMS),
  /** Sum of the values' UTF-8 bytes a page stops at (it always holds at least one item). */
  maxBytes: z.number().int().min(1).max(MAX_PAGE_BYTES).default(DEFAULT_PAGE_BYTES),
};

/** Limits of a keyed store, per user. Absent: unlimited. Bytes are UTF-8 bytes of keys and values. */
export const keyedQuotaSchema = z.strictObject({
  maxKeys: count.optional(),
  maxBytes: count.optional(),
  maxValueBytes: count.optional(),
});

/** Limits of an archive, per user; `onFull` says whether a full archive refuses the append or drops its oldest items. */
export const archiveQuotaSchema = z.strictObject({
  maxItems: count.optional(),
  maxBytes: count.optional(),
  maxItemBytes: count.optional(),
  onFull: z.enum(["refuse", "drop-oldest"]).default("refuse"),
});

const scope = { user: bareJid, store: storeNameSchema };

export const storeReadSchema = z.discriminatedUnion("kind", [
  z.strictObject({ kind: z.literal("kv.get"), ...scope, key }),
  /** Keys in code point order, from after `after`. */
  z.strictObject({ kind: z.literal("kv.list"), ...scope, after: key.optional(), ...page }),
  /**
   * Items in append order (newest first with `reverse`), filtered by `with`,
   * time (`start`, `end`, inclusive), position (`after`, `before`: item ids,
   * exclusive) and `ids`.
   */
  z.strictObject({
    kind: z.literal("archive.query"), ...scope,
    with: z.string().min(1).max(3071).optional(),
    start: time.optional(), end: time.optional(),
    after: itemId.optional(), before: itemId.optional(),
    ids: z.array(itemId).min(1).max(MAX_PAGE_ITEMS).optional(),
    reverse: z.boolean().default(false),
    ...page,
  }),
  z.strictObject({ kind: z.literal("archive.count"), ...scope, with: z.string().min(1).max(3071).optional() }),
]);

export const storeWriteSchema = z.discriminatedUnion("kind", [
  /** Sets (or with a null value deletes) up to 100 keys at once: all of them or, refused, none. */
  z.strictObject({
    kind: z.literal("kv.set"), ...scope,
    entries: z.array(z.strictObject({ key, value: z.string().nullable() })).min(1).max(100),
    quota: keyedQuotaSchema.optional(),
  }),
  /** A re-append of an id already there changes nothing and answers the stored item (`duplicate`). */
  z.strictObject({
    kind: z.literal("archive.append"), ...scope,
    id: itemId.optional(), when: time.optional(), with: z.string().min(1).max(3071).optional(),
    value: z.string(),
    quota: archiveQuotaSchema.optional(),
  }),
  /**
   * Many appends to one store, for many users, in one transaction: what a
   * busy writer (the sm's message archive) batches instead of one round
   * trip per item. Each item is an `archive.append` of its own (same quota,
   * same idempotence by id, in the given order per user); one item refused
   * or for an unknown account leaves the others alone, and its entry in the
   * answer's `appended` says so.
   */
  z.strictObject({
    kind: z.literal("archive.appendMany"), store: storeNameSchema,
    items: z.array(z.strictObject({
      user: bareJid, id: itemId.optional(), when: time.optional(), with: z.string().min(1).max(3071).optional(), value: z.string(),
    })).min(1).max(MAX_APPEND_ITEMS),
    quota: archiveQuotaSchema.optional(),
  }),
  /** Exactly one of: up to and including an id, some ids, older than a time, or everything. */
  z.strictObject({
    kind: z.literal("archive.delete"), ...scope,
    upTo: itemId.optional(), ids: z.array(itemId).min(1).max(MAX_PAGE_ITEMS).optional(),
    before: time.optional(), all: z.literal(true).optional(),
  }).refine((d) => [d.upTo, d.ids, d.before, d.all].filter((x) => x !== undefined).length === 1, {
    message: "archive.delete takes exactly one of upTo, ids, before, all",
  }),
  /** Everything of the user in `store`, keyed and archive; without `store`, in every store. */
  z.strictObject({ kind: z.literal("clear"), user: bareJid, store: storeNameSchema.optional() }),
]);

const archiveItem = z.strictObject({ id: itemId, when: z.string(), with: z.string().nullable(), value: z.string() });

// Strict objects: exactly one of these shapes matches any answer.
export const storeReadResultSchema = z.union([
  z.strictObject({ value: z.string().nullable() }),
  z.strictObject({ items: z.array(z.strictObject({ key: z.string(), value: z.string() })), complete: z.boolean() }),
  z.strictObject({ items: z.array(archiveItem), complete: z.boolean() }),
  z.strictObject({ count, bytes: count }),
]);

export const quotaLimitSchema = z.enum(["maxKeys", "maxBytes", "maxValueBytes", "maxItems", "maxItemBytes"]);

/** One item of an `archive.appendMany`: stored (or there already), refused by the quota, or for an account that does not exist. */
export const appendedItemSchema = z.union([
  z.strictObject({ id: itemId, when: z.string(), duplicate: z.boolean(), dropped: count.optional() }),
  z.strictObject({ refused: quotaLimitSchema }),
  z.strictObject({ unknownAccount: z.literal(true) }),
]);

export const storeWriteResultSchema = z.discriminatedUnion("ok", [
  z.strictObject({
    ok: z.literal(true),
    /** kv.set: keys deleted by null values; archive.delete and clear: items and keys deleted. */
    deleted: count.optional(),
    /** archive.append: the item's id (given or generated), time, whether it was there already, how many old ones were dropped for it. */
    id: itemId.optional(), when: z.string().optional(), duplicate: z.boolean().optional(), dropped: count.optional(),
    /** archive.appendMany: one entry per item, in order. */
    appended: z.array(appendedItemSchema).optional(),
  }),
  /** Refused by the quota: nothing was written. `limit` names the quota field that refused it. */
  z.strictObject({ ok: z.literal(false), reason: z.literal("quota"), limit: quotaLimitSchema }),
]);

export type StoreRead = z.input<typeof storeReadSchema>;
export type StoreReadKind = StoreRead["kind"];
export type StoreWrite = z.input<typeof storeWriteSchema>;
export type StoreReadResult = z.output<typeof storeReadResultSchema>;
export type StoreWriteResult = z.output<typeof storeWriteResultSchema>;
export type KeyedQuota = z.input<typeof keyedQuotaSchema>;
export type ArchiveQuota = z.input<typeof archiveQuotaSchema>;
export type QuotaLimit = z.output<typeof quotaLimitSchema>;
export type AppendedItem = z.output<typeof appendedItemSchema>;
export interface ArchiveItem { id: string; when: string; with: string | null; value: string }
