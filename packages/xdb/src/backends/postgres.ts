import pg from "pg";
import { pgPoolDb } from "../db.js";
import { migrate } from "../migrations/index.js";
import { SqlStorage } from "../sql-storage.js";
import type { Storage } from "../storage.js";

export interface PostgresOptions {
  /**
   * Schema holding xdb's tables, created if missing and put alone on the
   * search_path of every pooled connection. Lower-case identifier.
   * Default: whatever the server's search_path gives (usually "public").
   */
  schema?: string;
  /** Maximum pooled connections (default 10). */
  poolSize?: number;
  /**
   * Errors of idle pooled connections (server restart, network cut). The
   * pool has already dropped the connection and the next query opens a new
   * one, so the default ignores them; without any listener node-postgres
   * would crash the process.
   */
  onError?: (err: Error) => void;
}

// Restricted to what needs no quoting anywhere: the schema travels both in
// SQL and in the startup "options" string, which have different quoting rules.
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

function hasOptionsParam(url: string): boolean {
  try {
    return new URL(url).searchParams.has("options");
  } catch {
    return false;
  }
}

export async function openPostgres(url: string, opts: PostgresOptions = {}): Promise<Storage> {
  const { schema, poolSize = 10, onError } = opts;
  if (!Number.isInteger(poolSize) || poolSize < 1) throw new RangeError("poolSize must be a positive integer");
  const config: pg.PoolConfig = { connectionString: url, max: poolSize };
  if (schema !== undefined) {
    if (!SCHEMA_NAME.test(schema)) throw new RangeError(`schema must match ${SCHEMA_NAME}: ${JSON.stringify(schema)}`);
    // node-postgres lets the URL's own "options" override ours, which would
    // silently drop the search_path; refuse rather than write into the wrong schema.
    if (hasOptionsParam(url)) throw new Error("database URL sets \"options\"; put search_path there instead of passing schema");
    // A startup parameter rather than SET after connecting: it is in force
    // before the first query on every connection, with no window to race.
    config.options = `-c search_path=${schema}`;
  }
  const pool = new pg.Pool(config);
  pool.on("error", (err) => onError?.(err));
  const db = pgPoolDb(pool);
  try {
    if (schema !== undefined) {
      try {
        await db.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
      } catch (err) {
        // Two processes creating it at once: the loser sees a unique violation, the schema exists either way.
        const code = (err as { code?: unknown }).code;
        if (code !== "23505" && code !== "42P06") throw err;
      }
      const [row] = await db.query<{ s: string | null }>("SELECT current_schema() AS s");
      if (row?.s !== schema) throw new Error(`search_path did not select schema ${schema} (got ${row?.s ?? "none"})`);
    }
    await migrate(db);
  } catch (err) {
    await db.close().catch(() => {});
    throw err;
  }
  return new SqlStorage(db);
}
