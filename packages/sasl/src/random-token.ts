/**
 * Random tokens for what every login makes a few of (stream ids, SCRAM
 * server nonces, generated resources), drawn from a pool filled by the
 * CSPRNG a few KB at a time: `crypto.randomBytes` per token is a call into
 * OpenSSL each time (~2 µs alone, more under load), Node's own
 * `randomUUID` pools the same way. Each byte of the pool is handed out once.
 */
import { randomFillSync } from "node:crypto";

const POOL = Buffer.allocUnsafe(4096);
let at = POOL.length;

/** `bytes` random bytes (at most 256), as base64url (`encoding` may say base64). */
export function randomToken(bytes: number, encoding: "base64url" | "base64" = "base64url"): string {
  if (!Number.isInteger(bytes) || bytes < 1 || bytes > 256) throw new RangeError("randomToken: 1 to 256 bytes");
  if (at + bytes > POOL.length) {
    randomFillSync(POOL);
    at = 0;
  }
  const s = POOL.toString(encoding, at, at + bytes);
  // Used bytes are overwritten, so that nothing handed out stays in memory.
  POOL.fill(0, at, at + bytes);
  at += bytes;
  return s;
}
