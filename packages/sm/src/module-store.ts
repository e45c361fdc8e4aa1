/**
 * A module's own storage, as prosody's `module:open_store` gives it
 * (core/storagemanager.lua): `api.openStore(name)` for a keyed store (user,
 * key → text) and `api.openArchive(name)` for an archive (append-mostly
 * items with ids, times and a `with` JID). Both go through the same two
 * storage operations (`store.read`, `store.write`), so a module that needs
 * storage adds no operation, migration or table (docs/storage.md).
 *
 * The classes are xdb's (`packages/xdb/src/stores.ts`), shared with the
 * other farm processes that keep data of their own (muc, upload); a write
 * over a quota answers `{ ok: false, reason: "quota", limit }` and stores
 * nothing, and the module turns that into the stanza error its protocol
 * asks for.
 */
import { UnknownAccountError, XdbRequestError } from "@jabberfarm/xdb";

/** Storage said the account is gone, whether it is in process or behind xdb (which maps it to item-not-found). */
export function isUnknownAccount(err: unknown): boolean {
  return err instanceof UnknownAccountError || (err instanceof XdbRequestError && err.condition === "item-not-found");
}

export {
  ArchiveStore, KeyedStore, Stores as ModuleStores,
  type AppendOutcome, type ArchiveDeletion, type ArchiveQuery, type Page, type PageSize, type QuotaRefusal, type StoreOutcome,
} from "@jabberfarm/xdb";
export type { AppendedItem, ArchiveItem, ArchiveQuota, KeyedQuota, QuotaLimit } from "@jabberfarm/xdb";
