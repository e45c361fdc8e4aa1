import type { Db } from "../db.js";
import { SchemaTooNewError } from "../errors.js";
import type { Migration } from "./types.js";
import { migrations as knownMigrations } from "./list.js";

export interface MigrateResult {
  /** Versions applied by this call, in order; empty when the schema was current. */
  applied: number[];
  /** The schema version after the call. */
  version: number;
}

// Arbitrary constant ("jfdb") naming jabberfarm's advisory locks; the second
// key is the schema, so xdb farms sharing a database in different schemas do
// not wait for each other.
const LOCK_CLASS = 0x6a666462;

export function latestVersion(list: readonly Migration[] = knownMigrations): number {
  return list.at(-1)?.version ?? 0;
}

function checkList(list: readonly Migration[]): void {
  let previous = 0;
  for (const m of list) {
    if (!Number.isSafeInteger(m.version) || m.version <= previous) {
      throw new Error(`migration list is not strictly increasing at version ${m.version} (${m.name})`);
    }
    previous = m.version;
  }
}

/**
 * Brings the schema on the current search_path up to date. Each pending
 * migration runs in its own transaction under an advisory lock, so several
 * xdb processes starting at once apply each migration exactly once; the
 * applied state is re-read under the lock every time.
 */
export async function migrate(db: Db, list: readonly Migration[] = knownMigrations): Promise<MigrateResult> {
  checkList(list);
  const known = new Map(list.map((m) => [m.version, m] as const));
  const newest = latestVersion(list);
  const applied: number[] = [];
  for (;;) {
    const step = await db.transaction(async (tx) => {
      // coalesce: with no existing schema on the search_path current_schema()
      // is NULL, and the strict lock function would silently not lock.
      await tx.query("SELECT pg_advisory_xact_lock($1, hashtext(coalesce(current_schema(), '')))", [LOCK_CLASS]);
      await tx.query(
        `CREATE TABLE IF NOT EXISTS schema_migrations (
           version     integer PRIMARY KEY,
           name        text NOT NULL,
           applied_at  timestamptz NOT NULL DEFAULT now()
         )`,
      );
      const done = await tx.query<{ version: number; name: string }>(
        "SELECT version, name FROM schema_migrations ORDER BY version",
      );
      const current = done.at(-1)?.version ?? 0;
      if (current > newest) {
        throw new SchemaTooNewError(current, newest, `recorded migration ${current} is unknown here`);
      }
      for (const row of done) {
        const m = known.get(row.version);
        // A recorded version the code lacks (or knows under another name)
        // means a different lineage of migrations ran here.
        if (!m || m.name !== row.name) {
          throw new Error(
            `schema_migrations records ${row.version} "${row.name}", which this xdb does not know` +
              (m ? ` (it knows ${row.version} as "${m.name}")` : ""),
          );
        }
      }
      const doneSet = new Set(done.map((r) => r.version));
      const next = list.find((m) => !doneSet.has(m.version));
      if (!next) return { version: current, next: null };
      if (next.version < current) {
        throw new Error(`migration ${next.version} "${next.name}" is missing but ${current} is already applied`);
      }
      await tx.exec(next.sql);
      await tx.query("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", [next.version, next.name]);
      return { version: next.version, next };
    });
    if (!step.next) return { applied, version: step.version };
    applied.push(step.next.version);
  }
}
