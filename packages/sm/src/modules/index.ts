/**
 * The built-in modules, by name, in the order they load. Deleting a module's
 * file and its line here removes the feature and nothing else.
 */
import type { SmModule } from "../module-api.js";
import { admin } from "./admin.js";
import { blocking } from "./blocking.js";
import { carbons } from "./carbons.js";
import { clientStateIndication } from "./csi.js";
import { disco } from "./disco.js";
import { lastActivity } from "./last.js";
import { mam } from "./mam.js";
import { message } from "./message.js";
import { offline } from "./offline.js";
import { pep } from "./pep.js";
import { ping } from "./ping.js";
import { presence } from "./presence.js";
import { privateStorage } from "./private.js";
import { register } from "./register.js";
import { roster } from "./roster.js";
import { streamManagement } from "./stream-management.js";
import { subscription } from "./subscription.js";
import { vcard } from "./vcard.js";
import { version } from "./version.js";

export const BUILTIN_MODULES: Record<string, SmModule> = {
  roster,
  subscription,
  presence,
  message,
  offline,
  disco,
  ping,
  version,
  vcard,
  private: privateStorage,
  register,
  admin,
  blocking,
  last: lastActivity,
  "stream-management": streamManagement,
  csi: clientStateIndication,
  carbons,
  mam,
  pep,
};

export function loadModules(names: readonly string[]): SmModule[] {
  return names.map((n) => {
    const m = BUILTIN_MODULES[n];
    if (!m) throw new Error(`unknown sm module '${n}'; known: ${Object.keys(BUILTIN_MODULES).join(", ")}`);
    return m;
  });
}
