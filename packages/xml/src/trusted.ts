/**
 * A fast reader for one complete element written by a farm process: what
 * crosses the farm's internal links. Everything there was either built by
 * the farm's own serializer or re-serialised from a canonical element at
 * the edge (canonical.ts), so it is well-formed by construction; this reader
 * relies on that and checks only what it needs to stay in bounds (tags
 * close, quotes end, names match). Never use it on what a client or an
 * external component sent: StreamParser is for those.
 *
 * It is several times faster than the full parser on the small stanzas of
 * the message path, which is why the session manager reads its links with it
 * (docs/performance.md).
 */
import { Element } from "./element.js";
import { StreamError } from "./errors.js";
import { NS } from "./namespaces.js";
import { unescapeXml } from "./splitter.js";

const LT = 0x3c;
const GT = 0x3e;
const SLASH = 0x2f;
const SQ = 0x27;
const DQ = 0x22;

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x09 || c === 0x0d;
}

function bad(why: string): StreamError {
  return new StreamError("not-well-formed", `internal element: ${why}`);
}

/** The namespace a prefix is bound to, looking up from `el` (the element being opened has not been pushed yet). */
function resolvePrefix(prefix: string, attrs: Record<string, string>, stack: Element[]): string {
  if (prefix === "xml") return NS.XML;
  const own = attrs[`xmlns:${prefix}`];
  if (own !== undefined) return own;
  for (let i = stack.length - 1; i >= 0; i--) {
    const v = stack[i]!.attrs[`xmlns:${prefix}`];
    if (v !== undefined) return v;
  }
  throw bad(`unbound prefix '${prefix}'`);
}

/**
 * Parses `text`, which must hold exactly one element (white space around it
 * allowed), into an Element tree whose elements carry their resolved
 * namespace, like the full parser's. `contentNs` is the default namespace
 * of the stream it came from.
 */
export function parseTrusted(text: string, contentNs: string = NS.COMPONENT): Element {
  const len = text.length;
  const stack: Element[] = [];
  /** The default namespace in force inside each open element (not its own when it is prefixed). */
  const defaults: string[] = [];
  let root: Element | undefined;
  let i = 0;
  while (i < len && isSpace(text.charCodeAt(i))) i++;
  while (i < len) {
    const c = text.charCodeAt(i);
    if (c !== LT) {
      // Character data up to the next tag.
      let j = text.indexOf("<", i);
      if (j < 0) j = len;
      const parent = stack[stack.length - 1];
      if (parent === undefined) {
        for (let k = i; k < j; k++) if (!isSpace(text.charCodeAt(k))) throw bad("text outside the element");
      } else {
        parent.children.push(unescapeXml(text.slice(i, j)));
      }
      i = j;
      continue;
    }
    if (text.charCodeAt(i + 1) === SLASH) {
      // End tag.
      const gt = text.indexOf(">", i + 2);
      if (gt < 0) throw bad("unterminated end tag");
      let e = gt;
      while (e > i + 2 && isSpace(text.charCodeAt(e - 1))) e--;
      const el = stack.pop();
      defaults.pop();
      if (el === undefined || text.slice(i + 2, e) !== el.name) throw bad("mismatched end tag");
      i = gt + 1;
      if (stack.length === 0) {
        root = el;
        break;
      }
      continue;
    }
    // Start tag: the name, then attributes.
    let j = i + 1;
    while (j < len) {
      const d = text.charCodeAt(j);
      if (isSpace(d) || d === SLASH || d === GT) break;
      j++;
    }
    const name = text.slice(i + 1, j);
    if (name.length === 0 || name.charCodeAt(0) === 0x21 || name.charCodeAt(0) === 0x3f) throw bad("not an element");
    const attrs: Record<string, string> = {};
    let selfClosing = false;
    for (;;) {
      while (j < len && isSpace(text.charCodeAt(j))) j++;
      if (j >= len) throw bad("unterminated start tag");
      const d = text.charCodeAt(j);
      if (d === GT) {
        j++;
        break;
      }
      if (d === SLASH) {
        if (text.charCodeAt(j + 1) !== GT) throw bad("stray '/' in a start tag");
        selfClosing = true;
        j += 2;
        break;
      }
      const eq = text.indexOf("=", j);
      if (eq < 0) throw bad("attribute without a value");
      let ne = eq;
      while (ne > j && isSpace(text.charCodeAt(ne - 1))) ne--;
      const key = text.slice(j, ne);
      let q = eq + 1;
      while (q < len && isSpace(text.charCodeAt(q))) q++;
      const quote = text.charCodeAt(q);
      if (quote !== SQ && quote !== DQ) throw bad("unquoted attribute value");
      const end = text.indexOf(quote === SQ ? "'" : '"', q + 1);
      if (end < 0) throw bad("unterminated attribute value");
      attrs[key] = unescapeXml(text.slice(q + 1, end));
      j = end + 1;
    }
    const parent = stack[stack.length - 1];
    const colon = name.indexOf(":");
    const inherited = defaults.length === 0 ? contentNs : defaults[defaults.length - 1]!;
    const defaultNs = attrs.xmlns ?? inherited;
    const uri = colon > 0 ? resolvePrefix(name.slice(0, colon), attrs, stack) : defaultNs;
    const el = new Element(name, attrs, [], uri);
    if (parent !== undefined) parent.children.push(el);
    i = j;
    if (selfClosing) {
      if (parent === undefined) {
        root = el;
        break;
      }
    } else {
      stack.push(el);
      defaults.push(defaultNs);
    }
  }
  if (root === undefined) throw bad("incomplete element");
  for (let k = i; k < len; k++) if (!isSpace(text.charCodeAt(k))) throw bad("more than one element");
  return root;
}
