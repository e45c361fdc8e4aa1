// The contract between the xdb process (or anything else needing persistence)
// and a storage backend. Every backend implements exactly this; nothing above
// it may depend on which database sits underneath.

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

export interface Roster {
  ver: string;
  items: RosterItem[];
}

export interface OfflineMessage {
  id: string;
  stanza: string;
  storedAt: Date;
}

export interface SubscriptionRequest {
  from: string;
  stanza: string;
}

/**
 * `user` is always a normalised bare JID "local@domain"; normalising is the
 * caller's job, the storage compares strings exactly.
 *
 * Reads about an unknown user answer as if the user had no data (null, empty
 * list, roster ver "0"). Writes that would attach data to an unknown user
 * reject with UnknownAccountError rather than silently doing nothing.
 */
export interface Storage {
  /** false if the account already exists. */
  createAccount(user: string, credentials: ScramCredential[]): Promise<boolean>;
  /** Removes all of the user's data in one transaction; false if there was no such account. */
  deleteAccount(user: string): Promise<boolean>;
  accountExists(user: string): Promise<boolean>;
  /** null if there is no such account. */
  getCredentials(user: string): Promise<ScramCredential[] | null>;
  /** Replaces all credentials; false if there is no such account. */
  setCredentials(user: string, credentials: ScramCredential[]): Promise<boolean>;
  /** Bare JIDs of the domain's accounts, sorted. */
  listAccounts(domain: string): Promise<string[]>;

  /** Items sorted by jid; ver is a per-user counter bumped by every roster change. */
  getRoster(user: string): Promise<Roster>;
  getRosterItem(user: string, jid: string): Promise<RosterItem | null>;
  /** Insert or replace; returns the new roster ver. */
  setRosterItem(user: string, item: RosterItem): Promise<string>;
  /** Returns the new roster ver, or null (and no ver change) if the item was not there. */
  removeRosterItem(user: string, jid: string): Promise<string | null>;

  /** Replaces an earlier request from the same contact (which then counts as the newest). */
  addSubscriptionRequest(user: string, from: string, stanza: string): Promise<void>;
  removeSubscriptionRequest(user: string, from: string): Promise<boolean>;
  /** Oldest first. */
  listSubscriptionRequests(user: string): Promise<SubscriptionRequest[]>;

  /** false (nothing stored) when the user already has `limit` messages. */
  storeOffline(user: string, stanza: string, limit: number): Promise<boolean>;
  /** Arrival order; ids are increasing decimal strings. */
  listOffline(user: string): Promise<OfflineMessage[]>;
  /** Deletes the user's messages with id <= upToId (numerically); returns how many. */
  ackOffline(user: string, upToId: string): Promise<number>;
  countOffline(user: string): Promise<number>;

  getVcard(user: string): Promise<string | null>;
  setVcard(user: string, xml: string): Promise<void>;
  /** key is "localname namespace" of the stored element. */
  getPrivate(user: string, key: string): Promise<string | null>;
  setPrivate(user: string, key: string, xml: string): Promise<void>;

  close(): Promise<void>;
}
