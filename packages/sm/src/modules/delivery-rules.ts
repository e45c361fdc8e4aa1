/**
 * RFC 6121's delivery rules that several modules apply (message, carbons,
 * offline, mam): what a message's type means and which sessions a message
 * to the bare JID goes to. Not a module: nothing here registers anything.
 */
import type { Element } from "@jabberfarm/xml";
import type { ModuleApi } from "../module-api.js";
import type { Session } from "../session.js";

export type MessageType = "normal" | "chat" | "groupchat" | "headline" | "error";

/** RFC 6121 §5.2.2: no type, or one we do not know, means normal. */
export function messageType(stanza: Element): MessageType {
  const t = stanza.attrs.type;
  return t === "chat" || t === "groupchat" || t === "headline" || t === "error" ? t : "normal";
}

/** The sessions a message to the bare JID may go to: available, priority >= 0 (RFC 6121 §8.5.2.1.1). */
export function deliverable(api: ModuleApi, user: string): Session[] {
  return api.sessions.available(user).filter((s) => s.priority >= 0);
}

/**
 * The sessions a chat or normal message to the bare JID goes to (RFC 6121
 * §8.5.2.1.1): every deliverable one that shares the highest priority.
 */
export function bareTargets(api: ModuleApi, user: string): Session[] {
  const targets = deliverable(api, user);
  let top = -Infinity;
  for (const s of targets) if (s.priority > top) top = s.priority;
  return targets.filter((s) => s.priority === top);
}
