import { createHash, createHmac, pbkdf2, pbkdf2Sync } from "node:crypto";
import { promisify } from "node:util";

export type ScramMechanism = "SCRAM-SHA-1" | "SCRAM-SHA-256";

/** In order of preference, strongest first, as a c2s would advertise them. */
export const SCRAM_MECHANISMS: readonly ScramMechanism[] = ["SCRAM-SHA-256", "SCRAM-SHA-1"];

export function isScramMechanism(x: unknown): x is ScramMechanism {
  return x === "SCRAM-SHA-1" || x === "SCRAM-SHA-256";
}

interface HashInfo {
  readonly digest: "sha1" | "sha256";
  readonly length: number;
}

const HASHES: Record<ScramMechanism, HashInfo> = {
  "SCRAM-SHA-1": { digest: "sha1", length: 20 },
  "SCRAM-SHA-256": { digest: "sha256", length: 32 },
};

export function hashInfo(mechanism: ScramMechanism): HashInfo {
  const info = HASHES[mechanism];
  // The type says this cannot happen, but mechanism names arrive from the network.
  if (info === undefined) throw new TypeError(`not a SCRAM mechanism: ${String(mechanism)}`);
  return info;
}

const pbkdf2Async = promisify(pbkdf2);

/** RFC 5802 Hi(): PBKDF2 with HMAC as the PRF and one block of output. */
export function hi(mechanism: ScramMechanism, password: string, salt: Buffer, iterations: number): Buffer {
  const { digest, length } = hashInfo(mechanism);
  return pbkdf2Sync(Buffer.from(password, "utf8"), salt, iterations, length, digest);
}

export function hiAsync(mechanism: ScramMechanism, password: string, salt: Buffer, iterations: number): Promise<Buffer> {
  const { digest, length } = hashInfo(mechanism);
  return pbkdf2Async(Buffer.from(password, "utf8"), salt, iterations, length, digest);
}

export function hmac(mechanism: ScramMechanism, key: Buffer, data: string | Buffer): Buffer {
  return createHmac(hashInfo(mechanism).digest, key).update(data).digest();
}

export function hash(mechanism: ScramMechanism, data: Buffer): Buffer {
  return createHash(hashInfo(mechanism).digest).update(data).digest();
}

export interface ScramKeys {
  clientKey: Buffer;
  storedKey: Buffer;
  serverKey: Buffer;
}

export function keysFromSaltedPassword(mechanism: ScramMechanism, saltedPassword: Buffer): ScramKeys {
  const clientKey = hmac(mechanism, saltedPassword, "Client Key");
  return {
    clientKey,
    storedKey: hash(mechanism, clientKey),
    serverKey: hmac(mechanism, saltedPassword, "Server Key"),
  };
}

export function xor(a: Buffer, b: Buffer): Buffer {
  if (a.length !== b.length) throw new RangeError("xor of buffers of different lengths");
  const out = Buffer.allocUnsafe(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ b[i]!;
  return out;
}
