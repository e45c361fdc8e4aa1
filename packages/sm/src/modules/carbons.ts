/**
 * Message Carbons (XEP-0280, `urn:xmpp:carbons:2`): a resource that enabled
 * carbons gets a copy of every chat message its user sends from another
 * resource (`<sent/>`) and of every one sent to the user that went to
 * another resource (`<received/>`), so that every device shows both sides.
 *
 * Where the copies are made: sent copies on `message/out` at the sender's
 * SM, received copies on `message/in` at the recipient's SM. Both are the
 * SM that owns the user, and that SM holds every session of the user
 * whichever c2s they are on, so the copies reach all of them whichever SM
 * the other party is on.
 *
 * "Enabled" is session data (saved with the session), so it survives a
 * takeover by another SM. Both hooks watch and pass (priority 5, below the
 * archive, which stamps stanza ids first, and above message.ts, which
 * delivers): they never stop a message.
 */
import { escapeAttr, type Element } from "@jabberfarm/xml";
import type { InboundEvent, OutboundEvent } from "../events.js";
import type { ModuleApi } from "../module-api.js";
import type { Session } from "../session.js";
import { bareTargets, messageType } from "./delivery-rules.js";

export const NS_CARBONS = "urn:xmpp:carbons:2";
const NS_FORWARD = "urn:xmpp:forward:0";
const NS_HINTS = "urn:xmpp:hints";
const NS_MUC_USER = "http://jabber.org/protocol/muc#user";
/** Session data key: this resource enabled carbons. */
const ENABLED = "carbons";
const CARBONS_PRIORITY = 5;

/**
 * Whether a message is copied (XEP-0280 §6): chat, or normal with a body;
 * not when it says `<private/>` or `<no-copy/>` (XEP-0334), not a carbon
 * itself, not a group chat private message (its room sends every joined
 * resource its own copy).
 */
export function eligible(stanza: Element): boolean {
  const type = messageType(stanza);
  if (type !== "chat" && (type !== "normal" || stanza.getChild("body") === undefined)) return false;
  for (const c of stanza.getChildren()) {
    if (c.ns === NS_CARBONS) return false; // private, or a carbon (sent/received) forwarded to us
    if (c.ns === NS_HINTS && c.local === "no-copy") return false;
    if (c.ns === NS_MUC_USER) return false;
  }
  return true;
}

/** The carbon of `raw` for one session: `<sent/>` or `<received/>` around the forwarded message. */
export function carbonText(direction: "sent" | "received", user: string, session: Session, type: string, raw: string): string {
  // The forwarded message goes in as its text (already explicit about jabber:client): no re-serialising.
  return `<message xmlns='jabber:client' from='${escapeAttr(user)}' to='${escapeAttr(session.full)}' type='${escapeAttr(type)}'>` +
    `<${direction} xmlns='${NS_CARBONS}'><forwarded xmlns='${NS_FORWARD}'>${raw}</forwarded></${direction}></message>`;
}

export function carbons(api: ModuleApi): void {
  api.addFeature(NS_CARBONS);

  api.on(`iq/self/${NS_CARBONS}`, ({ stanza, session }: OutboundEvent) => {
    const op = stanza.firstElement()!;
    if (stanza.attrs.type !== "set" || (op.local !== "enable" && op.local !== "disable")) {
      api.error(stanza, "bad-request", "expected a set of <enable/> or <disable/>");
      return true;
    }
    const on = op.local === "enable";
    if ((session.data.get(ENABLED) === true) !== on) {
      if (on) session.data.set(ENABLED, true);
      else session.data.delete(ENABLED);
      api.saveSession(session);
    }
    api.result(stanza);
    return true;
  });

  /** The user's other carbon-enabled resources; none (and no work) for most users. */
  function enabledOf(user: string, except: ReadonlySet<Session> | Session | undefined): Session[] {
    const out: Session[] = [];
    for (const s of api.sessions.of(user)) {
      if (s.data.get(ENABLED) !== true || s === except || (except instanceof Set && except.has(s))) continue;
      out.push(s);
    }
    return out;
  }

  // Sent: the user's other resources see what this one sent.
  api.on("message/out", ({ stanza, raw, session }: OutboundEvent) => {
    const copies = enabledOf(session.bare, session);
    if (copies.length === 0 || !eligible(stanza)) return false;
    // To the user's own account (bare JID or another resource) it comes back in as received; no sent copy on top.
    const to = stanza.attrs.to;
    if (to === undefined || to === session.bare || to.startsWith(`${session.bare}/`)) return false;
    const type = stanza.attrs.type ?? "normal";
    for (const s of copies) api.deliver(s, carbonText("sent", session.bare, s, type, raw));
    return false;
  }, CARBONS_PRIORITY);

  // Received: the resources the message does not go to see it anyway.
  api.on("message/in", ({ stanza, raw, user, to }: InboundEvent) => {
    const enabled = enabledOf(user, undefined);
    if (enabled.length === 0 || !eligible(stanza)) return false;
    // Who gets the message itself: the addressed resource, or (to the bare
    // JID, or a resource that is gone) what message.ts picks.
    const exact = to.resource === "" ? undefined : api.sessions.byFullJid(user, to.resource);
    const gets = new Set<Session>(exact ? [exact] : bareTargets(api, user));
    const type = stanza.attrs.type ?? "normal";
    for (const s of enabled) if (!gets.has(s)) api.deliver(s, carbonText("received", user, s, type, raw));
    return false;
  }, CARBONS_PRIORITY);
}
