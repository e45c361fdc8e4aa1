/**
 * The farm file's sections for the service processes, `muc` (group chat,
 * `conference.DOMAIN`) and `upload` (HTTP upload, `upload.DOMAIN`): what
 * each gets from the shared keys, and their entries in the router's
 * component list. Both are trusted components (docs/muc.md, docs/upload.md:
 * they reach xdb through the envelope and follow the routers' membership).
 */
import { join } from "node:path";
import type { Doc } from "./farm-config.js";

/** The upload service's HTTPS port in the embedded farm (XEP-0363 PUT and GET). */
export const UPLOAD_PORT = 5443;

export const serviceName = (kind: "muc" | "upload", domain: string): string => `${kind === "muc" ? "conference" : "upload"}.${domain}`;

interface Shared {
  domain: string;
  routers: Array<{ host: string; port: number }>;
  dataDir: string | undefined;
  redisUrl: string | undefined;
  secret(name: string): string | undefined;
}

export function serviceSection(kind: "muc" | "upload", section: Doc, s: Shared): Doc {
  const service = typeof section.service === "string" ? section.service : serviceName(kind, s.domain);
  const common = { service, routers: s.routers, secret: s.secret(service), userDomains: [s.domain] };
  if (kind === "muc") return { ...common, ...(s.redisUrl ? { redisUrl: s.redisUrl } : {}), ...section };
  const files = s.dataDir ? { tls: { dataDir: join(s.dataDir, "upload-tls") }, storage: { kind: "dir", path: join(s.dataDir, "uploads") } } : {};
  return { ...common, ...files, ...section };
}

/** The router's entries for the embedded farm's service processes. */
export function serviceComponents(domain: string, secrets: { muc: string; upload: string }): Doc {
  return {
    [serviceName("muc", domain)]: { secret: secrets.muc, trusted: true },
    [serviceName("upload", domain)]: { secret: secrets.upload, trusted: true },
  };
}
