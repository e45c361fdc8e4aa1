/**
 * Offline messages (RFC 6121 §8.5.2.2.1, XEP-0160): chat and normal messages
 * for a user with no available resource are stored in the module's archive
 * "offline", stamped with an XEP-0203 delay, and handed to the first session
 * that sends initial presence with a non-negative priority. The archive is
 * bounded per user by count and bytes (`offline.limit`, `offline.maxBytes`).
 *
 * It sits on `message/in` below message.ts (OFFLINE_PRIORITY): message.ts
 * declines exactly the messages that found nobody to deliver to, and they
 * fall through to here. Unloading this module leaves the core's default,
 * service-unavailable, in place.
 */
import { createHash } from "node:crypto";
import { escapeAttr, xml, type Element } from "@jabberfarm/xml";
import type { InboundEvent } from "../events.js";
import type { AppendOutcome, ArchiveStore } from "../module-store.js";
import type { ModuleApi } from "../module-api.js";
import { isUnknownAccount } from "../module-store.js";
import { deliverable, messageType } from "./delivery-rules.js";

/** Below every handler that delivers; above nothing but the core's default. */
export const OFFLINE_PRIORITY = -100;

const NS_DELAY = "urn:xmpp:delay";
const NS_HINTS = "urn:xmpp:hints";
const NS_CHATSTATES = "http://jabber.org/protocol/chatstates";

/**
 * Whether a message is worth keeping: a typing notification is stale by the
 * time anyone reads it (XEP-0085 §5.5), and `<no-store/>` (XEP-0334) asks us not to.
 */
export function worthStoring(stanza: Element): boolean {
  let content = false;
  for (const c of stanza.getChildren()) {
    if (c.ns === NS_HINTS) {
      if (c.local === "no-store") return false;
      if (c.local === "store") content = true;
      continue;
    }
    if (c.ns === NS_CHATSTATES) continue;
    content = true;
  }
  return content;
}

/**
 * The stanza's text with our delay added before its closing tag, so the rest
 * of the text stays byte for byte what the sender's server wrote.
 */
export function withDelay(stanza: Element, raw: string, domain: string, now: Date = new Date()): string {
  const ours = stanza.getChildren("delay", NS_DELAY).some((d) => d.attrs.from === domain);
  if (ours) return raw;
  const stamp = now.toISOString();
  const delay = `<delay xmlns='${NS_DELAY}' from='${escapeAttr(domain)}' stamp='${stamp}'>Offline Storage</delay>`;
  const text = raw.trimEnd();
  const close = `</${stanza.name}>`;
  if (text.endsWith(close)) return text.slice(0, text.length - close.length) + delay + close;
  if (text.endsWith("/>")) return text.slice(0, -2) + ">" + delay + close;
  // Not the shape a parsed element's text has; rebuild rather than guess.
  const copy = stanza.clone();
  if (copy.attrs.xmlns === undefined) copy.attrs.xmlns = "jabber:client";
  return copy.append(xml("delay", { xmlns: NS_DELAY, from: domain, stamp }, "Offline Storage")).toString();
}

/**
 * The id an offline message is stored under when it has one of its own: a
 * route redelivered after an SM died (at least once, docs/envelope.md)
 * brings the very same text from the very same sender, and the archive
 * keeps an id once. Messages without an id are stored as often as they come.
 */
export function offlineItemId(stanza: Element, raw: string, from: string): string | undefined {
  if (stanza.attrs.id === undefined) return undefined;
  return `h${createHash("sha256").update(from).update("\u0000").update(raw).digest("base64url").slice(0, 32)}`;
}

export function offline(api: ModuleApi): void {
  api.addFeature("msgoffline");
  const limits = api.config.offline;
  const queue = api.openArchive("offline", { maxItems: limits.limit, maxBytes: limits.maxBytes, onFull: "refuse" });

  api.on("message/in", async (event) => store(api, queue, event), OFFLINE_PRIORITY);

  api.on("presence/initial", async ({ session }) => {
    if (session.priority < 0) return;
    const user = session.bare;
    let count = 0;
    // Page by page, each acknowledged (deleted) only after it was sent: a
    // crash in between redelivers that page, never loses it, and no answer
    // from storage is ever larger than a page.
    for (;;) {
      const page = await queue.query(user, { limit: limits.pageMessages, maxBytes: limits.pageBytes });
      const last = page.items[page.items.length - 1];
      if (last === undefined) break;
      // Still bound? This runs in the user's queue, so the answer holds until we are done.
      if (api.sessions.get(session.sid) !== session) break;
      for (const m of page.items) api.deliver(session, m.value);
      await queue.delete(user, { upTo: last.id });
      count += page.items.length;
      if (page.complete) break;
    }
    if (count > 0) api.log.debug({ user, sid: session.sid, count }, "offline messages delivered");
  });
}

async function store(api: ModuleApi, queue: ArchiveStore, { stanza, raw, user, to, from }: InboundEvent): Promise<boolean> {
  const type = messageType(stanza);
  if (type !== "chat" && type !== "normal") return false;
  // Only what found nobody: message.ts declines exactly that, but stay right without it.
  if (to.resource !== "" && api.sessions.byFullJid(user, to.resource)) return false;
  if (deliverable(api, user).length > 0) return false;
  if (!worthStoring(stanza)) return true;
  let stored: AppendOutcome;
  try {
    const id = offlineItemId(stanza, raw, from.toString());
    stored = await queue.append(user, withDelay(stanza, raw, api.domain), { with: from.bareString(), ...(id === undefined ? {} : { id }) });
  } catch (err) {
    if (isUnknownAccount(err)) {
      api.error(stanza, "service-unavailable");
      return true;
    }
    // The sender should learn the message went nowhere; a write that timed
    // out may still have happened, which at worst delivers it once and bounces it once.
    api.log.error({ err, user, from: stanza.attrs.from }, "offline storage failed");
    api.error(stanza, "internal-server-error");
    return true;
  }
  if (!stored.ok) {
    // RFC 6121 §8.5.2.2.1 lets a full store answer like no store at all.
    api.log.info({ user, from: stanza.attrs.from, limit: stored.limit }, "offline storage full; message bounced");
    api.error(stanza, "service-unavailable", "offline storage is full");
  }
  return true;
}
