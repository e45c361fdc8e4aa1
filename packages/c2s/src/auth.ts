/**
 * One SASL exchange on a client stream (RFC 6120 §6): SCRAM-SHA-256,
 * SCRAM-SHA-1 or PLAIN, checked against the credentials storage keeps for
 * the account. Usernames are JID localparts.
 */
import { Jid } from "@jabberfarm/jid";
import { randomBytes } from "node:crypto";
import { humanDuration } from "./bans.js";
import {
  SaslError, ScramServer, deriveCredentialAsync, isScramMechanism, parsePlain, verifyPlainAsync,
  type ScramCredential, type ScramMechanism,
} from "@jabberfarm/sasl";

export type Mechanism = ScramMechanism | "PLAIN";

/** In order of preference, as advertised. */
export const MECHANISMS: readonly Mechanism[] = ["SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"];

export function isMechanism(name: string | undefined): name is Mechanism {
  return name === "PLAIN" || isScramMechanism(name);
}

export interface CredentialSource {
  getCredentials(user: string): Promise<ScramCredential[] | null>;
}

export interface SaslOptions {
  domain: string;
  storage: CredentialSource;
  /** Keys the fake salts shown for unknown users (see ScramServer). */
  scramSecret: Buffer;
  /** How long the account (bare JID) is still locked after too many failures; 0 when it is not (bans.ts). */
  accountBannedFor?(account: string): number;
  /** One PLAIN check costs a PBKDF2 derivation: false when this process has spent its budget for now. */
  takePbkdf2?(): boolean;
}

/**
 * A refusal of ours rather than a failed check (a locked account, the PBKDF2
 * budget spent): answered at once, with its message as the failure's text.
 */
export class SaslRefusal extends SaslError {}

export type SaslStep =
  | { type: "challenge"; data: string }
  | { type: "success"; data: string | undefined; user: Jid };

/** The account a SASL username names, or null when it cannot be a localpart of ours. */
export function accountFor(username: string, domain: string): Jid | null {
  // Jid.of reads an empty localpart as "none": that would be the domain itself.
  if (username === "") return null;
  try {
    return Jid.of(username, domain);
  } catch {
    return null;
  }
}

/** RFC 6120 §6.3.8: an authzid, when given, must be the account that authenticated. */
function checkAuthzid(authzid: string | undefined, user: Jid): void {
  if (authzid === undefined) return;
  const wanted = Jid.tryParse(authzid);
  if (wanted === null || !wanted.equals(user)) throw new SaslError("invalid-authzid", "authzid is not the authenticated account");
}

let decoy: Promise<ScramCredential> | undefined;

/**
 * A credential nobody knows the password of. PLAIN for an unknown user is
 * checked against it, so that the answer takes as long as for a real
 * account and timing does not tell which names exist.
 */
function decoyCredential(): Promise<ScramCredential> {
  decoy ??= deriveCredentialAsync("SCRAM-SHA-256", randomBytes(24).toString("base64"));
  return decoy;
}

export class SaslExchange {
  private started = false;
  private finished = false;
  private readonly scram: ScramServer | undefined;
  /** The claimed username, for logs of failed attempts. */
  attempted: string | undefined;

  constructor(readonly mechanism: Mechanism, private readonly opts: SaslOptions) {
    if (isScramMechanism(mechanism)) {
      this.scram = new ScramServer(mechanism, (username, mech) => this.lookup(username, mech), { secret: opts.scramSecret });
    }
  }

  private async lookup(username: string, mechanism: ScramMechanism): Promise<ScramCredential | null> {
    const user = accountFor(username, this.opts.domain);
    if (user === null) return null;
    this.refuseLocked(user);
    const creds = await this.opts.storage.getCredentials(user.toString());
    return creds?.find((c) => c.mechanism === mechanism) ?? null;
  }

  /**
   * The next message from the client: the initial response of `<auth/>`
   * (null when it carried none) or a `<response/>`. Throws SaslError.
   */
  async step(data: Buffer | null): Promise<SaslStep> {
    if (this.finished) throw new SaslError("malformed-request", "the exchange is over");
    if (!this.started) {
      // No initial response: the client waits for an empty challenge (RFC 6120 §6.4.2).
      if (data === null) return { type: "challenge", data: "" };
      this.started = true;
      if (this.scram) return { type: "challenge", data: await this.scram.start(data) };
      this.finished = true;
      return this.plain(data);
    }
    if (!this.scram || data === null) throw new SaslError("malformed-request", "unexpected response");
    this.finished = true;
    const serverFinal = this.scram.finish(data);
    this.attempted = this.scram.username;
    const user = accountFor(this.scram.username, this.opts.domain);
    // The lookup refused such names, so finish() cannot have succeeded for one.
    if (user === null) throw new SaslError("not-authorized", "authentication failed");
    checkAuthzid(this.scram.authzid, user);
    return { type: "success", data: serverFinal, user };
  }

  get claimedUsername(): string | undefined {
    return this.attempted ?? this.scram?.attemptedUsername;
  }

  /** Before any storage or PBKDF2 work for a locked account. */
  private refuseLocked(user: Jid): void {
    const left = this.opts.accountBannedFor?.(user.toString()) ?? 0;
    if (left > 0) throw new SaslRefusal("temporary-auth-failure", `too many failed attempts for this account; try again in ${humanDuration(left)}`);
  }

  private async plain(data: Buffer): Promise<SaslStep> {
    const msg = parsePlain(data);
    this.attempted = msg.authcid;
    const user = accountFor(msg.authcid, this.opts.domain);
    if (user !== null) this.refuseLocked(user);
    if (this.opts.takePbkdf2?.() === false) throw new SaslRefusal("temporary-auth-failure", "the server is busy checking passwords; try again in a moment");
    let creds: ScramCredential[] | null = null;
    if (user !== null) {
      try {
        creds = await this.opts.storage.getCredentials(user.toString());
      } catch (err) {
        throw new SaslError("temporary-auth-failure", "credential lookup failed", { cause: err });
      }
    }
    // Either credential proves the password; the stronger one first.
    const cred = creds?.find((c) => c.mechanism === "SCRAM-SHA-256") ?? creds?.[0];
    let ok = false;
    try {
      ok = await verifyPlainAsync(msg.password, cred ?? (await decoyCredential()));
    } catch (err) {
      if (err instanceof SaslError) throw err;
      throw new SaslError("temporary-auth-failure", "stored credential is unusable", { cause: err });
    }
    if (!ok || !cred || !user) throw new SaslError("not-authorized", "authentication failed");
    checkAuthzid(msg.authzid, user);
    return { type: "success", data: undefined, user };
  }
}
