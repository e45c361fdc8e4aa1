/**
 * Keyed stores and archives over a Storage (xdb through the router, or a
 * database in tests): the generic store operations `store.read` and
 * `store.write` (docs/storage.md) as two small classes, for any farm
 * process that keeps data of its own (the muc's rooms, the upload
 * service's slots).
 *
 * The sm's modules get the same classes through `api.openStore` and
 * `api.openArchive` (packages/sm/src/module-store.ts re-exports them).
 *
 * The quota a store is opened with travels with every write and is
 * enforced by the storage atomically; a refused write answers
 * `{ ok: false, reason: "quota", limit }` and stores nothing.
 */
import { storeNameSchema } from "@jabberfarm/envelope";
import type {
  AppendedItem, ArchiveItem, ArchiveQuota, KeyedQuota, QuotaLimit, Storage, StoreReadResult, StoreWrite, StoreWriteResult,
} from "./storage.js";

export type { AppendedItem, ArchiveItem, ArchiveQuota, KeyedQuota, QuotaLimit };

/** A write the quota refused: nothing was stored. `limit` names the quota field. */
export interface QuotaRefusal {
  ok: false;
  reason: "quota";
  limit: QuotaLimit;
}

export type StoreOutcome = { ok: true; deleted: number } | QuotaRefusal;
export type AppendOutcome = { ok: true; id: string; when: string; duplicate: boolean; dropped: number } | QuotaRefusal;

export interface Page<T> {
  items: T[];
  /** False when the store holds more past this page (by count or by bytes). */
  complete: boolean;
}

/** Paging of a read: at most `limit` items and (past the first) `maxBytes` bytes of values. */
export interface PageSize {
  limit?: number;
  maxBytes?: number;
}

export interface ArchiveQuery extends PageSize {
  with?: string;
  /** ISO times, inclusive. */
  start?: string;
  end?: string;
  /** Item ids to page from (exclusive). */
  after?: string;
  before?: string;
  ids?: string[];
  /** Newest first. */
  reverse?: boolean;
}

/** What an archive delete takes: exactly one of these. */
export type ArchiveDeletion = { upTo: string } | { ids: string[] } | { before: string } | { all: true };

function refusal(r: StoreWriteResult): QuotaRefusal | undefined {
  return r.ok ? undefined : { ok: false, reason: "quota", limit: r.limit };
}

function listOf<T>(r: StoreReadResult): Page<T> {
  if (!("items" in r)) throw new Error("storage answered a list read with something else");
  return r as unknown as Page<T>;
}

/** A keyed store: per user, key → text. */
export class KeyedStore {
  constructor(private readonly storage: Storage, readonly name: string, readonly quota?: KeyedQuota) {}

  async get(user: string, key: string): Promise<string | null> {
    const r = await this.storage.storeRead({ kind: "kv.get", user, store: this.name, key });
    if (!("value" in r)) throw new Error("storage answered kv.get with something else");
    return r.value;
  }

  /** Sets a key, or deletes it with null. */
  set(user: string, key: string, value: string | null): Promise<StoreOutcome> {
    return this.setMany(user, [{ key, value }]);
  }

  /** Several keys in one write: all of them, or (refused by the quota) none. */
  async setMany(user: string, entries: Array<{ key: string; value: string | null }>): Promise<StoreOutcome> {
    const write: StoreWrite = { kind: "kv.set", user, store: this.name, entries };
    if (this.quota) write.quota = this.quota;
    const r = await this.storage.storeWrite(write);
    return refusal(r) ?? { ok: true, deleted: r.ok ? r.deleted ?? 0 : 0 };
  }

  /** One page of keys in code point order, after `after`. */
  async list(user: string, page: PageSize & { after?: string } = {}): Promise<Page<{ key: string; value: string }>> {
    return listOf(await this.storage.storeRead({ kind: "kv.list", user, store: this.name, ...page }));
  }

  /** Every entry, page by page (each page one storage answer). */
  async *entries(user: string, page: PageSize = {}): AsyncGenerator<{ key: string; value: string }> {
    let after: string | undefined;
    for (;;) {
      const p = await this.list(user, { ...page, ...(after === undefined ? {} : { after }) });
      yield* p.items;
      if (p.complete || p.items.length === 0) return;
      after = p.items[p.items.length - 1]!.key;
    }
  }

  /** Deletes everything of the user in this store (both shapes under this name); how many entries went. */
  async deleteAll(user: string): Promise<number> {
    const r = await this.storage.storeWrite({ kind: "clear", user, store: this.name });
    return r.ok ? r.deleted ?? 0 : 0;
  }
}

/** An archive: per user, items in append order. */
export class ArchiveStore {
  constructor(private readonly storage: Storage, readonly name: string, readonly quota?: ArchiveQuota) {}

  /**
   * Appends an item. With an `id` already there it changes nothing and
   * answers the stored item (`duplicate`): what is delivered at least once
   * is stored once.
   */
  async append(user: string, value: string, opts: { id?: string; with?: string; when?: string } = {}): Promise<AppendOutcome> {
    const write: StoreWrite = { kind: "archive.append", user, store: this.name, value, ...opts };
    if (this.quota) write.quota = this.quota;
    const r = await this.storage.storeWrite(write);
    if (!r.ok) return refusal(r)!;
    return { ok: true, id: r.id!, when: r.when!, duplicate: r.duplicate ?? false, dropped: r.dropped ?? 0 };
  }

  /**
   * Many appends in one write, for many users (`archive.appendMany`): one
   * entry per item, in order, each what its own `append` would have been
   * (an unknown account there answers `unknownAccount` instead of throwing).
   */
  async appendMany(items: Array<{ user: string; value: string; id?: string; with?: string; when?: string }>, quota: ArchiveQuota | undefined = this.quota): Promise<AppendedItem[]> {
    const write: StoreWrite = { kind: "archive.appendMany", store: this.name, items };
    if (quota) write.quota = quota;
    const r = await this.storage.storeWrite(write);
    if (!r.ok || r.appended === undefined || r.appended.length !== items.length) throw new Error("storage answered archive.appendMany with something else");
    return r.appended;
  }

  /** One page of items, oldest first (newest first with `reverse`). */
  async query(user: string, q: ArchiveQuery = {}): Promise<Page<ArchiveItem>> {
    return listOf(await this.storage.storeRead({ kind: "archive.query", user, store: this.name, ...q }));
  }

  async count(user: string, withJid?: string): Promise<{ count: number; bytes: number }> {
    const r = await this.storage.storeRead({ kind: "archive.count", user, store: this.name, ...(withJid === undefined ? {} : { with: withJid }) });
    if (!("count" in r)) throw new Error("storage answered archive.count with something else");
    return r;
  }

  /** Deletes items; how many went. */
  async delete(user: string, which: ArchiveDeletion): Promise<number> {
    const r = await this.storage.storeWrite({ kind: "archive.delete", user, store: this.name, ...which });
    return r.ok ? r.deleted ?? 0 : 0;
  }
}

/** Opens stores on one Storage (xdb through the router, or a database in tests). */
export class Stores {
  constructor(private readonly storage: Storage) {}

  openStore(name: string, quota?: KeyedQuota): KeyedStore {
    return new KeyedStore(this.storage, checkedName(name), quota);
  }

  openArchive(name: string, quota?: ArchiveQuota): ArchiveStore {
    return new ArchiveStore(this.storage, checkedName(name), quota);
  }
}

/** A bad name fails when the module loads, not at its first write. */
function checkedName(name: string): string {
  const r = storeNameSchema.safeParse(name);
  if (!r.success) throw new Error(`store name '${name}': ${r.error.issues.map((i) => i.message).join("; ")}`);
  return name;
}
