/**
 * Software Version (XEP-0092) of the server. No <os/>: telling anyone who
 * asks which system we run on helps attackers more than it helps users
 * (XEP-0092 §5).
 */
import { readFileSync } from "node:fs";
import { xml } from "@jabberfarm/xml";
import type { ModuleApi } from "../module-api.js";

const NS_VERSION = "jabber:iq:version";
export const SERVER_NAME = "jabberfarm";

/**
 * package.json is the one place the version is written. The path is the same
 * from src/modules and dist/modules, and package.json always ships with a package.
 */
export const SERVER_VERSION: string = (() => {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version?: unknown };
  return typeof pkg.version === "string" ? pkg.version : "unknown";
})();

export function version(api: ModuleApi): void {
  api.addFeature(NS_VERSION);
  api.on(`iq/host/${NS_VERSION}`, ({ stanza }) => {
    if (stanza.attrs.type !== "get" || stanza.firstElement()?.local !== "query") return false;
    api.result(stanza, xml("query", { xmlns: NS_VERSION }, xml("name", {}, SERVER_NAME), xml("version", {}, SERVER_VERSION)));
    return true;
  });
}
