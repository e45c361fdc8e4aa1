import type { PostgresOptions } from "./backends/postgres.js";
import type { Storage } from "./storage.js";

export interface StorageConfig extends PostgresOptions {
  /** When set (non-empty), PostgreSQL is used and dataDir is ignored. */
  databaseUrl?: string;
  /** PGlite data directory, used when there is no databaseUrl. */
  dataDir: string;
}

// The backends are loaded on first use: most processes import this package
// for XdbClient alone, and pg or PGlite's JavaScript would cost each of them
// several MB of heap for nothing (docs/performance.md, "Memory at start").

/** PostgreSQL at `url` (several xdb processes may share it). */
export async function openPostgres(url: string, options: PostgresOptions = {}): Promise<Storage> {
  return (await import("./backends/postgres.js")).openPostgres(url, options);
}

/** Embedded PGlite in `dataDir`, created if needed; one process per directory. */
export async function openPglite(dataDir: string): Promise<Storage> {
  return (await import("./backends/pglite.js")).openPglite(dataDir);
}

/** PostgreSQL when a URL is configured (several xdb processes may share it), else embedded PGlite. */
export function openStorage(config: StorageConfig): Promise<Storage> {
  const { databaseUrl, dataDir, ...pgOptions } = config;
  if (databaseUrl) return openPostgres(databaseUrl, pgOptions);
  return openPglite(dataDir);
}
