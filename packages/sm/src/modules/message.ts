/**
 * Message routing (RFC 6121 §8.5): outbound messages go on their way as they
 * are; inbound messages to one of our users reach the right resources.
 *
 * Offline storage is not decided here. When a chat or normal message finds no
 * available resource with a non-negative priority, this handler declines the
 * event (returns false), so `message/in` goes on to lower-priority handlers:
 * offline.ts listens there (OFFLINE_PRIORITY) and stores it. Without it the
 * core's default answers such a message with service-unavailable, which is
 * exactly RFC 6121 §8.5.2.2.1 for a server without offline storage.
 */
import type { Element } from "@jabberfarm/xml";
import type { InboundEvent } from "../events.js";
import type { ModuleApi } from "../module-api.js";
import { bareTargets, deliverable, messageType, type MessageType } from "./delivery-rules.js";

export function message(api: ModuleApi): void {
  // Outbound messages need nothing of this module: the core routes a
  // session's message by its `to` (and to the sender's bare JID without one).
  api.on("message/in", (event) => deliver(api, event));
}

/** Synchronous for a recipient who is online (the hot path); storage is asked only about one who is not. */
function deliver(api: ModuleApi, { stanza, raw, user, to }: InboundEvent): boolean | Promise<boolean> {
  if (to.resource !== "") {
    const s = api.sessions.byFullJid(user, to.resource);
    if (s) {
      api.deliver(s, stanza, raw);
      return true;
    }
  }
  const type = messageType(stanza);
  // Errors are never answered (RFC 6120 §8.3.1), and only an exact full JID gets them.
  if (type === "error") return true;
  if (api.sessions.isOnline(user)) return deliverToUser(api, stanza, raw, user, type);
  return api.accountExists(user).then((exists) => {
    if (exists) return deliverToUser(api, stanza, raw, user, type);
    api.error(stanza, "service-unavailable");
    return true;
  });
}

function deliverToUser(api: ModuleApi, stanza: Element, raw: string, user: string, type: MessageType): boolean {
  // Groupchat traffic belongs to one joined resource; for a resource that is
  // gone, or a bare JID, the room must learn of it (RFC 6121 §8.5.3.2.1, §8.5.2.1.1).
  if (type === "groupchat") {
    api.error(stanza, "service-unavailable");
    return true;
  }
  // From here on an unbound full JID is treated as the bare JID (§8.5.3.2.1).
  const targets = deliverable(api, user);
  if (type === "headline") {
    // Headlines are not worth storing or bouncing (§8.5.2.1.1, §8.5.2.2.1).
    for (const s of targets) api.deliver(s, stanza, raw);
    return true;
  }
  if (targets.length === 0) return false; // offline.ts, or the core's service-unavailable
  // Every resource that shares the highest priority gets it: clients then
  // agree on the conversation rather than one of them winning at random.
  for (const s of bareTargets(api, user)) api.deliver(s, stanza, raw);
  return true;
}
