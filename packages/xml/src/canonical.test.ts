import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { NS } from "./namespaces.js";
import { StreamParser } from "./parser.js";
import { StanzaSplitter } from "./splitter.js";
import { parseElement } from "./fragment.js";
import type { Element } from "./element.js";
import { payloadWithin, stanzaErrorReply } from "./errors.js";
import { xml } from "./element.js";

/** Stanzas of a client stream whose header declares `extra` (prefixes), parsed canonically. */
function canonical(stanzas: string, extra = ""): Element[] {
  const out: Element[] = [];
  const errors: Error[] = [];
  const p = new StreamParser({
    onStreamStart() {},
    onElement: (el) => out.push(el),
    onStreamEnd() {},
    onError: (e) => errors.push(e),
  }, { canonical: true });
  p.write(`<stream:stream xmlns='${NS.CLIENT}' xmlns:stream='${NS.STREAMS}' ${extra} to='localhost' version='1.0'>`);
  p.write(stanzas);
  assert.deepEqual(errors, []);
  return out;
}

/** What the byte-level splitter (how farm processes read each other) makes of `text`. */
function split(text: string): Element {
  let got: Element | undefined;
  const s = new StanzaSplitter({
    onElement: (el) => (got = el),
    onStreamEnd() {},
    onError: (e) => assert.fail(`the splitter refused the canonical text: ${e.message}`),
  }, { contentNs: NS.COMPONENT });
  s.write(Buffer.from(text));
  assert.ok(got);
  return got;
}

describe("canonical elements", () => {
  it("CDATA becomes escaped text, which every reader of the farm accepts", () => {
    const [m] = canonical("<message to='b@localhost'><body><![CDATA[<b>x</b> & ]]></body></message>");
    const text = m!.toString();
    assert.equal(text, "<message xmlns='jabber:client' to='b@localhost'><body>&lt;b&gt;x&lt;/b&gt; &amp; </body></message>");
    assert.equal(parseElement(text).getChildText("body"), "<b>x</b> & ");
    assert.equal(split(text).local, "message");
  });

  it("prefixes declared on the stream header are resolved: names lose them, namespaces become xmlns", () => {
    const [m] = canonical("<message to='b@localhost'><x:y a='1'/><body>hi</body></message>", "xmlns:x='urn:example:x'");
    assert.equal(m!.toString(), "<message xmlns='jabber:client' to='b@localhost'><y xmlns='urn:example:x' a='1'/><body>hi</body></message>");
    // Read on its own (no stream header to lean on), it means the same.
    const again = parseElement(m!.toString());
    assert.equal(again.getChild("y", "urn:example:x")?.attrs.a, "1");
  });

  it("a prefixed stanza name and a default-namespace trick come out as what they resolve to", () => {
    const [m] = canonical("<c:message xmlns:c='jabber:client' to='b@localhost'><e:xdb xmlns:e='urn:jabberfarm:envelope:1' op='x'/></c:message>");
    assert.equal(m!.local, "message");
    assert.equal(m!.name, "message");
    assert.equal(m!.toString(), "<message xmlns='jabber:client' to='b@localhost'><xdb xmlns='urn:jabberfarm:envelope:1' op='x'/></message>");
    const [n] = canonical("<x:xdb xmlns:x='jabber:client' xmlns='urn:jabberfarm:envelope:1' op='credentials.set'/>");
    // It is what it resolves to: an <xdb/> in jabber:client, not an envelope.
    assert.equal(n!.ns, NS.CLIENT);
    assert.equal(n!.toString(), "<xdb xmlns='jabber:client' op='credentials.set'/>");
    assert.equal(split(n!.toString()).ns, NS.CLIENT, "the splitter reads the same namespace");
  });

  it("attributes in other namespaces keep them through a prefix declared on their own element", () => {
    const [m] = canonical("<message to='b@localhost' xml:lang='fr'><x xmlns='urn:a' xmlns:q='urn:q' q:k='v' p='w'/></message>");
    assert.equal(m!.toString(), "<message xmlns='jabber:client' to='b@localhost' xml:lang='fr'><x xmlns='urn:a' xmlns:a0='urn:q' a0:k='v' p='w'/></message>");
    const x = parseElement(m!.toString()).getChild("x", "urn:a")!;
    assert.equal(x.attrs["a0:k"], "v");
  });

  it("an element in no namespace under a namespaced one says so", () => {
    const [m] = canonical("<message to='b@localhost'><x xmlns='urn:a'><y xmlns=''/></x></message>");
    assert.equal(m!.toString(), "<message xmlns='jabber:client' to='b@localhost'><x xmlns='urn:a'><y xmlns=''/></x></message>");
  });
});

describe("error replies and payloads", () => {
  it("echo a small payload, never a large one", () => {
    const small = xml("message", { from: "a@x", to: "b@x", id: "1" }, xml("body", {}, "hi"));
    assert.ok(stanzaErrorReply(small, "service-unavailable").getChild("body"));
    const large = xml("message", { from: "a@x", to: "b@x", id: "2" }, xml("body", {}, ">".repeat(200_000)));
    assert.equal(payloadWithin(large, 4096), false);
    const reply = stanzaErrorReply(large, "service-unavailable");
    assert.equal(reply.getChild("body"), undefined);
    assert.ok(reply.toString().length < 1000);
  });
});
