export type {
  AppendedItem,
  ArchiveItem,
  ArchiveQuota,
  KeyedQuota,
  QuotaLimit,
  Roster,
  RosterItem,
  RosterWrite,
  ScramCredential,
  Storage,
  StoreRead,
  StoreReadResult,
  StoreWrite,
  StoreWriteResult,
  Subscription,
} from "./storage.js";
export {
  DataDirInUseError,
  InvalidArgumentError,
  ItemNotFoundError,
  SchemaTooNewError,
  UnknownAccountError,
  XdbError,
  type XdbErrorCode,
} from "./errors.js";
export { pgPoolDb, pgliteDb, type Db, type DbHandle } from "./db.js";
export { migrate, migrations, latestVersion, type Migration, type MigrateResult } from "./migrations/index.js";
export { SqlStorage } from "./sql-storage.js";
export type { PostgresOptions } from "./backends/postgres.js";
export { openPglite, openPostgres, openStorage, type StorageConfig } from "./open.js";
export { XdbClient, XdbRequestError, addressFor, resendReadsWhenAnXdbLeaves, type XdbClientOptions } from "./client.js";
export { XdbService } from "./service.js";
export { startXdb, type XdbProcess, type XdbProcessOptions } from "./process.js";
export { xdbConfigSchema, type XdbConfig, type XdbConfigInput } from "./config.js";
export { ArchiveWriter, type ArchiveAppend, type ArchiveWriterOptions } from "./archive-writer.js";
export {
  Stores, KeyedStore, ArchiveStore,
  type QuotaRefusal, type StoreOutcome, type AppendOutcome, type Page, type PageSize, type ArchiveQuery, type ArchiveDeletion,
} from "./stores.js";
