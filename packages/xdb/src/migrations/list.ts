import { init } from "./001-init.js";
import { moduleStores } from "./002-module-stores.js";
import type { Migration } from "./types.js";

/** Every migration this code knows, oldest first. Append only. */
export const migrations: readonly Migration[] = [init, moduleStores];
