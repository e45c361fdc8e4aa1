/**
 * The element model shared by every process: a small, mutable tree that can
 * be built in code (`xml(...)`) or produced by the stream parser, and
 * serialised back with correct escaping.
 */

export type Attrs = Record<string, string>;
export type Node = Element | string;

// A literal CR would be read back as LF (XML end-of-line handling), so it is
// written as a character reference, in text as in attributes.
const TEXT_ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;" };
const ATTR_ESCAPES: Record<string, string> = {
  "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;",
  "\t": "&#9;", "\n": "&#10;", "\r": "&#13;",
};
const TEXT_SPECIAL = /[&<>\r]/g;
const ATTR_SPECIAL = /[&<>"'\t\n\r]/g;
// Characters XML 1.0 cannot carry at all, even as character references.
// eslint-disable-next-line no-control-regex -- the control characters are what it finds
const NOT_XML_CHAR = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/u;

/** Escapes character data. `>` is escaped too so `]]>` can never appear; CR survives as `&#13;`. */
export function escapeText(s: string): string {
  return TEXT_SPECIAL.test(s) ? s.replace(TEXT_SPECIAL, (c) => TEXT_ESCAPES[c]!) : s;
}

/** Escapes an attribute value for either quote style; whitespace survives normalisation. */
export function escapeAttr(s: string): string {
  return ATTR_SPECIAL.test(s) ? s.replace(ATTR_SPECIAL, (c) => ATTR_ESCAPES[c]!) : s;
}

/** True when every character of `s` may appear in an XML 1.0 document. */
export function isXmlText(s: string): boolean {
  return !NOT_XML_CHAR.test(s);
}

export class Element {
  name: string;
  attrs: Attrs;
  children: Node[];
  /**
   * The resolved namespace URI when the element came from the parser. Built
   * elements leave it undefined and `ns` falls back to the xmlns attribute.
   */
  uri: string | undefined;

  constructor(name: string, attrs: Attrs = {}, children: Node[] = [], uri?: string) {
    this.name = name;
    this.attrs = attrs;
    this.children = children;
    this.uri = uri;
  }

  /** The element's namespace: resolved by the parser, or its own xmlns. */
  get ns(): string {
    return this.uri ?? this.attrs.xmlns ?? "";
  }

  /** The local name (without prefix). */
  get local(): string {
    const i = this.name.indexOf(":");
    return i < 0 ? this.name : this.name.slice(i + 1);
  }

  attr(name: string): string | undefined {
    return this.attrs[name];
  }

  /** Sets an attribute, or removes it when `value` is undefined. Returns this for chaining. */
  setAttr(name: string, value: string | undefined): this {
    if (value === undefined) delete this.attrs[name];
    else this.attrs[name] = value;
    return this;
  }

  /** Appends children, skipping null, undefined, false and empty strings. */
  append(...nodes: Array<Node | null | undefined | false>): this {
    for (const n of nodes) if (n !== null && n !== undefined && n !== false && n !== "") this.children.push(n);
    return this;
  }

  /** The first child element with this local name (and namespace, when given). */
  getChild(local: string, ns?: string): Element | undefined {
    for (const c of this.children) {
      if (typeof c !== "string" && c.local === local && (ns === undefined || c.childNs(this) === ns)) return c;
    }
    return undefined;
  }

  getChildren(local?: string, ns?: string): Element[] {
    const out: Element[] = [];
    for (const c of this.children) {
      if (typeof c === "string") continue;
      if (local !== undefined && c.local !== local) continue;
      if (ns !== undefined && c.childNs(this) !== ns) continue;
      out.push(c);
    }
    return out;
  }

  /** First child element whatever its name: the payload of an iq. */
  firstElement(): Element | undefined {
    for (const c of this.children) if (typeof c !== "string") return c;
    return undefined;
  }

  /** Concatenated character data of the direct children. */
  text(): string {
    let s = "";
    for (const c of this.children) if (typeof c === "string") s += c;
    return s;
  }

  getChildText(local: string, ns?: string): string | undefined {
    return this.getChild(local, ns)?.text();
  }

  /**
   * The namespace of this element when it sits under `parent`: a built child
   * without its own xmlns inherits its parent's, as it would once serialised.
   */
  private childNs(parent: Element): string {
    if (this.uri !== undefined) return this.uri;
    return this.attrs.xmlns ?? parent.ns;
  }

  clone(): Element {
    return new Element(
      this.name,
      { ...this.attrs },
      this.children.map((c) => (typeof c === "string" ? c : c.clone())),
      this.uri,
    );
  }

  toString(): string {
    return serialize(this);
  }
}

/** Builds an element: `xml("message", { to }, xml("body", {}, text))`. */
export function xml(name: string, attrs?: Record<string, string | undefined | null> | null, ...children: Array<Node | null | undefined | false>): Element {
  const clean: Attrs = {};
  if (attrs) for (const k in attrs) {
    const v = attrs[k];
    if (v !== undefined && v !== null) clean[k] = v;
  }
  const el = new Element(name, clean);
  el.append(...children);
  return el;
}

export function serialize(el: Element): string {
  let s = "<" + el.name;
  for (const k in el.attrs) s += " " + k + "='" + escapeAttr(el.attrs[k]!) + "'";
  if (el.children.length === 0) return s + "/>";
  s += ">";
  for (const c of el.children) s += typeof c === "string" ? escapeText(c) : serialize(c);
  return s + "</" + el.name + ">";
}
