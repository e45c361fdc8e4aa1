/**
 * Accounts: what an account is made of (credentials, roster items), and
 * whole accounts in bulk (docs/storage.md, "Accounts in bulk"): what
 * `jabberfarm import`, `export` and `adduser --from` move, many accounts per
 * request, so that 10,000 accounts are a few dozen transactions rather than
 * tens of thousands of round trips.
 *
 * An account record is the account with everything of it: credentials,
 * roster, and entries of the modules' stores, named by store (the storage
 * knows no module; the CLI knows that the vCard lives in "vcard", etc.).
 */
import { z } from "zod";
import { storeNameSchema } from "./xdb-store.js";

export const bareJidSchema = z.string().min(3).max(3071).regex(/^[^@/]+@[^@/]+$/, "a bare JID local@domain");
const jid = z.string().min(1).max(3071);
const time = z.iso.datetime({ offset: true });

export const scramCredentialSchema = z.object({
  mechanism: z.enum(["SCRAM-SHA-1", "SCRAM-SHA-256"]),
  salt: z.string().min(1),
  iterations: z.number().int().min(4096),
  storedKey: z.string().min(1),
  serverKey: z.string().min(1),
});

export const rosterItemSchema = z.object({
  jid,
  name: z.string().max(1024).optional(),
  subscription: z.enum(["none", "to", "from", "both"]),
  ask: z.literal("subscribe").optional(),
  approved: z.boolean().optional(),
  groups: z.array(z.string().max(1024)).max(100),
});

/** Most accounts one import or export request carries; the bytes of a link (1 MiB) usually stop a batch first. */
export const MAX_ACCOUNTS_PER_REQUEST = 1000;

export const accountRecordSchema = z.strictObject({
  user: bareJidSchema,
  credentials: z.array(scramCredentialSchema).min(1),
  roster: z.array(rosterItemSchema).default([]),
  /** Entries of keyed stores: the vCard, private XML, pending subscription requests... */
  kv: z.array(z.strictObject({ store: storeNameSchema, key: z.string().max(1024), value: z.string() })).default([]),
  /** Items of archives, oldest first: offline messages... */
  archive: z.array(z.strictObject({
    store: storeNameSchema, id: z.string().min(1).max(256).optional(), when: time.optional(),
    with: jid.optional(), value: z.string(),
  })).default([]),
});
export type AccountRecord = z.input<typeof accountRecordSchema>;

export const accountsImportSchema = z.strictObject({ accounts: z.array(accountRecordSchema).min(1).max(MAX_ACCOUNTS_PER_REQUEST) });

/**
 * For each account, in order: "created" (with all its data, in the one
 * transaction of the request), or "exists": an account of that name was
 * there already and was left exactly as it was. A rerun of an interrupted
 * import is therefore safe: what was imported is skipped, the rest created.
 */
export const accountsImportResultSchema = z.array(z.enum(["created", "exists"]));

/** A page of whole accounts by domain then name, after the account `after`; `domain` restricts it to one domain. */
export const accountsExportSchema = z.strictObject({
  after: z.string().optional(),
  domain: z.string().min(1).optional(),
  limit: z.number().int().min(1).max(MAX_ACCOUNTS_PER_REQUEST).default(100),
  /** Bytes of values past which the page stops (it always holds one account). */
  maxBytes: z.number().int().min(1).max(512 * 1024).default(256 * 1024),
  /** The stores whose entries and items come with each account. */
  kvStores: z.array(storeNameSchema).default([]),
  archiveStores: z.array(storeNameSchema).default([]),
});
export type AccountsExport = z.input<typeof accountsExportSchema>;

export const accountsExportResultSchema = z.strictObject({
  accounts: z.array(z.strictObject({
    user: bareJidSchema,
    credentials: z.array(scramCredentialSchema),
    roster: z.array(rosterItemSchema),
    kv: accountRecordSchema.shape.kv.unwrap(),
    archive: accountRecordSchema.shape.archive.unwrap(),
  })),
  complete: z.boolean(),
});
