import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { randomToken } from "./random-token.js";
import { decodeBase64Strict, decodeUtf8 } from "./base64.js";
import { DEFAULT_ITERATIONS, DEFAULT_SALT_BYTES, decodeCredential, type DecodedCredential, type ScramCredential } from "./credentials.js";
import { SaslError } from "./errors.js";
import { hash, hashInfo, hmac, isScramMechanism, xor, type ScramMechanism } from "./mechanism.js";
import { saslprep } from "./saslprep.js";
import {
  attribute,
  checkExtensions,
  decodeSaslname,
  isNonce,
  malformed,
  rejectMandatoryExtension,
} from "./scram-syntax.js";

export { SaslError, type SaslCondition } from "./errors.js";

/**
 * Finds the stored credential for a (SASLprepped) username. The mechanism is
 * passed so a store holding one credential per mechanism can pick the right
 * one; returning a credential for another mechanism counts as "no account".
 * Throwing makes the attempt fail with "temporary-auth-failure".
 */
export type CredentialLookup = (username: string, mechanism: ScramMechanism) => Promise<ScramCredential | null>;

export interface ScramServerOptions {
  /** Random bytes in the server's half of the nonce (default 18, i.e. 24 base64 characters). */
  nonceBytes?: number;
  /** Use this server nonce part instead of a random one. Only for reproducing test vectors. */
  serverNonce?: string;
  /**
   * Keys the fake credentials shown for unknown usernames. Defaults to a
   * random per-process secret; a farm running several c2s processes should
   * pass the same secret to all, or an unknown user's salt would change
   * depending on which process answered.
   */
  secret?: Buffer;
  /** Iteration count shown for unknown users; set it to what real accounts use. Default: DEFAULT_ITERATIONS[mechanism]. */
  unknownUserIterations?: number;
}

const DEFAULT_NONCE_BYTES = 18;
const MIN_NONCE_BYTES = 12;
const MAX_NONCE_BYTES = 256;
const PROCESS_SECRET = randomBytes(32);
const NUL = "\0";

/**
 * A stand-in credential for a username with no account. It is a function of
 * (secret, mechanism, username), so repeated attempts see the same salt, as
 * they would for a real account; nothing can be proven against it because
 * the exchange is failed regardless of the proof.
 */
function fakeCredential(mechanism: ScramMechanism, username: string, secret: Buffer, iterations: number): DecodedCredential {
  const { length } = hashInfo(mechanism);
  const derive = (label: string): Buffer =>
    createHmac("sha256", secret).update(`${label}${NUL}${mechanism}${NUL}${username}`).digest();
  return {
    mechanism,
    salt: derive("salt").subarray(0, DEFAULT_SALT_BYTES),
    iterations,
    storedKey: derive("stored-key").subarray(0, length),
    serverKey: derive("server-key").subarray(0, length),
  };
}

type State = "initial" | "starting" | "started" | "succeeded" | "failed";

interface Exchange {
  gs2Header: string;
  clientFirstBare: string;
  serverFirst: string;
  nonce: string;
  username: string;
  authzid: string | undefined;
  credential: DecodedCredential;
  unknownUser: boolean;
}

// Same text for a wrong password and an unknown user, so logs shipped to the
// client (or an error message leaking into <text/>) cannot tell them apart.
const AUTH_FAILED = "authentication failed";

/**
 * Server side of one SCRAM-SHA-1 / SCRAM-SHA-256 exchange (RFC 5802, RFC 7677)
 * without channel binding. Messages are the decoded payloads of <auth/> and
 * <response/>; start() answers with the server-first-message and finish()
 * with the server-final-message. Any failure throws a SaslError and leaves the
 * object unusable; create a new one per attempt.
 */
export class ScramServer {
  readonly mechanism: ScramMechanism;
  private readonly lookup: CredentialLookup;
  private readonly nonceBytes: number;
  private readonly fixedServerNonce: string | undefined;
  private readonly secret: Buffer;
  private readonly unknownUserIterations: number;
  private state: State = "initial";
  private exchange: Exchange | undefined;
  private claimedUsername: string | undefined;

  constructor(mechanism: ScramMechanism, lookup: CredentialLookup, opts: ScramServerOptions = {}) {
    // The name usually comes straight from the client's <auth mechanism='...'/>.
    if (!isScramMechanism(mechanism)) throw new SaslError("invalid-mechanism", `unsupported mechanism ${String(mechanism)}`);
    this.mechanism = mechanism;
    this.lookup = lookup;
    const nonceBytes = opts.nonceBytes ?? DEFAULT_NONCE_BYTES;
    if (!Number.isInteger(nonceBytes) || nonceBytes < MIN_NONCE_BYTES || nonceBytes > MAX_NONCE_BYTES) {
      throw new RangeError(`nonceBytes must be an integer between ${MIN_NONCE_BYTES} and ${MAX_NONCE_BYTES}`);
    }
    this.nonceBytes = nonceBytes;
    if (opts.serverNonce !== undefined && !isNonce(opts.serverNonce)) {
      throw new RangeError("serverNonce must be printable ASCII without commas");
    }
    this.fixedServerNonce = opts.serverNonce;
    if (opts.secret !== undefined && (!Buffer.isBuffer(opts.secret) || opts.secret.length < 16)) {
      throw new RangeError("secret must be a Buffer of at least 16 bytes");
    }
    this.secret = opts.secret ?? PROCESS_SECRET;
    const it = opts.unknownUserIterations ?? DEFAULT_ITERATIONS[mechanism];
    if (!Number.isInteger(it) || it < 1) throw new RangeError("unknownUserIterations must be a positive integer");
    this.unknownUserIterations = it;
  }

  /** Handle the client-first-message; resolves to the server-first-message. */
  async start(clientFirst: string | Buffer): Promise<string> {
    this.expect("initial");
    this.state = "starting";
    try {
      const parsed = parseClientFirst(decodeUtf8(clientFirst, "client-first-message"));
      const username = saslprep(parsed.rawUsername, { allowUnassigned: true, what: "username" });
      if (username === "") throw malformed("username is empty after SASLprep");
      this.claimedUsername = username;

      let stored: ScramCredential | null;
      try {
        stored = await this.lookup(username, this.mechanism);
      } catch (err) {
        // A lookup may refuse on purpose (a locked account): its own answer stands.
        if (err instanceof SaslError) throw err;
        throw new SaslError("temporary-auth-failure", "credential lookup failed", { cause: err });
      }
      let credential: DecodedCredential | undefined;
      if (stored != null && stored.mechanism === this.mechanism) {
        try {
          credential = decodeCredential(stored);
        } catch (err) {
          throw new SaslError("temporary-auth-failure", "stored credential is corrupt", { cause: err });
        }
      }
      const unknownUser = credential === undefined;
      credential ??= fakeCredential(this.mechanism, username, this.secret, this.unknownUserIterations);

      const nonce = parsed.clientNonce + (this.fixedServerNonce ?? randomToken(this.nonceBytes, "base64"));
      const serverFirst = `r=${nonce},s=${credential.salt.toString("base64")},i=${credential.iterations}`;
      this.exchange = {
        gs2Header: parsed.gs2Header,
        clientFirstBare: parsed.bare,
        serverFirst,
        nonce,
        username,
        authzid: parsed.authzid,
        credential,
        unknownUser,
      };
      this.state = "started";
      return serverFirst;
    } catch (err) {
      this.state = "failed";
      throw err;
    }
  }

  /** Handle the client-final-message; returns the server-final-message ("v=...") on success. */
  finish(clientFinal: string | Buffer): string {
    this.expect("started");
    const ex = this.exchange!;
    try {
      const msg = decodeUtf8(clientFinal, "client-final-message");
      if (msg.includes(NUL)) throw malformed("client-final-message contains NUL");
      const proofAt = msg.lastIndexOf(",");
      if (proofAt < 0) throw malformed("client-final-message: missing attributes");
      const withoutProof = msg.slice(0, proofAt);
      const parts = withoutProof.split(",");
      const cbind = attribute(parts[0], "c", "client-final-message");
      const nonce = attribute(parts[1], "r", "client-final-message");
      checkExtensions(parts.slice(2), "client-final-message");
      const proofText = attribute(msg.slice(proofAt + 1), "p", "client-final-message");

      const cbindData = decodeBase64Strict(cbind);
      if (cbindData === null) throw malformed("client-final-message: channel binding is not valid base64");
      const proof = decodeBase64Strict(proofText);
      if (proof === null) throw malformed("client-final-message: proof is not valid base64");
      if (proof.length !== hashInfo(this.mechanism).length) throw malformed("client-final-message: proof has the wrong length");

      // Without channel binding, c= must carry exactly the GS2 header the
      // client sent first; a mismatch means the header was altered in transit
      // (e.g. a 'y' downgraded to 'n') or the client is confused.
      if (!cbindData.equals(Buffer.from(ex.gs2Header, "utf8"))) {
        throw new SaslError("not-authorized", "channel binding does not match the GS2 header");
      }
      if (nonce !== ex.nonce) throw new SaslError("not-authorized", "nonce does not match");

      const authMessage = `${ex.clientFirstBare},${ex.serverFirst},${withoutProof}`;
      const { storedKey, serverKey } = ex.credential;
      const clientSignature = hmac(this.mechanism, storedKey, authMessage);
      const clientKey = xor(proof, clientSignature);
      const proofOk = timingSafeEqual(hash(this.mechanism, clientKey), storedKey);
      // The fake credential's keys are secret-derived so no proof can match,
      // but the flag makes that independent of luck.
      if (!proofOk || ex.unknownUser) throw new SaslError("not-authorized", AUTH_FAILED);

      const serverSignature = hmac(this.mechanism, serverKey, authMessage);
      this.state = "succeeded";
      return `v=${serverSignature.toString("base64")}`;
    } catch (err) {
      this.state = "failed";
      throw err;
    }
  }

  /** True once finish() has accepted the proof. */
  get authenticated(): boolean {
    return this.state === "succeeded";
  }

  /** The SASLprepped username that authenticated. Throws before a successful finish(). */
  get username(): string {
    return this.succeeded().username;
  }

  /** The authorization identity from the GS2 header, if any (not SASLprepped: it is a JID). */
  get authzid(): string | undefined {
    return this.succeeded().authzid;
  }

  /** The SASLprepped username the client claimed, once start() has parsed it; for logging failed attempts. */
  get attemptedUsername(): string | undefined {
    return this.claimedUsername;
  }

  private succeeded(): Exchange {
    if (this.state !== "succeeded" || this.exchange === undefined) throw new Error("SCRAM exchange has not succeeded");
    return this.exchange;
  }

  private expect(state: State): void {
    // Out-of-order calls normally mean the client sent an unexpected <response/>.
    if (this.state !== state) throw new SaslError("malformed-request", `unexpected SCRAM message in state '${this.state}'`);
  }
}

interface ClientFirst {
  gs2Header: string;
  authzid: string | undefined;
  bare: string;
  rawUsername: string;
  clientNonce: string;
}

function parseClientFirst(msg: string): ClientFirst {
  if (msg.includes(NUL)) throw malformed("client-first-message contains NUL");
  const flagEnd = msg.indexOf(",");
  if (flagEnd < 0) throw malformed("client-first-message: missing GS2 header");
  const flag = msg.slice(0, flagEnd);
  if (flag.startsWith("p=")) {
    // We only offer the non -PLUS mechanisms, so a client asking for channel
    // binding is either misbehaving or seeing a mechanism list that was
    // tampered with; in neither case can we honour it.
    throw new SaslError("malformed-request", "channel binding (gs2 p=) is not supported: no -PLUS mechanism is offered");
  }
  // 'y' (client could bind but thinks we cannot) is fine while we offer no
  // -PLUS mechanism; it must be refused once we do (RFC 5802 §6).
  if (flag !== "n" && flag !== "y") throw malformed("client-first-message: bad GS2 channel binding flag");
  const headerEnd = msg.indexOf(",", flagEnd + 1);
  if (headerEnd < 0) throw malformed("client-first-message: incomplete GS2 header");
  const authzPart = msg.slice(flagEnd + 1, headerEnd);
  const authzid = authzPart === "" ? undefined : decodeSaslname(attribute(authzPart, "a", "GS2 header"), "authzid");

  const bare = msg.slice(headerEnd + 1);
  const parts = bare.split(",");
  rejectMandatoryExtension(parts, "client-first-message");
  const rawUsername = decodeSaslname(attribute(parts[0], "n", "client-first-message"), "username");
  const clientNonce = attribute(parts[1], "r", "client-first-message");
  if (!isNonce(clientNonce)) throw malformed("client-first-message: nonce is empty or not printable ASCII");
  checkExtensions(parts.slice(2), "client-first-message");
  return { gs2Header: msg.slice(0, headerEnd + 1), authzid, bare, rawUsername, clientNonce };
}
