/**
 * XEP-0077 in-band registration before authentication: the form, and an
 * account created with SCRAM keys derived from the password (never stored),
 * at most `registration.perIpLimit` per address and window.
 */
import { SaslError, deriveCredentialsAsync, type ScramCredential } from "@jabberfarm/sasl";
import { xml, type Element, type StanzaErrorCondition, type StanzaErrorType } from "@jabberfarm/xml";
import { accountFor } from "./auth.js";
import { NS_REGISTER } from "./client-context.js";
import type { ClientStream } from "./client-stream.js";

class RegistrationError extends Error {
  constructor(readonly condition: StanzaErrorCondition, message: string, readonly type?: StanzaErrorType) {
    super(message);
  }
}

export class InBandRegistration {
  constructor(private readonly stream: ClientStream) {}

  onIq(iq: Element): void {
    const stream = this.stream;
    const { registration } = stream.ctx.config;
    if (!registration.allow) {
      stream.stanzaError(iq, "service-unavailable", { text: "in-band registration is disabled" });
      return;
    }
    if (iq.attrs.type === "get") {
      stream.iqResult(iq, xml("query", { xmlns: NS_REGISTER },
        xml("instructions", {}, `Choose a username and password to register with ${stream.ctx.domain}.`),
        xml("username"), xml("password")));
      return;
    }
    if (iq.attrs.type !== "set") {
      stream.stanzaError(iq, "bad-request");
      return;
    }
    stream.setBusy(true);
    void this.register(iq).then(
      () => {
        if (stream.conn.isOpen) stream.iqResult(iq);
      },
      (err: unknown) => {
        if (!stream.conn.isOpen) return;
        if (err instanceof RegistrationError) {
          stream.stanzaError(iq, err.condition, { text: err.message, ...(err.type ? { type: err.type } : {}) });
        } else {
          stream.log.error({ err }, "registration failed");
          stream.stanzaError(iq, "internal-server-error", { type: "wait" });
        }
      },
    ).finally(() => stream.setBusy(false)).catch((err: unknown) => stream.crashed(err));
  }

  private async register(iq: Element): Promise<void> {
    const { ctx, ip, log } = this.stream;
    const query = iq.getChild("query", NS_REGISTER)!;
    if (query.getChild("remove")) throw new RegistrationError("not-allowed", "authenticate to cancel an account");
    const username = query.getChildText("username");
    const password = query.getChildText("password");
    if (!username || !password) throw new RegistrationError("not-acceptable", "username and password are required");
    const user = accountFor(username, ctx.domain);
    if (user === null) throw new RegistrationError("not-acceptable", "the username is not a valid JID localpart");
    if (ctx.registrations.count(ip) >= ctx.config.registration.perIpLimit) {
      log.warn({ user: user.toString() }, "registration refused: too many from this address");
      throw new RegistrationError("resource-constraint", "too many registrations from your address; try later", "wait");
    }
    let credentials: ScramCredential[];
    try {
      credentials = await deriveCredentialsAsync(password);
    } catch (err) {
      if (err instanceof SaslError) throw new RegistrationError("not-acceptable", "the password is not acceptable");
      throw err;
    }
    if (!(await ctx.storage.createAccount(user.toString(), credentials))) {
      throw new RegistrationError("conflict", "the username is taken");
    }
    ctx.registrations.add(ip);
    log.info({ user: user.toString() }, "account registered");
  }
}
