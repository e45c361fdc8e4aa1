/**
 * Stanza text that modules write or keep: a child added to a stanza's text
 * as the sender wrote it (mam's stanza id), and XML a client handed over,
 * stored so that it reads back on its own (vCard, private XML). Not a
 * module: nothing here registers anything.
 */
import { Element, parseElement } from "@jabberfarm/xml";

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
