import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { NS } from "./namespaces.js";
import { parseElement } from "./fragment.js";
import { parseTrusted } from "./trusted.js";
import { Element, xml } from "./element.js";
import { prng } from "./test-helpers.js";

/** Name, namespace, attributes and children, recursively: what two readers must agree on. */
function shape(el: Element): unknown {
  return [el.name, el.ns, el.attrs, el.children.map((c) => (typeof c === "string" ? c : shape(c)))];
}

/** Adjacent text nodes merged, as readers may split text differently. */
function merged(el: Element): Element {
  const out: Array<Element | string> = [];
  for (const c of el.children) {
    const last = out[out.length - 1];
    if (typeof c === "string" && typeof last === "string") out[out.length - 1] = last + c;
    else out.push(typeof c === "string" ? c : merged(c));
  }
  return new Element(el.name, el.attrs, out.filter((c) => c !== ""), el.uri);
}

function agree(text: string, ns: string = NS.COMPONENT): void {
  assert.deepEqual(shape(merged(parseTrusted(text, ns))), shape(merged(parseElement(text, ns))), text);
}

describe("parseTrusted reads what the farm writes as the full parser does", () => {
  it("routes, envelopes and stanzas", () => {
    agree("<route xmlns='urn:jabberfarm:envelope:1' from='c2s/c2s-1' to='a@localhost' sid='c2s-1.x' seq='ab.1' low='1'><message xmlns='jabber:client' to='b@localhost' from='a@localhost/r' id='m1'><body>hi &amp; &lt;bye&gt; &#13;&#x1F600;</body></message></route>");
    agree("<iq type='result' id='x' from='localhost' to='a@localhost/r'><query xmlns='jabber:iq:roster' ver='3'><item jid='b@localhost' subscription='both'><group>G &apos;1&apos;</group></item></query></iq>");
    agree("<presence from=\"a@b/c\" xml:lang=\"en\"><x xmlns='urn:a' xmlns:a0='urn:q' a0:k='v'/><status>  spaced  </status></presence>");
    agree("<stream:features xmlns:stream='http://etherx.jabber.org/streams'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>");
    agree("  <x:y xmlns:x='urn:x'><x:z/><w/></x:y>\n");
    agree("<a\n b = 'c' ><b\t/></a >");
  });

  it("random trees, serialised by the farm's serializer", () => {
    const rand = prng(7);
    const names = ["message", "body", "x", "item", "group", "query"];
    const spaces = [undefined, "urn:a", "urn:b", "jabber:client", ""];
    const texts = ["", "plain", "<&>\"'", "\r\n\t", "日本語 😀", "]]>"];
    const build = (depth: number): Element => {
      const attrs: Record<string, string> = {};
      const ns = spaces[Math.floor(rand() * spaces.length)];
      if (ns !== undefined) attrs.xmlns = ns;
      for (let k = Math.floor(rand() * 3); k > 0; k--) attrs[`a${k}`] = texts[Math.floor(rand() * texts.length)]!;
      const el = xml(names[Math.floor(rand() * names.length)]!, attrs);
      for (let k = depth > 0 ? Math.floor(rand() * 4) : 0; k > 0; k--) {
        el.append(rand() < 0.5 ? texts[Math.floor(rand() * texts.length)]! : build(depth - 1));
      }
      return el;
    };
    for (let n = 0; n < 500; n++) agree(build(4).toString());
  });

  it("refuses what is not one complete element", () => {
    for (const bad of ["", "text", "<a>", "<a></b>", "<a/><b/>", "<a x='1>", "<!-- c --><a/>", "<a>x</a>y"]) {
      assert.throws(() => parseTrusted(bad), (e: Error) => e.name === "StreamError", bad);
    }
  });
});
