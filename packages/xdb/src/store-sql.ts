// The SQL of the modules' stores (docs/storage.md): keyed stores in
// `kv_store`, archives in `archive_store` (migration 002).
//
// Quotas are checked and the write is made under the user's account row
// lock, the same lock every other per-user write in SqlStorage takes first,
// so concurrent writers (several xdb processes included) queue and can never
// pass a quota together. Each statement after the lock runs in a fresh
// snapshot (READ COMMITTED), so it sees what the previous holder wrote.
//
// Pages are cut by count and by bytes in SQL: the values past the page are
// never read out of the table.
import { randomUUID } from "node:crypto";
import {
  storeReadSchema, storeWriteSchema, type QuotaLimit, type StoreRead, type StoreReadResult, type StoreWrite, type StoreWriteResult,
} from "@jabberfarm/envelope";
import type { Db } from "./db.js";
import { archiveAppendMany } from "./store-append-many.js";
import { InvalidArgumentError, ItemNotFoundError, UnknownAccountError } from "./errors.js";
import type { PlainSetBatcher } from "./plain-sets.js";

type Read = ReturnType<typeof storeReadSchema.parse>;
export type Write = ReturnType<typeof storeWriteSchema.parse>;
type ArchiveQuery = Extract<Read, { kind: "archive.query" }>;

export function parsed<T>(schema: { safeParse(v: unknown): { success: true; data: T } | { success: false; error: { issues: Array<{ path: PropertyKey[]; message: string }> } } }, input: unknown): T {
  const r = schema.safeParse(input);
  if (!r.success) throw new InvalidArgumentError(r.error.issues.map((i) => `${i.path.join(".") || "params"}: ${i.message}`).join("; "));
  noNul(r.data, "params");
  return r.data;
}

// PostgreSQL text cannot hold NUL (and XML cannot either).
function noNul(v: unknown, where: string): void {
  if (typeof v === "string") {
    if (v.includes("\u0000")) throw new InvalidArgumentError(`${where} must not contain NUL`);
  } else if (Array.isArray(v)) {
    v.forEach((x, i) => noNul(x, `${where}[${i}]`));
  } else if (typeof v === "object" && v !== null) {
    for (const [k, x] of Object.entries(v)) noNul(x, `${where}.${k}`);
  }
}

const bytes = (s: string): number => Buffer.byteLength(s);

/** Locks the account row for this transaction (see sql-storage.ts); throws for an unknown account. */
export async function lockAccount(tx: Db, user: string): Promise<void> {
  const rows = await tx.query("SELECT 1 FROM accounts WHERE username = $1 FOR NO KEY UPDATE", [user]);
  if (rows.length === 0) throw new UnknownAccountError(user);
}

export function refused(limit: QuotaLimit): StoreWriteResult {
  return { ok: false, reason: "quota", limit };
}

/** A page of rows: those with a value, and whether nothing was cut off after them (see `pageSql`). */
function cut<R extends { value: string | null }>(rows: R[]): { page: Array<R & { value: string }>; complete: boolean } {
  const page = rows.filter((r): r is R & { value: string } => r.value !== null);
  return { page, complete: page.length === rows.length };
}

/**
 * Wraps a query of candidate rows (`inner`, which must select `columns`, `value` and
 * number its rows with `row_number() OVER w` as `rn` and a running byte sum
 * `sum(octet_length(value)) OVER w` as `running`, limited to `limit + 1`)
 * into a page: the first row always, then rows while the bytes stay within
 * budget, at most `limit`. The row after the page (the one whose
 * predecessor is in it) comes back too, with a null value, when something
 * was left out: the caller's "not complete".
 */
function pageSql(inner: string, columns: string, limitParam: string, bytesParam: string): string {
  return `SELECT ${columns}, CASE WHEN rn <= ${limitParam} AND (rn = 1 OR running <= ${bytesParam}) THEN value END AS value
          FROM (${inner}) candidates
          WHERE rn <= 2 OR running - octet_length(value) <= ${bytesParam}
          ORDER BY rn`;
}

/** Validates read parameters (InvalidArgumentError) and fills in their defaults. */
export function checkedRead(input: StoreRead): Read {
  return parsed<Read>(storeReadSchema, input);
}

export async function storeRead(db: Db, input: StoreRead): Promise<StoreReadResult> {
  const p = checkedRead(input);
  switch (p.kind) {
    case "kv.get": {
      const rows = await db.query<{ value: string }>("SELECT value FROM kv_store WHERE username = $1 AND store = $2 AND key = $3", [p.user, p.store, p.key]);
      return { value: rows[0]?.value ?? null };
    }
    case "kv.list": {
      const after = p.after === undefined ? "" : "AND key > $5";
      const inner = `SELECT key, value, row_number() OVER w AS rn, sum(octet_length(value)) OVER w AS running
                     FROM kv_store WHERE username = $1 AND store = $2 ${after}
                     WINDOW w AS (ORDER BY key) ORDER BY key LIMIT $3::int + 1`;
      const rows = await db.query<{ key: string; value: string | null }>(
        pageSql(inner, "key", "$3", "$4"), [p.user, p.store, p.limit, p.maxBytes, ...(p.after === undefined ? [] : [p.after])],
      );
      const { page, complete } = cut(rows);
      return { items: page.map((r) => ({ key: r.key, value: r.value })), complete };
    }
    case "archive.query":
      return archiveQuery(db, p);
    case "archive.count": {
      const rows = await db.query<{ count: number; bytes: string }>(
        `SELECT count(*)::int AS count, coalesce(sum(octet_length(value)), 0)::text AS bytes
         FROM archive_store WHERE username = $1 AND store = $2 ${p.with === undefined ? "" : "AND with_jid = $3"}`,
        [p.user, p.store, ...(p.with === undefined ? [] : [p.with])],
      );
      return { count: rows[0]?.count ?? 0, bytes: Number(rows[0]?.bytes ?? 0) };
    }
  }
}

async function archiveQuery(db: Db, p: ArchiveQuery): Promise<StoreReadResult> {
  const args: unknown[] = [p.user, p.store, p.limit, p.maxBytes];
  const where: string[] = [];
  const arg = (v: unknown): string => `$${args.push(v)}`;
  // Paging from an item: it must be there (XEP-0059: item-not-found otherwise).
  const anchors = [p.after, p.before].filter((x): x is string => x !== undefined);
  if (anchors.length > 0) {
    const found = await db.query<{ id: string; seq: string }>(
      "SELECT id, seq::text AS seq FROM archive_store WHERE username = $1 AND store = $2 AND id = ANY($3::text[])", [p.user, p.store, anchors],
    );
    const seqOf = (id: string): string => {
      const row = found.find((r) => r.id === id);
      if (!row) throw new ItemNotFoundError(`no item '${id}' in ${p.store}`);
      return row.seq;
    };
    if (p.after !== undefined) where.push(`seq > ${arg(seqOf(p.after))}::bigint`);
    if (p.before !== undefined) where.push(`seq < ${arg(seqOf(p.before))}::bigint`);
  }
  if (p.with !== undefined) where.push(`with_jid = ${arg(p.with)}`);
  if (p.start !== undefined) where.push(`at >= ${arg(p.start)}::timestamptz`);
  if (p.end !== undefined) where.push(`at <= ${arg(p.end)}::timestamptz`);
  if (p.ids !== undefined) where.push(`id = ANY(${arg(p.ids)}::text[])`);
  const order = p.reverse ? "seq DESC" : "seq";
  const inner = `SELECT id, at, with_jid, value, row_number() OVER w AS rn, sum(octet_length(value)) OVER w AS running
                 FROM archive_store WHERE username = $1 AND store = $2 ${where.map((w) => `AND ${w}`).join(" ")}
                 WINDOW w AS (ORDER BY ${order}) ORDER BY ${order} LIMIT $3::int + 1`;
  const rows = await db.query<{ id: string; at: Date; with_jid: string | null; value: string | null }>(pageSql(inner, "id, at, with_jid", "$3", "$4"), args);
  const { page, complete } = cut(rows);
  return { items: page.map((r) => ({ id: r.id, when: new Date(r.at).toISOString(), with: r.with_jid, value: r.value })), complete };
}

/** `plainSets`: where plain sets go to be written together (PGlite, plain-sets.ts); else one statement each. */
export async function storeWrite(db: Db, input: StoreWrite, plainSets?: PlainSetBatcher): Promise<StoreWriteResult> {
  const p = parsed<Write>(storeWriteSchema, input);
  switch (p.kind) {
    case "kv.set":
      if (isPlainSet(p)) return kvSetOne(db, p, plainSets);
      return db.transaction((tx) => kvSet(tx, p));
    case "archive.append":
      return db.transaction((tx) => archiveAppend(tx, p));
    case "archive.appendMany":
      return archiveAppendMany(db, p);
    case "archive.delete": {
      let which: string;
      let arg: unknown;
      if (p.upTo !== undefined) {
        which = "AND seq <= (SELECT seq FROM archive_store WHERE username = $1 AND store = $2 AND id = $3)";
        arg = p.upTo;
      } else if (p.ids !== undefined) {
        which = "AND id = ANY($3::text[])";
        arg = p.ids;
      } else if (p.before !== undefined) {
        which = "AND at < $3::timestamptz";
        arg = p.before;
      } else {
        which = "";
      }
      const rows = await db.query<{ n: number }>(
        `WITH gone AS (DELETE FROM archive_store WHERE username = $1 AND store = $2 ${which} RETURNING 1) SELECT count(*)::int AS n FROM gone`,
        [p.user, p.store, ...(arg === undefined ? [] : [arg])],
      );
      return { ok: true, deleted: rows[0]?.n ?? 0 };
    }
    case "clear": {
      const scope = p.store === undefined ? "" : "AND store = $2";
      const args = [p.user, ...(p.store === undefined ? [] : [p.store])];
      const deleted = await db.transaction(async (tx) => {
        let n = 0;
        for (const table of ["kv_store", "archive_store"]) {
          const [row] = await tx.query<{ n: number }>(
            `WITH gone AS (DELETE FROM ${table} WHERE username = $1 ${scope} RETURNING 1) SELECT count(*)::int AS n FROM gone`, args,
          );
          n += row?.n ?? 0;
        }
        return n;
      });
      return { ok: true, deleted };
    }
  }
}

type KvSet = Extract<Write, { kind: "kv.set" }>;

/**
 * One key set to a value, with no count or size quota for the store: nothing
 * to read before writing, so no transaction either. That is what most module
 * writes are (last activity at every logout, preferences, a PEP node's
 * configuration), and one statement instead of four (BEGIN, lock, upsert,
 * COMMIT) is a third of the CPU on PGlite (docs/performance.md, "What a
 * login costs").
 */
function isPlainSet(p: KvSet): boolean {
  return p.entries.length === 1 && p.entries[0]!.value !== null && p.quota?.maxKeys === undefined && p.quota?.maxBytes === undefined;
}

async function kvSetOne(db: Db, p: KvSet, plainSets: PlainSetBatcher | undefined): Promise<StoreWriteResult> {
  const { key, value } = p.entries[0]!;
  const max = p.quota?.maxValueBytes;
  if (max !== undefined && bytes(value!) > max) return refused("maxValueBytes");
  await (plainSets !== undefined ? plainSets.set(p.user, p.store, key, value!) : upsertKv(db, p.user, p.store, key, value!));
  return { ok: true, deleted: 0 };
}

/** One key-value row written, in one statement; UnknownAccountError when the account does not exist. */
export async function upsertKv(db: Db, user: string, store: string, key: string, value: string): Promise<void> {
  try {
    // The foreign key's check takes the account row's key-share lock, which
    // is what orders this write against the account's deletion (lockAccount
    // does the same in a transaction).
    await db.query(
      `INSERT INTO kv_store (username, store, key, value) VALUES ($1, $2, $3, $4)
       ON CONFLICT (username, store, key) DO UPDATE SET value = excluded.value, updated_at = now()`,
      [user, store, key, value],
    );
  } catch (err) {
    if ((err as { code?: unknown }).code === "23503") throw new UnknownAccountError(user);
    throw err;
  }
}

async function kvSet(tx: Db, p: KvSet): Promise<StoreWriteResult> {
  await lockAccount(tx, p.user);
  // The last entry for a key wins, as if they were applied in order.
  const entries = new Map(p.entries.map((e) => [e.key, e.value] as const));
  const keys = [...entries.keys()];
  const q = p.quota;
  if (q !== undefined) {
    for (const value of entries.values()) {
      if (value !== null && q.maxValueBytes !== undefined && bytes(value) > q.maxValueBytes) return refused("maxValueBytes");
    }
    if (q.maxKeys !== undefined || q.maxBytes !== undefined) {
      const [now] = await tx.query<{ n: number; bytes: string }>(
        "SELECT count(*)::int AS n, coalesce(sum(octet_length(key) + octet_length(value)), 0)::text AS bytes FROM kv_store WHERE username = $1 AND store = $2",
        [p.user, p.store],
      );
      const old = await tx.query<{ key: string; size: number }>(
        "SELECT key, octet_length(key) + octet_length(value) AS size FROM kv_store WHERE username = $1 AND store = $2 AND key = ANY($3::text[])",
        [p.user, p.store, keys],
      );
      const before = { n: now?.n ?? 0, bytes: Number(now?.bytes ?? 0) };
      const after = { ...before };
      const oldSize = new Map(old.map((r) => [r.key, r.size] as const));
      for (const [key, value] of entries) {
        const was = oldSize.get(key);
        if (was !== undefined) {
          after.n--;
          after.bytes -= was;
        }
        if (value !== null) {
          after.n++;
          after.bytes += bytes(key) + bytes(value);
        }
      }
      // Only growth is refused: a user above a lowered quota may still shrink.
      if (q.maxKeys !== undefined && after.n > q.maxKeys && after.n > before.n) return refused("maxKeys");
      if (q.maxBytes !== undefined && after.bytes > q.maxBytes && after.bytes > before.bytes) return refused("maxBytes");
    }
  }
  const gone = keys.filter((k) => entries.get(k) === null);
  let deleted = 0;
  if (gone.length > 0) {
    const [row] = await tx.query<{ n: number }>(
      "WITH gone AS (DELETE FROM kv_store WHERE username = $1 AND store = $2 AND key = ANY($3::text[]) RETURNING 1) SELECT count(*)::int AS n FROM gone",
      [p.user, p.store, gone],
    );
    deleted = row?.n ?? 0;
  }
  const set = keys.filter((k) => entries.get(k) !== null);
  if (set.length > 0) {
    await tx.query(
      `INSERT INTO kv_store (username, store, key, value)
       SELECT $1, $2, k, v FROM unnest($3::text[], $4::text[]) AS e(k, v)
       ON CONFLICT (username, store, key) DO UPDATE SET value = excluded.value, updated_at = now()`,
      [p.user, p.store, set, set.map((k) => entries.get(k)!)],
    );
  }
  return { ok: true, deleted };
}

/**
 * Keeps the newest items of a user's archive that stay within `keepItems`
 * and `keepBytes` and deletes the rest (a suffix of the oldest); returns how
 * many went.
 */
export async function dropOldest(tx: Db, user: string, store: string, keepItems: number, keepBytes: number): Promise<number> {
  const [row] = await tx.query<{ n: number }>(
    `WITH keep AS (
       SELECT seq, row_number() OVER w AS rn, sum(octet_length(value)) OVER w AS running
       FROM archive_store WHERE username = $1 AND store = $2 WINDOW w AS (ORDER BY seq DESC)
     ), gone AS (
       DELETE FROM archive_store a USING keep k
       WHERE a.username = $1 AND a.store = $2 AND a.seq = k.seq AND (k.rn > $3::bigint OR k.running > $4::bigint)
       RETURNING 1
     ) SELECT count(*)::int AS n FROM gone`,
    [user, store, keepItems, keepBytes],
  );
  return row?.n ?? 0;
}

async function archiveAppend(tx: Db, p: Extract<Write, { kind: "archive.append" }>): Promise<StoreWriteResult> {
  // Held until commit, so items commit in seq order (see migration 002).
  await lockAccount(tx, p.user);
  if (p.id !== undefined) {
    const [there] = await tx.query<{ at: Date }>("SELECT at FROM archive_store WHERE username = $1 AND store = $2 AND id = $3", [p.user, p.store, p.id]);
    if (there) return { ok: true, id: p.id, when: new Date(there.at).toISOString(), duplicate: true };
  }
  const size = bytes(p.value);
  const q = p.quota;
  let dropped = 0;
  if (q !== undefined) {
    if (q.maxItemBytes !== undefined && size > q.maxItemBytes) return refused("maxItemBytes");
    if (q.maxItems !== undefined || q.maxBytes !== undefined) {
      const [now] = await tx.query<{ n: number; bytes: string }>(
        "SELECT count(*)::int AS n, coalesce(sum(octet_length(value)), 0)::text AS bytes FROM archive_store WHERE username = $1 AND store = $2",
        [p.user, p.store],
      );
      const n = now?.n ?? 0;
      const total = Number(now?.bytes ?? 0);
      const tooMany = q.maxItems !== undefined && n + 1 > q.maxItems;
      const tooBig = q.maxBytes !== undefined && total + size > q.maxBytes;
      if (q.onFull === "refuse" || q.maxItems === 0 || (q.maxBytes !== undefined && size > q.maxBytes)) {
        if (tooMany) return refused("maxItems");
        if (tooBig) return refused("maxBytes");
      } else if (tooMany || tooBig) {
        // Keep the newest items that leave room for this one; drop the rest (a suffix of the oldest).
        dropped = await dropOldest(tx, p.user, p.store, q.maxItems === undefined ? n : q.maxItems - 1, q.maxBytes === undefined ? total : q.maxBytes - size);
      }
    }
  }
  const id = p.id ?? randomUUID();
  const [row] = await tx.query<{ at: Date }>(
    `INSERT INTO archive_store (username, store, id, at, with_jid, value)
     VALUES ($1, $2, $3, coalesce($4::timestamptz, now()), $5, $6) RETURNING at`,
    [p.user, p.store, id, p.when ?? null, p.with ?? null, p.value],
  );
  return { ok: true, id, when: new Date(row!.at).toISOString(), duplicate: false, ...(dropped > 0 ? { dropped } : {}) };
}
