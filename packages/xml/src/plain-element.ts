/**
 * A quick reader for the common case of what clients send: one complete
 * top-level element in plain XML. saxes reads a character at a time through
 * a state table; on the message path that was about a third of the c2s's
 * CPU (docs/performance.md, "Client XML: a quick reader before saxes").
 * This reader scans with native string searches and sticky regular
 * expressions instead, and checks everything well-formedness and restricted
 * XML ask of the subset it accepts:
 *
 * - ASCII names without prefixes; attributes `xmlns` and `xml:*` only
 *   besides unprefixed ones; no duplicate attribute;
 * - only XML characters, no CR at all (CR needs end-of-line handling),
 *   no tab or line feed inside attribute values (they need normalising);
 * - the five predefined entities and character references to XML
 *   characters, nothing else after `&`; no `<` in attribute values, no
 *   `]]>` in text;
 * - no comment, PI, CDATA section or DOCTYPE;
 * - the element complete in the text given, within the depth, attribute
 *   and size limits, with every end tag matching its start tag.
 *
 * Anything else is not refused here but declined (`undefined`): the stream
 * parser then gives the same text to saxes, which accepts it or answers
 * with the right stream error. So this reader never decides that input is
 * bad, only that it is plainly good, and it must then build exactly the
 * element saxes would have built (the differential test in
 * plain-element.test.ts holds it to that).
 */
import { Element } from "./element.js";
import { NS } from "./namespaces.js";
import type { ParserLimits } from "./parser.js";

export interface PlainElementOptions {
  /** The default namespace in force at the top level (the stream header's). */
  contentNs: string;
  /** Build elements as canonicalElement would (canonical.ts). */
  canonical: boolean;
  /** Build only the top-level element (its children are checked, not kept). */
  shallow: boolean;
  limits: ParserLimits;
}

export interface PlainElement {
  el: Element;
  /** Index just past the element's end in the text. */
  end: number;
}

// Any character that is not allowed here: outside XML's Char production,
// CR, or a lone surrogate (the `u` flag reads pairs as one code point).
const NOT_PLAIN_CHAR = /[^\t\n\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;
const NAME = /[A-Za-z_][A-Za-z0-9._-]*/y;
// White space, then an attribute: an optional xml: prefix, the name, = and a quoted value without < (or tab, LF).
const ATTRIBUTE = /[ \t\n]+(xml:)?([A-Za-z_][A-Za-z0-9._-]*)[ \t\n]*=[ \t\n]*(?:'([^'<\t\n]*)'|"([^"<\t\n]*)")/y;
const TAG_CLOSE = /[ \t\n]*(\/?)>/y;
const END_TAG_REST = /[ \t\n]*>/y;
const REFERENCE = /&(?:(amp)|(lt)|(gt)|(quot)|(apos)|#([0-9]{1,7})|#x([0-9a-fA-F]{1,6}));/y;

const XMLNS_NS = "http://www.w3.org/2000/xmlns/";

function isXmlChar(c: number): boolean {
  return c === 0x9 || c === 0xa || c === 0xd || (c >= 0x20 && c <= 0xd7ff) || (c >= 0xe000 && c <= 0xfffd) || (c >= 0x10000 && c <= 0x10ffff);
}

/** Replaces references in `s` (text or an attribute value), or undefined when one is not plain. */
function unescape(s: string): string | undefined {
  let amp = s.indexOf("&");
  if (amp < 0) return s;
  let out = "";
  let from = 0;
  while (amp >= 0) {
    REFERENCE.lastIndex = amp;
    const m = REFERENCE.exec(s);
    if (m === null) return undefined;
    out += s.slice(from, amp);
    if (m[1] !== undefined) out += "&";
    else if (m[2] !== undefined) out += "<";
    else if (m[3] !== undefined) out += ">";
    else if (m[4] !== undefined) out += '"';
    else if (m[5] !== undefined) out += "'";
    else {
      const code = m[6] !== undefined ? parseInt(m[6], 10) : parseInt(m[7]!, 16);
      if (!isXmlChar(code)) return undefined;
      out += String.fromCodePoint(code);
    }
    from = REFERENCE.lastIndex;
    amp = s.indexOf("&", from);
  }
  return out + s.slice(from);
}

/**
 * Reads the element starting at `start` (a `<`) in `text`. Returns the
 * element and where it ends, or undefined when it is not complete in
 * `text` or not plain (see above): the caller then parses it fully.
 */
export function readPlainElement(text: string, start: number, o: PlainElementOptions): PlainElement | undefined {
  const { limits } = o;
  // Elements larger than a third of the byte limit go to the full parser, which counts their bytes.
  const stop = Math.min(text.length, start + Math.floor(limits.maxStanzaBytes / 3));
  const stack: Element[] = [];
  /** The default namespace in force inside each open element. */
  const defaults: string[] = [];
  let root: Element | undefined;
  let i = start;
  while (i < stop) {
    if (text.charCodeAt(i) !== 0x3c /* < */) {
      // Character data up to the next tag (there is always an open element here).
      const lt = text.indexOf("<", i);
      if (lt < 0 || lt >= stop) return undefined;
      const raw = text.slice(i, lt);
      if (raw.includes("]]>")) return undefined;
      const value = unescape(raw);
      if (value === undefined) return undefined;
      // Shallow, as the stream parser: text directly in the top-level element is kept, nothing deeper.
      if (!o.shallow || stack.length === 1) stack[stack.length - 1]!.children.push(value);
      i = lt;
      continue;
    }
    const next = text.charCodeAt(i + 1);
    if (next === 0x2f /* / */) {
      NAME.lastIndex = i + 2;
      const m = NAME.exec(text);
      const el = stack.pop();
      if (m === null || el === undefined || m[0] !== el.name) return undefined;
      END_TAG_REST.lastIndex = NAME.lastIndex;
      if (END_TAG_REST.exec(text) === null || END_TAG_REST.lastIndex > stop) return undefined;
      defaults.pop();
      i = END_TAG_REST.lastIndex;
      if (stack.length === 0) {
        root = el;
        break;
      }
      continue;
    }
    // A start tag.
    NAME.lastIndex = i + 1;
    const m = NAME.exec(text);
    if (m === null) return undefined;
    const name = m[0];
    // Names beginning with "xml" are reserved; and ":" after the name would make it a prefix.
    if ((name.length >= 3 && name.slice(0, 3).toLowerCase() === "xml") || text.charCodeAt(NAME.lastIndex) === 0x3a) return undefined;
    if (stack.length + 1 > limits.maxDepth) return undefined;
    let at = NAME.lastIndex;
    const attrs: Record<string, string> = {};
    let count = 0;
    let declared: string | undefined;
    for (;;) {
      ATTRIBUTE.lastIndex = at;
      const a = ATTRIBUTE.exec(text);
      if (a === null) break;
      const value = unescape(a[3] ?? a[4]!);
      if (value === undefined) return undefined;
      const local = a[2]!;
      let key: string;
      if (a[1] !== undefined) key = `xml:${local}`;
      else if (local === "xmlns") {
        // saxes trims a namespace name before it checks and uses it: leave such values to it.
        if (value !== value.trim() || value === NS.XML || value === XMLNS_NS) return undefined;
        declared = value;
        key = local;
      } else {
        if (local.length >= 3 && local.slice(0, 3).toLowerCase() === "xml") return undefined;
        key = local;
      }
      // A duplicate is an error for saxes to report. (`in` also declines names
      // of Object.prototype's members, such as __proto__: saxes's path keeps them.)
      if (key in attrs) return undefined;
      attrs[key] = value;
      count++;
      at = ATTRIBUTE.lastIndex;
    }
    if (count > limits.maxAttributes) return undefined;
    TAG_CLOSE.lastIndex = at;
    const close = TAG_CLOSE.exec(text);
    if (close === null || TAG_CLOSE.lastIndex > stop) return undefined;
    const parentDefault = defaults.length === 0 ? o.contentNs : defaults[defaults.length - 1]!;
    const uri = declared ?? parentDefault;
    const parent = stack[stack.length - 1];
    let el: Element;
    if (o.canonical) {
      // canonicalElement: the namespace as xmlns where it changes (always at the top), then the rest in order.
      const canonical: Record<string, string> = {};
      if (parent === undefined || uri !== parent.uri) canonical.xmlns = uri;
      for (const k in attrs) if (k !== "xmlns") canonical[k] = attrs[k]!;
      el = new Element(name, canonical, [], uri);
    } else {
      el = new Element(name, attrs, [], uri);
    }
    if (parent !== undefined && !o.shallow) parent.children.push(el);
    i = TAG_CLOSE.lastIndex;
    if (close[1] === "/") {
      if (parent === undefined) {
        root = el;
        break;
      }
    } else {
      stack.push(el);
      defaults.push(uri);
    }
  }
  // One pass over the whole element for characters this reader does not take (CR, controls, lone surrogates).
  if (root === undefined || NOT_PLAIN_CHAR.test(text.slice(start, i))) return undefined;
  return { el: root, end: i };
}
