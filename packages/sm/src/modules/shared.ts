/**
 * Small helpers several modules use. Not a module: nothing here registers
 * anything, so any module file can be deleted without touching the others.
 */
import { UnknownAccountError, XdbRequestError } from "@jabberfarm/xdb";
import { Element, parseElement } from "@jabberfarm/xml";
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

/**
 * A stanza's text with `child` (serialised) added as its last child, the rest
 * byte for byte as it was: cheaper than serialising the element again, and
 * what the sender's server wrote stays as it wrote it.
 */
export function withChild(stanza: Element, raw: string, child: string): string {
  const text = raw.trimEnd();
  const close = `</${stanza.name}>`;
  if (text.endsWith(close)) return text.slice(0, text.length - close.length) + child + close;
  if (text.endsWith("/>")) return text.slice(0, -2) + ">" + child + close;
  // Not the shape a parsed element's text has: rebuild rather than guess.
  const copy = stanza.clone();
  if (copy.attrs.xmlns === undefined) copy.attrs.xmlns = "jabber:client";
  return copy.append(parseElement(child)).toString();
}

/** Storage said the account is gone, whether it is in process or behind xdb (which maps it to item-not-found). */
export function isUnknownAccount(err: unknown): boolean {
  return err instanceof UnknownAccountError || (err instanceof XdbRequestError && err.condition === "item-not-found");
}

/** Prefixes that attribute names in the subtree use: the only declarations still needed once elements lose theirs. */
function attributePrefixes(el: Element, into: Set<string>): Set<string> {
  for (const k in el.attrs) {
    const i = k.indexOf(":");
    if (i > 0 && !k.startsWith("xmlns:")) into.add(k.slice(0, i));
  }
  for (const c of el.children) if (typeof c !== "string") attributePrefixes(c, into);
  return into;
}

/**
 * A copy of a parsed subtree that reads the same on its own: prefixes become
 * plain names with `xmlns` written wherever the namespace changes, so
 * declarations made on the enclosing iq are not needed any more.
 */
function detached(el: Element, parentNs: string | undefined, keep: Set<string>): Element {
  const ns = el.ns;
  const attrs: Record<string, string> = {};
  for (const k in el.attrs) {
    if (k === "xmlns" || (k.startsWith("xmlns:") && !keep.has(k.slice(6)))) continue;
    attrs[k] = el.attrs[k]!;
  }
  if (ns !== parentNs) attrs.xmlns = ns;
  return new Element(el.local, attrs, el.children.map((c) => (typeof c === "string" ? c : detached(c, ns, keep))));
}

/**
 * The text to store for an element a client handed us (vCard, private XML),
 * or null when it would not read back: a namespaced attribute whose prefix was
 * declared outside it, say. Storing only what parses again means a later get
 * cannot fail on it.
 */
export function storableXml(el: Element): string | null {
  const text = detached(el, undefined, attributePrefixes(el, new Set())).toString();
  try {
    parseElement(text);
  } catch {
    return null;
  }
  return text;
}

/** Reads stored XML back; its root carries its own xmlns, so the stream namespace given does not matter. */
export function storedElement(text: string): Element {
  return parseElement(text);
}
