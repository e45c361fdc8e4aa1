/**
 * Canonical elements: what the farm forwards of anything it did not build
 * itself (a client's stanza, an external component's). Every element carries
 * its local name; its namespace is an `xmlns` attribute where it differs
 * from its parent's (always on the top-level element); namespace prefixes
 * and their declarations are gone; an attribute in another namespace than
 * the element's keeps that namespace through a prefix declared on the same
 * element (`xmlns:a0`), so no element depends on a declaration outside it.
 *
 * Serialised with `serialize`, such an element reads the same to every
 * reader in the farm (the full parser and the byte-level splitter alike):
 * no CDATA, no prefixes bound on a stream header, no entity tricks. That is
 * what makes forwarding it safe (docs/security.md).
 */
import type { SaxesTagNS } from "saxes";
import { Element } from "./element.js";
import { NS } from "./namespaces.js";

/** The canonical element for a start tag read with namespaces resolved; `parentUri` undefined at the top level. */
export function canonicalElement(tag: SaxesTagNS, parentUri: string | undefined): Element {
  const uri = tag.uri;
  const attrs: Record<string, string> = {};
  if (uri !== parentUri) attrs.xmlns = uri;
  let prefixes: Map<string, string> | undefined;
  for (const k in tag.attributes) {
    const a = tag.attributes[k]!;
    if (a.prefix === "xmlns" || (a.prefix === "" && a.local === "xmlns")) continue; // declarations: made anew above
    if (a.prefix === "" || a.uri === "") {
      attrs[a.local] = a.value;
    } else if (a.uri === NS.XML) {
      attrs[`xml:${a.local}`] = a.value;
    } else {
      prefixes ??= new Map();
      let p = prefixes.get(a.uri);
      if (p === undefined) {
        p = `a${prefixes.size}`;
        prefixes.set(a.uri, p);
        attrs[`xmlns:${p}`] = a.uri;
      }
      attrs[`${p}:${a.local}`] = a.value;
    }
  }
  return new Element(tag.local, attrs, [], uri);
}
