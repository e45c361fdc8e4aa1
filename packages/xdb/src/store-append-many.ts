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

export async function archiveAppendMany(tx: Db, p: AppendMany): Promise<StoreWriteResult> {
  const users = [...new Set(p.items.map((i) => i.user))].sort();
  // Every user's account row lock (what a single append takes), taken in one
  // order by every writer so that two batches cannot deadlock; held until
  // commit, so each user's items commit in seq order as with single appends.
  const locked = await tx.query<{ username: string }>(
    "SELECT username FROM accounts WHERE username = ANY($1::text[]) ORDER BY username FOR NO KEY UPDATE", [users],
  );
  const known = new Set(locked.map((r) => r.username));
  const appended: AppendedItem[] = new Array(p.items.length);

  // Ids already stored: one query for the batch.
  const stored = new Map<string, string>();
  const asked = p.items.filter((i) => i.id !== undefined && known.has(i.user));
  if (asked.length > 0) {
    const rows = await tx.query<{ username: string; id: string; at: Date }>(
      `SELECT a.username, a.id, a.at FROM archive_store a
       JOIN unnest($2::text[], $3::text[]) AS t(u, i) ON a.username = t.u AND a.id = t.i
       WHERE a.store = $1`,
      [p.store, asked.map((i) => i.user), asked.map((i) => i.id!)],
    );
    for (const r of rows) stored.set(keyOf(r.username, r.id), new Date(r.at).toISOString());
  }

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

  const rows: Row[] = [];
  /** Items repeating an id earlier in this batch: answered like the first once it is stored. */
  const repeats: Array<{ index: number; first: number }> = [];
  const firstOf = new Map<string, number>();
  const overfull = new Set<string>();
  p.items.forEach((item, index) => {
    if (!known.has(item.user)) {
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
    const size = bytes(item.value);
    if (q !== undefined) {
      const refusal = quotaCheck(q, holds, item.user, size, overfull);
      if (refusal !== undefined) {
        appended[index] = { refused: refusal };
        if (item.id !== undefined) firstOf.delete(keyOf(item.user, item.id));
        return;
      }
    }
    rows.push({ index, user: item.user, id: item.id ?? randomUUID(), when: item.when ?? null, with: item.with ?? null, value: item.value });
  });

  if (rows.length > 0) {
    // One statement; the ordinality keeps each user's items in the given order (seq is drawn as rows come).
    const inserted = await tx.query<{ username: string; id: string; at: Date }>(
      `INSERT INTO archive_store (username, store, id, at, with_jid, value)
       SELECT u, $1, i, coalesce(w::timestamptz, now()), j, v
       FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[]) WITH ORDINALITY AS t(u, i, w, j, v, o)
       ORDER BY o
       RETURNING username, id, at`,
      [p.store, rows.map((r) => r.user), rows.map((r) => r.id), rows.map((r) => r.when), rows.map((r) => r.with), rows.map((r) => r.value)],
    );
    const at = new Map(inserted.map((r) => [keyOf(r.username, r.id), new Date(r.at).toISOString()] as const));
    for (const r of rows) appended[r.index] = { id: r.id, when: at.get(keyOf(r.user, r.id))!, duplicate: false };
  }
  for (const { index, first } of repeats) {
    const a = appended[first]!;
    appended[index] = "id" in a ? { id: a.id, when: a.when, duplicate: true } : a;
  }

  // drop-oldest: the newest items that fit stay, per user that went over.
  if (q !== undefined && overfull.size > 0) {
    for (const user of overfull) {
      const n = await dropOldest(tx, user, p.store, q.maxItems ?? Number.MAX_SAFE_INTEGER, q.maxBytes ?? Number.MAX_SAFE_INTEGER);
      // Told on the user's last item of the batch, the one that made room necessary.
      const last = [...rows].reverse().find((r) => r.user === user);
      const a = last === undefined ? undefined : appended[last.index];
      if (a !== undefined && "id" in a && n > 0) a.dropped = n;
    }
  }
  return { ok: true, appended };
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
