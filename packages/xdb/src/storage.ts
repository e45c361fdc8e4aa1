// The contract between the xdb process (or anything else needing persistence)
// and a storage backend. Every backend implements exactly this; nothing above
// it may depend on which database sits underneath.
import type { XdbMethods } from "@jabberfarm/envelope";

export interface ScramCredential {
  mechanism: "SCRAM-SHA-1" | "SCRAM-SHA-256";
  /** base64 */
  salt: string;
  iterations: number;
  /** base64 */
  storedKey: string;
  /** base64 */
  serverKey: string;
}

export type Subscription = "none" | "to" | "from" | "both";

export interface RosterItem {
  jid: string;
  /** Omitted when the item has no name. */
  name?: string;
  subscription: Subscription;
  /** Omitted unless an outbound subscription request is pending. */
  ask?: "subscribe";
  /** Omitted unless the contact is pre-approved (RFC 6121 §3.4). */
  approved?: boolean;
  groups: string[];
}

/** What a roster set did: the new ver, or refused because the roster was full. */
export type RosterWrite = { ok: true; ver: string } | { ok: false; reason: "quota"; limit: "maxItems" };

export interface Roster {
  ver: string;
  items: RosterItem[];
}

export type { AppendedItem, ArchiveItem, ArchiveQuota, KeyedQuota, QuotaLimit, StoreRead, StoreReadResult, StoreWrite, StoreWriteResult } from "@jabberfarm/envelope";

/**
 * The operations every backend implements, one per xdb operation: the table
 * in packages/envelope (src/xdb.ts) lists them with their parameters and
 * results, so that the client over the router, the xdb service and this
 * interface cannot drift apart.
 *
 * `user` is always a normalised bare JID "local@domain"; normalising is the
 * caller's job, the storage compares strings exactly.
 *
 * Reads about an unknown user answer as if the user had no data (null, empty
 * list, roster ver "0"). Writes that would attach data to an unknown user
 * reject with UnknownAccountError rather than silently doing nothing.
 *
 * - createAccount: false if the account already exists.
 * - deleteAccount: removes all of the user's data (every store too) in one
 *   transaction; false if there was no such account.
 * - getCredentials: null if there is no such account.
 * - setCredentials: replaces all credentials; false if there is no such account.
 * - getRoster: items sorted by jid; ver is a per-user counter bumped by every
 *   roster change.
 * - setRosterItem: insert or replace; the new roster ver, or a refusal when
 *   the item is new and the roster already holds `quota.maxItems` items.
 * - removeRosterItem: the new roster ver, or null (and no ver change) if the
 *   item was not there.
 * - storeRead / storeWrite: the modules' keyed stores and archives
 *   (docs/storage.md).
 */
export interface Storage extends XdbMethods {
  close(): Promise<void>;
}
