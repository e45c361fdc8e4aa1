/** What the WebSocket transport sends: each element a document of its own (RFC 7395 §3.3.3). */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { NS, parseElement } from "@jabberfarm/xml";
import { hostMetaJson, hostMetaXrd } from "./host-meta.js";
import { standalone } from "./websocket-transport.js";

const UNDECLARED = "urn:example:undeclared";

describe("standalone WebSocket messages", () => {
  it("declares jabber:client on a stanza that relied on the stream header", () => {
    const out = standalone("<iq type='result' id='1'/>") as string;
    assert.equal(parseElement(out, UNDECLARED).ns, NS.CLIENT);
  });

  it("declares the stream prefix on stream features and errors", () => {
    for (const text of ["<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>", "<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>"]) {
      const el = parseElement(standalone(text) as string, UNDECLARED);
      assert.equal(el.ns, NS.STREAMS, text);
    }
  });

  it("passes routed bytes that carry their namespace untouched (the same buffer)", () => {
    const bytes = Buffer.from("<message xmlns='jabber:client' from='a@x/r' to='b@x/r'><body>&gt; '</body></message>");
    assert.equal(standalone(bytes), bytes);
  });

  it("looks only at the start tag: a child's xmlns does not count", () => {
    const out = standalone(Buffer.from("<message to='b@x'><x xmlns='urn:example'/></message>"));
    assert.equal(parseElement(out.toString(), UNDECLARED).ns, NS.CLIENT);
  });

  it("leaves a nonza with its own namespace as it is", () => {
    const text = "<a xmlns='urn:xmpp:sm:3' h='3'/>";
    assert.equal(standalone(text), text);
  });
});

describe("host-meta", () => {
  it("escapes the URL in XRD and names it with the websocket rel in both forms", () => {
    const url = "wss://example.com/ws?a=1&b='2'";
    const xrd = parseElement(hostMetaXrd(url).replace(/^<\?xml[^>]*\?>/, ""), UNDECLARED);
    assert.equal(xrd.getChild("Link")!.attrs.href, url);
    assert.deepEqual(JSON.parse(hostMetaJson(url)).links, [{ rel: "urn:xmpp:alt-connections:websocket", href: url }]);
  });
});
