/**
 * In-band registration (XEP-0077) for a logged-in user: read the
 * registration, change the password, cancel the account. Creating accounts
 * happens in c2s before authentication, never here.
 */
import { prepLocalpart } from "@jabberfarm/jid";
import { deriveCredentialsAsync, SaslError } from "@jabberfarm/sasl";
import { xml, type Element } from "@jabberfarm/xml";
import type { ModuleApi } from "../module-api.js";
import type { Session } from "../session.js";

const NS_REGISTER = "jabber:iq:register";

/** The username as the server would store it, or null when it cannot be one. */
function preppedUsername(raw: string): string | null {
  try {
    return prepLocalpart(raw);
  } catch {
    return null;
  }
}

export function register(api: ModuleApi): void {
  api.addFeature(NS_REGISTER);

  const handle = async (stanza: Element, session: Session | undefined): Promise<boolean> => {
    const query = stanza.firstElement();
    // Only a session of ours is "registered" with us; anyone else has nothing to manage here.
    if (session === undefined || query === undefined || query.local !== "query") return false;
    const user = session.bare;
    if (stanza.attrs.type === "get") {
      api.result(stanza, xml("query", { xmlns: NS_REGISTER }, xml("registered"), xml("username", {}, session.jid.local)));
      return true;
    }
    if (query.getChild("remove", NS_REGISTER) !== undefined) {
      await cancel(stanza, session);
      return true;
    }
    const username = query.getChildText("username", NS_REGISTER);
    const password = query.getChildText("password", NS_REGISTER);
    if (username === undefined || password === undefined) {
      api.error(stanza, "bad-request", "expected <remove/>, or <username/> and <password/>");
      return true;
    }
    if (!api.config.registration.passwordChange) {
      api.error(stanza, "not-allowed", "password changes are disabled");
      return true;
    }
    if (preppedUsername(username) !== session.jid.local) {
      api.error(stanza, "bad-request", "the username is not this account's");
      return true;
    }
    let credentials;
    try {
      // On the thread pool: PBKDF2 would otherwise stall every user of this SM.
      credentials = await deriveCredentialsAsync(password);
    } catch (err) {
      if (!(err instanceof SaslError)) throw err;
      api.error(stanza, "not-acceptable", "the password is empty or contains characters a password may not");
      return true;
    }
    if (!(await api.storage.setCredentials(user, credentials))) {
      api.error(stanza, "not-authorized", "the account is gone");
      return true;
    }
    api.log.info({ user, sid: session.sid }, "password changed in band");
    api.result(stanza);
    return true;
  };

  const cancel = async (stanza: Element, session: Session): Promise<void> => {
    if (!api.config.registration.cancel) {
      api.error(stanza, "not-allowed", "account removal is disabled");
      return;
    }
    const user = session.bare;
    // Deleted before the answer, so a result always means the data is gone.
    await api.storage.deleteAccount(user);
    api.log.info({ user, sid: session.sid }, "account removed in band");
    api.result(stanza);
    // XEP-0077 §3.2: every session of a removed account ends with not-authorized,
    // after the result: it is queued for the user like any stanza, so the
    // kicks queue behind it.
    void api.serial(user, async () => {
      for (const s of api.sessions.of(user)) await api.kick(s, "not-authorized", "the account was removed");
      await api.userDeleted(user);
    });
  };

  api.on(`iq/host/${NS_REGISTER}`, ({ stanza, session }) => handle(stanza, session));
  api.on(`iq/self/${NS_REGISTER}`, ({ stanza, session }) => handle(stanza, session));
}
