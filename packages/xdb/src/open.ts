import { openPglite } from "./backends/pglite.js";
import { openPostgres, type PostgresOptions } from "./backends/postgres.js";
import type { Storage } from "./storage.js";

export interface StorageConfig extends PostgresOptions {
  /** When set (non-empty), PostgreSQL is used and dataDir is ignored. */
  databaseUrl?: string;
  /** PGlite data directory, used when there is no databaseUrl. */
  dataDir: string;
}

/** PostgreSQL when a URL is configured (several xdb processes may share it), else embedded PGlite. */
export function openStorage(config: StorageConfig): Promise<Storage> {
  const { databaseUrl, dataDir, ...pgOptions } = config;
  if (databaseUrl) return openPostgres(databaseUrl, pgOptions);
  return openPglite(dataDir);
}
