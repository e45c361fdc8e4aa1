import { randomBytes, timingSafeEqual } from "node:crypto";
import { decodeBase64Strict, decodeUtf8 } from "./base64.js";
import { hi, hiAsync, hmac, isScramMechanism, keysFromSaltedPassword, xor, type ScramMechanism } from "./mechanism.js";
import { saslprep } from "./saslprep.js";
import { attribute, checkExtensions, encodeSaslname, isNonce, malformed } from "./scram-syntax.js";

export interface ScramClientOptions {
  /** Sent as a= in the GS2 header. */
  authzid?: string;
  /** Client nonce; default 18 random bytes in base64. Fixed values reproduce test vectors. */
  nonce?: string;
  /** GS2 channel binding flag; default 'n'. */
  gs2Flag?: "n" | "y";
}

interface ServerFirst {
  nonce: string;
  salt: Buffer;
  iterations: number;
}

/**
 * Client side of a SCRAM exchange, for tests and the load generator (the
 * server never needs it). Usage: first() -> send; final(serverFirst) or
 * finalAsync(serverFirst) -> send; verify(serverFinal) throws unless the
 * server proved it knows the ServerKey. Errors are SaslErrors or plain Errors.
 */
export class ScramClient {
  readonly mechanism: ScramMechanism;
  readonly gs2Header: string;
  readonly clientFirstBare: string;
  readonly clientNonce: string;
  private readonly password: string;
  private expectedServerSignature: Buffer | undefined;

  constructor(mechanism: ScramMechanism, username: string, password: string, opts: ScramClientOptions = {}) {
    if (!isScramMechanism(mechanism)) throw new TypeError(`not a SCRAM mechanism: ${String(mechanism)}`);
    this.mechanism = mechanism;
    // RFC 5802 §5.1: the username is a query string, the password a stored string.
    const user = saslprep(username, { allowUnassigned: true, what: "username" });
    this.password = saslprep(password, { what: "password" });
    this.clientNonce = opts.nonce ?? randomBytes(18).toString("base64");
    if (!isNonce(this.clientNonce)) throw new RangeError("client nonce must be printable ASCII without commas");
    const authz = opts.authzid === undefined ? "" : `a=${encodeSaslname(opts.authzid)}`;
    this.gs2Header = `${opts.gs2Flag ?? "n"},${authz},`;
    this.clientFirstBare = `n=${encodeSaslname(user)},r=${this.clientNonce}`;
  }

  /** The client-first-message. */
  first(): string {
    return this.gs2Header + this.clientFirstBare;
  }

  /** The client-final-message for this server-first-message (blocking PBKDF2). */
  final(serverFirst: string | Buffer): string {
    const text = decodeUtf8(serverFirst, "server-first-message");
    const sf = this.parseServerFirst(text);
    return this.finalFrom(text, sf, hi(this.mechanism, this.password, sf.salt, sf.iterations));
  }

  /** Like final(), with PBKDF2 on the thread pool so many clients can run at once. */
  async finalAsync(serverFirst: string | Buffer): Promise<string> {
    const text = decodeUtf8(serverFirst, "server-first-message");
    const sf = this.parseServerFirst(text);
    return this.finalFrom(text, sf, await hiAsync(this.mechanism, this.password, sf.salt, sf.iterations));
  }

  /** Check the server-final-message; throws on "e=" or a wrong server signature. */
  verify(serverFinal: string | Buffer): void {
    if (this.expectedServerSignature === undefined) throw new Error("verify() called before final()");
    const text = decodeUtf8(serverFinal, "server-final-message");
    if (text.startsWith("e=")) throw new Error(`server reported SCRAM error: ${text.slice(2)}`);
    const parts = text.split(",");
    const sig = decodeBase64Strict(attribute(parts[0], "v", "server-final-message"));
    checkExtensions(parts.slice(1), "server-final-message");
    if (sig === null || sig.length !== this.expectedServerSignature.length || !timingSafeEqual(sig, this.expectedServerSignature)) {
      throw new Error("server signature does not verify: the server does not know this credential");
    }
  }

  private parseServerFirst(text: string): ServerFirst {
    const parts = text.split(",");
    const nonce = attribute(parts[0], "r", "server-first-message");
    const saltText = attribute(parts[1], "s", "server-first-message");
    const itText = attribute(parts[2], "i", "server-first-message");
    checkExtensions(parts.slice(3), "server-first-message");
    // The server must extend our nonce, or it could replay an old exchange.
    if (!isNonce(nonce) || !nonce.startsWith(this.clientNonce) || nonce.length === this.clientNonce.length) {
      throw malformed("server-first-message: nonce does not extend the client nonce");
    }
    const salt = decodeBase64Strict(saltText);
    if (salt === null || salt.length === 0) throw malformed("server-first-message: bad salt");
    if (!/^[1-9][0-9]{0,9}$/.test(itText) || Number(itText) > 0x7fffffff) throw malformed("server-first-message: bad iteration count");
    return { nonce, salt, iterations: Number(itText) };
  }

  private finalFrom(serverFirst: string, sf: ServerFirst, saltedPassword: Buffer): string {
    const withoutProof = `c=${Buffer.from(this.gs2Header, "utf8").toString("base64")},r=${sf.nonce}`;
    const authMessage = `${this.clientFirstBare},${serverFirst},${withoutProof}`;
    const { clientKey, storedKey, serverKey } = keysFromSaltedPassword(this.mechanism, saltedPassword);
    const proof = xor(clientKey, hmac(this.mechanism, storedKey, authMessage));
    this.expectedServerSignature = hmac(this.mechanism, serverKey, authMessage);
    return `${withoutProof},p=${proof.toString("base64")}`;
  }
}
