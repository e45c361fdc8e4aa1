export type { Migration } from "./types.js";
export { migrations } from "./list.js";
export { migrate, latestVersion, type MigrateResult } from "./migrate.js";
