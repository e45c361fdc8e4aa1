// `archive.appendMany` (docs/storage.md): many appends, for many users, in
// one transaction and a handful of statements whatever their number. The
// message archive batches its writes into these, so that a busy sm costs
// the database one round trip per batch rather than one per message.
//
// Each item means what an `archive.append` of its own would: idempotent by
// id (an id already stored, or earlier in the same batch, is a duplicate
// and changes nothing), checked against the quota, in the given order per
// user. Unlike a single append, one refused item (or one for an unknown
// account) leaves the rest of the batch alone.
//
// Two ways to write a batch, by what it needs:
// - with a quota that counts a user's items or bytes, or where other writers
//   may run at once (PostgreSQL): in a transaction that locks the users'
//   account rows, reads which ids are stored, counts what the users hold,
//   then inserts;
// - without one (at most a limit on each item's size, the message archive's
//   usual batch), on a database whose transactions run one at a time
//   (PGlite, `Db.serial`): one INSERT that skips unknown accounts and
//   stored ids itself; only the items it skipped or refused are looked at
//   afterwards.
//   Each statement costs PGlite 0.2-0.5 ms of CPU before the rows it
//   writes, so a message archived alone in its batch (a quiet farm) costs
//   one statement instead of five: ~0.8 instead of ~1.8 ms
//   (bench/archive-append.mjs, docs/performance.md).
import { randomUUID } from "node:crypto";
import type { AppendedItem, QuotaLimit, StoreWriteResult } from "@jabberfarm/envelope";
import type { Db } from "./db.js";
import { dropOldest, type Write } from "./store-sql.js";

type AppendMany = Extract<Write, { kind: "archive.appendMany" }>;

const bytes = (s: string): number => Buffer.byteLength(s);
const keyOf = (user: string, id: string): string => `${user}\u0000${id}`;

interface Row {
  index: number;
  user: string;
  id: string;
  when: string | null;
  with: string | null;
  value: string;
}

export async function archiveAppendMany(db: Db, p: AppendMany): Promise<StoreWriteResult> {
  // A limit on each item's size alone (the message archive's) counts nothing.
  const counts = p.quota !== undefined && (p.quota.maxItems !== undefined || p.quota.maxBytes !== undefined);
  if (db.serial === true && !counts) return appendAlone(db, p, p.quota?.maxItemBytes);
  return db.transaction((tx) => appendLocked(tx, p));
}

/** The answers so far, and the rows to insert: repeats within the batch and, where known, unknown accounts and stored ids left out. */
interface Plan {
  appended: AppendedItem[];
  rows: Row[];
  /** Items repeating an id earlier in this batch: answered like the first once it is stored. */
  repeats: Array<{ index: number; first: number }>;
}

/**
 * `known`: the accounts that exist, or undefined when the insert finds out.
 * `stored`: ids already stored (by user and id), where read before.
 * `quotaFor`: the quota's verdict on one more item of a user, where there is one.
 */
function plan(
  p: AppendMany, known: ReadonlySet<string> | undefined, stored: ReadonlyMap<string, string>,
  quotaFor?: (user: string, size: number) => QuotaLimit | undefined,
): Plan {
  const appended: AppendedItem[] = new Array(p.items.length);
  const rows: Row[] = [];
  const repeats: Plan["repeats"] = [];
  const firstOf = new Map<string, number>();
  p.items.forEach((item, index) => {
    if (known !== undefined && !known.has(item.user)) {
      appended[index] = { unknownAccount: true };
      return;
    }
    if (item.id !== undefined) {
      const k = keyOf(item.user, item.id);
      const when = stored.get(k);
      if (when !== undefined) {
        appended[index] = { id: item.id, when, duplicate: true };
        return;
      }
      const first = firstOf.get(k);
      if (first !== undefined) {
        repeats.push({ index, first });
        return;
      }
      firstOf.set(k, index);
    }
    const refusal = quotaFor?.(item.user, bytes(item.value));
    if (refusal !== undefined) {
      appended[index] = { refused: refusal };
      if (item.id !== undefined) firstOf.delete(keyOf(item.user, item.id));
      return;
    }
    rows.push({ index, user: item.user, id: item.id ?? randomUUID(), when: item.when ?? null, with: item.with ?? null, value: item.value });
  });
  return { appended, rows, repeats };
}

/**
 * Inserts the rows in one statement; the ordinality keeps each user's items
 * in the given order (seq is drawn as rows come). `skip`: rows of unknown
 * accounts and ids already stored are left out instead of failing it.
 * Returns when each inserted row was stored, by user and id.
 */
async function insertRows(db: Db, store: string, rows: readonly Row[], skip: boolean): Promise<Map<string, string>> {
  if (rows.length === 0) return new Map();
  const inserted = await db.query<{ username: string; id: string; at: Date }>(
    `INSERT INTO archive_store (username, store, id, at, with_jid, value)
     SELECT u, $1, i, coalesce(w::timestamptz, now()), j, v
     FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[]) WITH ORDINALITY AS t(u, i, w, j, v, o)
     ${skip ? "JOIN accounts ON accounts.username = t.u" : ""}
     ORDER BY o
     ${skip ? "ON CONFLICT (username, store, id) DO NOTHING" : ""}
     RETURNING username, id, at`,
    [store, rows.map((r) => r.user), rows.map((r) => r.id), rows.map((r) => r.when), rows.map((r) => r.with), rows.map((r) => r.value)],
  );
  return new Map(inserted.map((r) => [keyOf(r.username, r.id), new Date(r.at).toISOString()] as const));
}

/** Answers the inserted rows, and the repeats like their first. */
function answer(plan: Plan, at: ReadonlyMap<string, string>): AppendedItem[] {
  const { appended, rows, repeats } = plan;
  for (const r of rows) {
    const when = at.get(keyOf(r.user, r.id));
    if (when !== undefined) appended[r.index] = { id: r.id, when, duplicate: false };
  }
  for (const { index, first } of repeats) {
    const a = appended[first]!;
    appended[index] = "id" in a ? { id: a.id, when: a.when, duplicate: true } : a;
  }
  return appended;
}

/**
 * Nothing counted, transactions one at a time: one INSERT, then a look at
 * what it skipped. An item over `maxItemBytes` is refused unless its id is
 * stored already (then it is a duplicate, as the locked way answers).
 */
async function appendAlone(db: Db, p: AppendMany, maxItemBytes: number | undefined): Promise<StoreWriteResult> {
  const planned = plan(p, undefined, new Map(), maxItemBytes === undefined ? undefined : (_, size) => (size > maxItemBytes ? "maxItemBytes" : undefined));
  const at = await insertRows(db, p.store, planned.rows, true);
  const skipped = planned.rows.filter((r) => !at.has(keyOf(r.user, r.id)));
  const refused = p.items.flatMap((item, index) => ("refused" in (planned.appended[index] ?? {}) && item.id !== undefined ? [{ index, user: item.user, id: item.id }] : []));
  const stored = new Map<string, string>();
  await readStored(db, p.store, [...skipped, ...refused], stored);
  // Skipped and not stored: the account does not exist.
  for (const r of skipped) {
    const when = stored.get(keyOf(r.user, r.id));
    planned.appended[r.index] = when !== undefined ? { id: r.id, when, duplicate: true } : { unknownAccount: true };
  }
  for (const r of refused) {
    const when = stored.get(keyOf(r.user, r.id));
    if (when !== undefined) planned.appended[r.index] = { id: r.id, when, duplicate: true };
  }
  return { ok: true, appended: answer(planned, at) };
}

async function appendLocked(tx: Db, p: AppendMany): Promise<StoreWriteResult> {
  const users = [...new Set(p.items.map((i) => i.user))].sort();
  // Every user's account row lock (what a single append takes), taken in one
  // order by every writer so that two batches cannot deadlock; held until
  // commit, so each user's items commit in seq order as with single appends.
  const locked = await tx.query<{ username: string }>(
    "SELECT username FROM accounts WHERE username = ANY($1::text[]) ORDER BY username FOR NO KEY UPDATE", [users],
  );
  const known = new Set(locked.map((r) => r.username));

  // Ids already stored: one query for the batch.
  const stored = new Map<string, string>();
  await readStored(tx, p.store, p.items.filter((i) => i.id !== undefined && known.has(i.user)), stored);

  // What each user holds now, when the quota counts it (bytes only when limited: summing them reads every value).
  const q = p.quota;
  const holds = new Map<string, { n: number; bytes: number }>();
  if (q !== undefined && (q.maxItems !== undefined || q.maxBytes !== undefined) && known.size > 0) {
    const sum = q.maxBytes === undefined ? "0" : "coalesce(sum(octet_length(value)), 0)";
    const rows = await tx.query<{ username: string; n: number; bytes: string }>(
      `SELECT username, count(*)::int AS n, ${sum}::text AS bytes FROM archive_store
       WHERE store = $1 AND username = ANY($2::text[]) GROUP BY username`,
      [p.store, [...known]],
    );
    for (const r of rows) holds.set(r.username, { n: r.n, bytes: Number(r.bytes) });
  }

  const overfull = new Set<string>();
  const planned = plan(p, known, stored, q === undefined ? undefined : (user, size) => quotaCheck(q, holds, user, size, overfull));
  const appended = answer(planned, await insertRows(tx, p.store, planned.rows, false));

  // drop-oldest: the newest items that fit stay, per user that went over.
  if (q !== undefined && overfull.size > 0) {
    for (const user of overfull) {
      const n = await dropOldest(tx, user, p.store, q.maxItems ?? Number.MAX_SAFE_INTEGER, q.maxBytes ?? Number.MAX_SAFE_INTEGER);
      // Told on the user's last item of the batch, the one that made room necessary.
      const last = [...planned.rows].reverse().find((r) => r.user === user);
      const a = last === undefined ? undefined : appended[last.index];
      if (a !== undefined && "id" in a && n > 0) a.dropped = n;
    }
  }
  return { ok: true, appended };
}

/** Adds to `into` the time of each of `items` (user and id) already in `store`. */
async function readStored(db: Db, store: string, items: ReadonlyArray<{ user: string; id?: string }>, into: Map<string, string>): Promise<void> {
  if (items.length === 0) return;
  const rows = await db.query<{ username: string; id: string; at: Date }>(
    `SELECT a.username, a.id, a.at FROM archive_store a
     JOIN unnest($2::text[], $3::text[]) AS t(u, i) ON a.username = t.u AND a.id = t.i
     WHERE a.store = $1`,
    [store, items.map((i) => i.user), items.map((i) => i.id!)],
  );
  for (const r of rows) into.set(keyOf(r.username, r.id), new Date(r.at).toISOString());
}

/**
 * Counts one more item of `size` bytes for `user` against the quota: the
 * limit that refuses it, or undefined (and, for drop-oldest, the user noted
 * as overfull when it needs room made).
 */
function quotaCheck(
  q: NonNullable<AppendMany["quota"]>, holds: Map<string, { n: number; bytes: number }>, user: string, size: number, overfull: Set<string>,
): QuotaLimit | undefined {
  if (q.maxItemBytes !== undefined && size > q.maxItemBytes) return "maxItemBytes";
  if (q.maxItems === undefined && q.maxBytes === undefined) return undefined;
  let h = holds.get(user);
  if (h === undefined) holds.set(user, (h = { n: 0, bytes: 0 }));
  const tooMany = q.maxItems !== undefined && h.n + 1 > q.maxItems;
  const tooBig = q.maxBytes !== undefined && h.bytes + size > q.maxBytes;
  if (q.onFull === "refuse" || q.maxItems === 0 || (q.maxBytes !== undefined && size > q.maxBytes)) {
    if (tooMany) return "maxItems";
    if (tooBig) return "maxBytes";
  } else if (tooMany || tooBig) {
    overfull.add(user);
  }
  h.n++;
  h.bytes += size;
  return undefined;
}
