/**
 * Group commit for plain key-value sets on PGlite (one key, no count or
 * size quota: the last-activity time every logout writes, preferences, a
 * PEP node's configuration). PGlite runs one statement at a time and each
 * costs ~0.3 ms of the xdb's CPU whatever it writes; the sets that arrive in
 * one turn of the event loop are written by one statement instead, which
 * costs ~40 µs a row for twenty (docs/performance.md, "What a login costs").
 *
 * Order is kept: the batch is issued before any other statement this
 * process sends (`flush`, called by the Db handle in front of every
 * query), so a read or write issued after a set still runs after it, as
 * when each set was its own statement. Within a batch the last value for a
 * key wins, as if the sets were applied in order.
 *
 * Only for a database this process alone writes through one connection
 * (PGlite, backends/pglite.ts): on PostgreSQL statements run on a pool and
 * nothing orders them anyway.
 */
import type { Db } from "./db.js";
import { UnknownAccountError } from "./errors.js";
import { upsertKv } from "./store-sql.js";

const rowKey = (user: string, store: string, key: string): string => `${user}\u0000${store}\u0000${key}`;

interface Pending {
  user: string;
  store: string;
  key: string;
  value: string;
  resolve: () => void;
  reject: (err: Error) => void;
}

export class PlainSetBatcher {
  private pending: Pending[] | undefined;
  /** Statements issued, and rows written by them (for tests and metrics). */
  batches = 0;
  rows = 0;

  constructor(private readonly db: Db) {}

  /** Writes `value` under `key`; resolves once committed, rejects with UnknownAccountError for an account that does not exist. */
  set(user: string, store: string, key: string, value: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (this.pending === undefined) {
        this.pending = [];
        process.nextTick(() => this.flush());
      }
      this.pending.push({ user, store, key, value, resolve, reject });
    });
  }

  /** Issues what is queued now, ahead of whatever statement comes next. */
  flush(): void {
    const items = this.pending;
    if (items === undefined) return;
    this.pending = undefined;
    // The last value per key, in the order the keys were first set.
    const last = new Map<string, Pending>();
    for (const p of items) last.set(rowKey(p.user, p.store, p.key), p);
    const rows = [...last.values()];
    this.batches++;
    this.rows += rows.length;
    if (rows.length === 1) {
      // Alone in its turn (a steady rate of logouts): the plain statement
      // costs half of the one over arrays (~0.25 against ~0.45 ms on PGlite).
      const r = rows[0]!;
      upsertKv(this.db, r.user, r.store, r.key, r.value).then(
        () => {
          for (const p of items) p.resolve();
        },
        (err: Error) => {
          for (const p of items) p.reject(err);
        },
      );
      return;
    }
    // Joined with accounts, so that a set for an account that is gone writes
    // nothing instead of failing the others on the foreign key; RETURNING
    // says which were written (inserted or updated).
    this.db.query<{ username: string; store: string; key: string }>(
      `INSERT INTO kv_store (username, store, key, value)
       SELECT t.u, t.s, t.k, t.v FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS t(u, s, k, v)
       JOIN accounts a ON a.username = t.u
       ON CONFLICT (username, store, key) DO UPDATE SET value = excluded.value, updated_at = now()
       RETURNING username, store, key`,
      [rows.map((r) => r.user), rows.map((r) => r.store), rows.map((r) => r.key), rows.map((r) => r.value)],
    ).then(
      (written) => {
        const done = new Set(written.map((w) => rowKey(w.username, w.store, w.key)));
        for (const p of items) {
          if (done.has(rowKey(p.user, p.store, p.key))) p.resolve();
          else p.reject(new UnknownAccountError(p.user));
        }
      },
      (err: Error) => {
        for (const p of items) p.reject(err);
      },
    );
  }
}
