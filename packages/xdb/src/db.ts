// The narrow waist between SqlStorage/migrate and the two engines. Both are
// real PostgreSQL, so one set of SQL serves both; only connection handling
// differs.
import type { Pool, PoolClient } from "pg";
import type { PGlite, Transaction } from "@electric-sql/pglite";

export interface Db {
  /** One statement, `$n` placeholders. */
  query<T = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<T[]>;
  /**
   * A script of several statements without parameters. Needed because
   * PGlite's query() always uses the extended protocol, which refuses more
   * than one statement.
   */
  exec(sql: string): Promise<void>;
  /**
   * Runs fn in a transaction: committed if fn resolves, rolled back if it
   * throws. Inside, use only `tx`, and one statement at a time (a transaction
   * is one connection). Nested calls on `tx` become savepoints.
   */
  transaction<T>(fn: (tx: Db) => Promise<T>): Promise<T>;
  /**
   * True where every statement and transaction runs alone, one after the
   * other (PGlite's single connection): nothing another writer does can
   * come between two statements, so a write that needs no lock and no
   * transaction for that reason may go without (store-append-many.ts).
   */
  readonly serial?: boolean;
}

export interface DbHandle extends Db {
  close(): Promise<void>;
}

interface Runner {
  query(sql: string, params: readonly unknown[]): Promise<unknown[]>;
  exec(sql: string): Promise<void>;
}

/**
 * A Db bound to one open transaction. The `live` check exists because a
 * query leaked past the end of fn would otherwise run on a connection that
 * may already be back in the pool serving somebody else's transaction.
 */
function txDb(run: Runner, isLive: () => boolean, depth: number): Db {
  const check = (): void => {
    if (!isLive()) throw new Error("xdb: transaction handle used after its transaction ended");
  };
  return {
    async query<T>(sql: string, params: readonly unknown[] = []): Promise<T[]> {
      check();
      return (await run.query(sql, params)) as T[];
    },
    async exec(sql: string): Promise<void> {
      check();
      await run.exec(sql);
    },
    async transaction<T>(fn: (tx: Db) => Promise<T>): Promise<T> {
      check();
      const sp = `xdb_sp_${depth}`;
      await run.query(`SAVEPOINT ${sp}`, []);
      let live = true;
      try {
        const result = await fn(txDb(run, () => live && isLive(), depth + 1));
        await run.query(`RELEASE SAVEPOINT ${sp}`, []);
        return result;
      } catch (err) {
        await run.query(`ROLLBACK TO SAVEPOINT ${sp}`, []);
        throw err;
      } finally {
        live = false;
      }
    },
  };
}

/** Adapter for a node-postgres pool; each transaction holds one checked-out client. */
export function pgPoolDb(pool: Pool): DbHandle {
  return {
    async query<T>(sql: string, params: readonly unknown[] = []): Promise<T[]> {
      const r = await pool.query(sql, [...params]);
      return r.rows as T[];
    },
    async exec(sql: string): Promise<void> {
      // Without a values array node-postgres uses the simple protocol, which allows several statements.
      await pool.query(sql);
    },
    async transaction<T>(fn: (tx: Db) => Promise<T>): Promise<T> {
      const client: PoolClient = await pool.connect();
      let live = true;
      // A client whose ROLLBACK failed is in an unknown state: destroy it instead of pooling it.
      let broken: Error | undefined;
      // The pool listens for errors on idle clients only. A connection the
      // server ends between two statements of ours (PostgreSQL shutting down
      // or restarting) emits 'error' on the checked-out client, which without
      // a listener would end the process; the next statement fails instead.
      const onError = (err: Error): void => {
        broken ??= err;
      };
      client.on("error", onError);
      const run: Runner = {
        query: async (sql, params) => (await client.query(sql, [...params])).rows,
        exec: async (sql) => {
          await client.query(sql);
        },
      };
      try {
        try {
          await client.query("BEGIN");
        } catch (err) {
          broken = err instanceof Error ? err : new Error(String(err));
          throw err;
        }
        try {
          const result = await fn(txDb(run, () => live, 1));
          live = false;
          await client.query("COMMIT");
          return result;
        } catch (err) {
          live = false;
          try {
            await client.query("ROLLBACK");
          } catch (rollbackErr) {
            broken = rollbackErr instanceof Error ? rollbackErr : new Error(String(rollbackErr));
          }
          throw err;
        }
      } finally {
        live = false;
        client.removeListener("error", onError);
        client.release(broken ?? false);
      }
    },
    async close(): Promise<void> {
      await pool.end();
    },
  };
}

/** Adapter for PGlite, which serialises transactions on its single connection itself. */
export function pgliteDb(pg: PGlite): DbHandle {
  return {
    serial: true,
    async query<T>(sql: string, params: readonly unknown[] = []): Promise<T[]> {
      return (await pg.query<T>(sql, [...params])).rows;
    },
    async exec(sql: string): Promise<void> {
      await pg.exec(sql);
    },
    async transaction<T>(fn: (tx: Db) => Promise<T>): Promise<T> {
      return pg.transaction(async (tx: Transaction) => {
        let live = true;
        const run: Runner = {
          query: async (sql, params) => (await tx.query(sql, [...params])).rows,
          exec: async (sql) => {
            await tx.exec(sql);
          },
        };
        try {
          return await fn(txDb(run, () => live && !tx.closed, 1));
        } finally {
          live = false;
        }
      });
    },
    async close(): Promise<void> {
      await pg.close();
    },
  };
}
