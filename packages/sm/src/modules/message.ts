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
import { Jid } from "@jabberfarm/jid";
import type { InboundEvent } from "../hooks.js";
import type { ModuleApi } from "../sm.js";
import { deliverable, messageType } from "./shared.js";

export function message(api: ModuleApi): void {
  api.on("message/out", ({ stanza, raw, session }) => {
    const to = stanza.attrs.to;
    if (to === undefined) {
      // RFC 6120 §10.3.1: no 'to' means the sender's own bare JID. Sending it
      // back through the router runs the ordinary inbound path for it; the
      // rewrite costs a serialisation, but only on this rare path.
      stanza.setAttr("to", session.bare);
      api.send(stanza);
      return true;
    }
    if (Jid.tryParse(to) === null) {
      api.error(stanza, "jid-malformed");
      return true;
    }
    api.send(raw, stanza);
    return true;
  });

  api.on("message/in", async (event) => deliver(api, event));
}

async function deliver(api: ModuleApi, { stanza, raw, user, to }: InboundEvent): Promise<boolean> {
  if (to.resource !== "") {
    const s = api.sessions.byFullJid(user, to.resource);
    if (s) {
      api.toSession(s, raw);
      return true;
    }
  }
  const type = messageType(stanza);
  // Errors are never answered (RFC 6120 §8.3.1), and only an exact full JID gets them.
  if (type === "error") return true;
  if (!(await api.accountExists(user))) {
    api.error(stanza, "service-unavailable");
    return true;
  }
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
    for (const s of targets) api.toSession(s, raw);
    return true;
  }
  if (targets.length === 0) return false; // offline.ts, or the core's service-unavailable
  let top = -Infinity;
  for (const s of targets) if (s.priority > top) top = s.priority;
  // Every resource that shares the highest priority gets it: clients then
  // agree on the conversation rather than one of them winning at random.
  for (const s of targets) if (s.priority === top) api.toSession(s, raw);
  return true;
}
