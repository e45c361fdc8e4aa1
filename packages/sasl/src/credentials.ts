import { randomBytes, timingSafeEqual } from "node:crypto";
import { decodeBase64Strict } from "./base64.js";
import { SaslError } from "./errors.js";
import { hashInfo, hi, hiAsync, isScramMechanism, keysFromSaltedPassword, type ScramMechanism } from "./mechanism.js";
import { saslprep } from "./saslprep.js";

export type { ScramMechanism } from "./mechanism.js";

/**
 * What is stored for a password (RFC 5802 §3): enough for the server to check
 * a SCRAM proof or a PLAIN password, but not enough to impersonate the user
 * against another server using the same salt (that needs ClientKey).
 * Binary fields are base64 so the record can go into JSON/XML storage as is.
 */
export interface ScramCredential {
  mechanism: ScramMechanism;
  salt: string;
  iterations: number;
  storedKey: string;
  serverKey: string;
}

/** RFC 7677 §4 asks for at least 4096 iterations; we refuse to create weaker credentials. */
export const MIN_ITERATIONS = 4096;
export const DEFAULT_ITERATIONS: Readonly<Record<ScramMechanism, number>> = {
  "SCRAM-SHA-1": 4096,
  "SCRAM-SHA-256": 4096,
};
export const DEFAULT_SALT_BYTES = 16;
/** Shorter salts make precomputed-dictionary attacks across servers practical. */
export const MIN_SALT_BYTES = 8;
/** node's pbkdf2 takes a signed 32-bit iteration count. */
const MAX_ITERATIONS = 0x7fffffff;

export interface DeriveOptions {
  /** Default: DEFAULT_SALT_BYTES fresh random bytes. */
  salt?: Buffer;
  /** Default: DEFAULT_ITERATIONS[mechanism]; at least MIN_ITERATIONS. */
  iterations?: number;
}

interface DeriveInput {
  mechanism: ScramMechanism;
  password: string;
  salt: Buffer;
  iterations: number;
}

function deriveInput(mechanism: ScramMechanism, password: string, opts: DeriveOptions): DeriveInput {
  if (!isScramMechanism(mechanism)) throw new TypeError(`not a SCRAM mechanism: ${String(mechanism)}`);
  const iterations = opts.iterations ?? DEFAULT_ITERATIONS[mechanism];
  if (!Number.isInteger(iterations) || iterations < MIN_ITERATIONS || iterations > MAX_ITERATIONS) {
    throw new RangeError(`iterations must be an integer between ${MIN_ITERATIONS} and ${MAX_ITERATIONS}, got ${iterations}`);
  }
  const salt = opts.salt ?? randomBytes(DEFAULT_SALT_BYTES);
  if (!Buffer.isBuffer(salt) || salt.length < MIN_SALT_BYTES) {
    throw new RangeError(`salt must be a Buffer of at least ${MIN_SALT_BYTES} bytes`);
  }
  // Stored-string SASLprep: a password with unassigned code points could
  // change meaning under a later Unicode version and lock its owner out.
  const prepped = saslprep(password, { what: "password" });
  // RFC 4616 forbids empty PLAIN passwords, so such an account could only be
  // used over SCRAM; treat it as the mistake it almost certainly is.
  if (prepped === "") throw new SaslError("malformed-request", "password is empty after SASLprep");
  return { mechanism, password: prepped, salt, iterations };
}

function credentialFrom(input: DeriveInput, saltedPassword: Buffer): ScramCredential {
  const { storedKey, serverKey } = keysFromSaltedPassword(input.mechanism, saltedPassword);
  return {
    mechanism: input.mechanism,
    salt: input.salt.toString("base64"),
    iterations: input.iterations,
    storedKey: storedKey.toString("base64"),
    serverKey: serverKey.toString("base64"),
  };
}

/** Blocks for the whole PBKDF2 run: fine for tools and tests, not for a busy server. */
export function deriveCredential(mechanism: ScramMechanism, password: string, opts: DeriveOptions = {}): ScramCredential {
  const input = deriveInput(mechanism, password, opts);
  return credentialFrom(input, hi(mechanism, input.password, input.salt, input.iterations));
}

/** PBKDF2 runs on libuv's thread pool, so the event loop stays responsive. */
export async function deriveCredentialAsync(
  mechanism: ScramMechanism,
  password: string,
  opts: DeriveOptions = {},
): Promise<ScramCredential> {
  const input = deriveInput(mechanism, password, opts);
  return credentialFrom(input, await hiAsync(mechanism, input.password, input.salt, input.iterations));
}

/** One credential per mechanism (SCRAM_MECHANISMS order), each with its own salt. */
export function deriveCredentials(password: string, opts: { iterations?: number } = {}): ScramCredential[] {
  return [
    deriveCredential("SCRAM-SHA-256", password, { iterations: opts.iterations }),
    deriveCredential("SCRAM-SHA-1", password, { iterations: opts.iterations }),
  ];
}

export async function deriveCredentialsAsync(password: string, opts: { iterations?: number } = {}): Promise<ScramCredential[]> {
  return Promise.all([
    deriveCredentialAsync("SCRAM-SHA-256", password, { iterations: opts.iterations }),
    deriveCredentialAsync("SCRAM-SHA-1", password, { iterations: opts.iterations }),
  ]);
}

/** A ScramCredential with its binary fields decoded and checked. */
export interface DecodedCredential {
  mechanism: ScramMechanism;
  salt: Buffer;
  iterations: number;
  storedKey: Buffer;
  serverKey: Buffer;
}

/**
 * Validate a stored credential. Throws TypeError when it is corrupt. The
 * iteration floor is not applied here: credentials imported from elsewhere
 * may predate it, and refusing them would only lock users out.
 */
export function decodeCredential(cred: ScramCredential): DecodedCredential {
  if (cred === null || typeof cred !== "object") throw new TypeError("credential is not an object");
  if (!isScramMechanism(cred.mechanism)) throw new TypeError(`credential has unknown mechanism ${String(cred.mechanism)}`);
  const { length } = hashInfo(cred.mechanism);
  const salt = typeof cred.salt === "string" ? decodeBase64Strict(cred.salt) : null;
  if (salt === null || salt.length === 0) throw new TypeError("credential salt is not non-empty base64");
  if (!Number.isInteger(cred.iterations) || cred.iterations < 1 || cred.iterations > MAX_ITERATIONS) {
    throw new TypeError(`credential iteration count ${String(cred.iterations)} is invalid`);
  }
  const storedKey = typeof cred.storedKey === "string" ? decodeBase64Strict(cred.storedKey) : null;
  const serverKey = typeof cred.serverKey === "string" ? decodeBase64Strict(cred.serverKey) : null;
  if (storedKey === null || storedKey.length !== length) throw new TypeError(`credential storedKey is not ${length} bytes of base64`);
  if (serverKey === null || serverKey.length !== length) throw new TypeError(`credential serverKey is not ${length} bytes of base64`);
  return { mechanism: cred.mechanism, salt, iterations: cred.iterations, storedKey, serverKey };
}

function prepareCandidate(password: string): string {
  // Query-string SASLprep: unassigned code points cannot match anything that
  // was stored, so there is no point in rejecting them differently.
  return saslprep(password, { allowUnassigned: true, what: "password" });
}

function matches(decoded: DecodedCredential, saltedPassword: Buffer): boolean {
  const { storedKey } = keysFromSaltedPassword(decoded.mechanism, saltedPassword);
  return timingSafeEqual(storedKey, decoded.storedKey);
}

/**
 * Check a PLAIN password against a SCRAM credential by recomputing
 * SaltedPassword -> ClientKey -> StoredKey. Throws SaslError
 * "malformed-request" if SASLprep rejects the password and TypeError if the
 * credential is corrupt. Blocks for the PBKDF2 run; servers want verifyPlainAsync.
 */
export function verifyPlain(password: string, cred: ScramCredential): boolean {
  const decoded = decodeCredential(cred);
  const prepped = prepareCandidate(password);
  if (prepped === "") return false;
  return matches(decoded, hi(decoded.mechanism, prepped, decoded.salt, decoded.iterations));
}

export async function verifyPlainAsync(password: string, cred: ScramCredential): Promise<boolean> {
  const decoded = decodeCredential(cred);
  const prepped = prepareCandidate(password);
  if (prepped === "") return false;
  return matches(decoded, await hiAsync(decoded.mechanism, prepped, decoded.salt, decoded.iterations));
}
