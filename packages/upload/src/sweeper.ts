/**
 * Expiry: files older than `expireAfterSeconds` are deleted with their
 * ledger entries, so they stop counting against their uploaders' quotas.
 * With several upload processes only the one that owns the service's JID
 * by the rendezvous rule sweeps (any may; one is enough).
 */
import type { Logger } from "pino";
import type { KeyedStore } from "@jabberfarm/xdb";
import type { FileBackend } from "./backend.js";

export async function sweepExpired(backend: FileBackend, ledger: KeyedStore, expireAfterSeconds: number, log: Logger): Promise<number> {
  if (expireAfterSeconds <= 0) return 0;
  const before = new Date(Date.now() - expireAfterSeconds * 1000);
  let n = 0;
  for await (const { id, meta } of backend.olderThan(before)) {
    await backend.delete(id);
    if (meta?.owner) await ledger.set(meta.owner, id, null).catch(() => undefined);
    n++;
  }
  if (n > 0) log.info({ files: n }, "expired files deleted");
  return n;
}
