import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Element, escapeAttr, escapeText, isXmlText, serialize, xml } from "./element.js";
import {
  StreamError, canBounce, errorElement, stanzaErrorCondition, stanzaErrorReply, type StanzaErrorCondition,
} from "./errors.js";
import { NS } from "./namespaces.js";
import { parseElement } from "./fragment.js";
import { streamFooter, streamHeader } from "./stream.js";
import { HEADER, onlyError, plain, run } from "./test-helpers.js";

describe("escaping", () => {
  it("escapes every special character in text", () => {
    assert.equal(escapeText("plain"), "plain");
    assert.equal(escapeText(""), "");
    assert.equal(escapeText("a & b < c > d"), "a &amp; b &lt; c &gt; d");
    assert.equal(escapeText("]]>"), "]]&gt;");
    assert.equal(escapeText("&amp;"), "&amp;amp;");
    assert.equal(escapeText("\"'"), "\"'");
    // A bare CR would come back as LF (XML end-of-line handling).
    assert.equal(escapeText("a\r\nb\rc"), "a&#13;\nb&#13;c");
  });

  it("escapes every special character in attribute values", () => {
    assert.equal(escapeAttr("plain"), "plain");
    assert.equal(escapeAttr("&<>\"'"), "&amp;&lt;&gt;&quot;&apos;");
    assert.equal(escapeAttr("\t\n\r"), "&#9;&#10;&#13;");
    assert.equal(escapeAttr("a b"), "a b");
  });

  it("is stable when called repeatedly (global regexps keep no state)", () => {
    for (let i = 0; i < 5; i++) {
      assert.equal(escapeText("x&y"), "x&amp;y");
      assert.equal(escapeText("&"), "&amp;");
      assert.equal(escapeText("no"), "no");
      assert.equal(escapeAttr("'"), "&apos;");
      assert.equal(escapeAttr("a'b'c"), "a&apos;b&apos;c");
    }
  });

  it("round-trips text and attribute values through the parser", () => {
    const samples = [
      "", " ", "&", "<", ">", "]]>", "\"", "'", "&amp;", "&#65;", "a\tb", "a\nb", "a\r\nb", "a\rb", "\r", "\t\n\r ",
      "  leading and trailing  ", "é 日本語 😀", "\u{10FFFF}\uFFFD", "<![CDATA[x]]>", "<!-- c -->", "<?pi?>", "&foo;",
    ];
    for (const s of samples) {
      for (const q of ["'", "\""]) {
        const el = parseElement(`<a v=${q}${escapeAttr(s)}${q}>${escapeText(s)}</a>`);
        assert.equal(el.attrs.v, s, `attr ${JSON.stringify(s)} quoted with ${q}`);
        assert.equal(el.text(), s, `text ${JSON.stringify(s)}`);
      }
    }
  });

  it("isXmlText tells characters XML can carry", () => {
    assert.ok(isXmlText("hello \t\n\r é 😀 \uFFFD \uE000"));
    for (const bad of ["\u0000", "\u0001", "\u0008", "\u000B", "\u000C", "\u001F", "\uFFFE", "\uFFFF", "\uD800", "\uDC00", "a\uD83D", "\uDE00a"]) {
      assert.equal(isXmlText(bad), false, JSON.stringify(bad));
    }
  });
});

describe("xml() and Element", () => {
  it("drops undefined and null attributes and falsy children", () => {
    const el = xml("message", { to: "a@b", from: undefined, id: null, type: "" },
      null, undefined, false, "", "hi", xml("body"), false);
    assert.deepEqual(el.attrs, { to: "a@b", type: "" });
    assert.equal(el.children.length, 2);
    assert.equal(el.children[0], "hi");
    assert.equal((el.children[1] as Element).name, "body");
    assert.deepEqual(xml("a").attrs, {});
    assert.deepEqual(xml("a", null).children, []);
    assert.equal(serialize(xml("a", {}, "")), "<a/>");
  });

  it("reads names, namespaces and attributes", () => {
    const el = xml("x:foo", { "xmlns:x": "urn:x", xmlns: "urn:default", a: "1" });
    assert.equal(el.local, "foo");
    assert.equal(el.name, "x:foo");
    assert.equal(el.ns, "urn:default");
    assert.equal(el.attr("a"), "1");
    assert.equal(el.attr("b"), undefined);
    assert.equal(el.setAttr("b", "2").attr("b"), "2");
    assert.equal(el.setAttr("b", undefined).attr("b"), undefined);
    assert.ok(!("b" in el.attrs));
    assert.equal(new Element("a", {}, [], "urn:parsed").ns, "urn:parsed");
    assert.equal(new Element("a").ns, "");
  });

  it("finds children by local name and namespace in built trees", () => {
    const iq = xml("iq", { xmlns: NS.CLIENT, type: "result" },
      "ws",
      xml("query", { xmlns: "jabber:iq:roster" },
        xml("item", { jid: "a@b" }),
        xml("item", { jid: "c@d" })),
      xml("query", {}, "inherits"),
      xml("x:data", { "xmlns:x": "urn:x" }));
    const roster = iq.getChild("query", "jabber:iq:roster");
    assert.ok(roster);
    assert.equal(roster.getChildren("item").length, 2);
    assert.equal(roster.getChildren("item", "jabber:iq:roster").length, 2);
    assert.equal(roster.getChildren("item", NS.CLIENT).length, 0);
    assert.equal(roster.getChild("item", "jabber:iq:roster")?.attrs.jid, "a@b");
    // A child without xmlns inherits its parent's namespace.
    assert.equal(iq.getChild("query", NS.CLIENT)?.text(), "inherits");
    assert.equal(iq.getChild("query")?.attrs.xmlns, "jabber:iq:roster");
    assert.equal(iq.getChild("query", "urn:other"), undefined);
    assert.equal(iq.getChild("nothing"), undefined);
    assert.equal(iq.getChild("data")?.name, "x:data");
    assert.equal(iq.getChildren().length, 3);
    assert.equal(iq.getChildren(undefined, NS.CLIENT).length, 2);
    assert.equal(iq.firstElement()?.attrs.xmlns, "jabber:iq:roster");
    assert.equal(xml("a", {}, "text").firstElement(), undefined);
  });

  it("finds children by local name and namespace in parsed trees", () => {
    const c = run(HEADER +
      "<iq type='result'><query xmlns='jabber:iq:roster'><item jid='a@b'/></query><query>inherits</query>" +
      "<x:data xmlns:x='urn:x'><x:field/><field/></x:data></iq>");
    assert.equal(c.errors.length, 0);
    const iq = c.elements[0]!;
    assert.equal(iq.getChild("query", "jabber:iq:roster")?.getChild("item", "jabber:iq:roster")?.attrs.jid, "a@b");
    assert.equal(iq.getChild("query", NS.CLIENT)?.text(), "inherits");
    const data = iq.getChild("data", "urn:x");
    assert.ok(data);
    assert.equal(data.getChildren("field").length, 2);
    assert.equal(data.getChildren("field", "urn:x").length, 1);
    assert.equal(data.getChildren("field", NS.CLIENT).length, 1);
    // A built child appended to a parsed element inherits the parsed namespace.
    iq.append(xml("extra"));
    assert.equal(iq.getChild("extra", NS.CLIENT)?.name, "extra");
  });

  it("text() concatenates direct character data only", () => {
    const el = xml("a", {}, "one ", xml("b", {}, "nested"), "two");
    assert.equal(el.text(), "one two");
    assert.equal(el.getChildText("b"), "nested");
    assert.equal(el.getChildText("c"), undefined);
    assert.equal(xml("a").text(), "");
  });

  it("clone() is deep", () => {
    const orig = xml("message", { to: "a" }, xml("body", { lang: "en" }, "hi"), "tail");
    orig.uri = "urn:u";
    const copy = orig.clone();
    assert.deepEqual(plain(copy), plain(orig));
    assert.equal(copy.uri, "urn:u");
    assert.notEqual(copy, orig);
    assert.notEqual(copy.attrs, orig.attrs);
    assert.notEqual(copy.children, orig.children);
    copy.attrs.to = "changed";
    (copy.children[0] as Element).attrs.lang = "fr";
    (copy.children[0] as Element).children.push("more");
    copy.children.push("x");
    assert.equal(orig.attrs.to, "a");
    assert.equal((orig.children[0] as Element).attrs.lang, "en");
    assert.deepEqual((orig.children[0] as Element).children, ["hi"]);
    assert.equal(orig.children.length, 2);
  });

  it("serialises with escaping and self-closing empty elements", () => {
    const el = xml("message", { to: "a'b", id: "\"&<>" }, xml("body", {}, "1 < 2 & 3 > ]]>"), xml("empty"));
    assert.equal(
      serialize(el),
      "<message to='a&apos;b' id='&quot;&amp;&lt;&gt;'><body>1 &lt; 2 &amp; 3 &gt; ]]&gt;</body><empty/></message>",
    );
    assert.equal(el.toString(), serialize(el));
  });

  it("serialize(parse(x)) parses back to an equal tree", () => {
    const inputs = [
      "<message to='a@b' id=\"x'y\"><body>&lt;hi&gt; &amp; 😀</body><x:y xmlns:x='urn:x' x:a='&#9;&#10;'><x:z/></x:y></message>",
      "<iq type='get'>\n  <query xmlns='jabber:iq:roster'/>\r\n</iq>",
      "<a><![CDATA[<raw> & ]]></a>",
      "<a b='&#13;'>&#13;</a>",
    ];
    for (const input of inputs) {
      const first = parseElement(input, NS.CLIENT);
      const text = serialize(first);
      const second = parseElement(text, NS.CLIENT);
      assert.deepEqual(plain(second), plain(first), input);
      assert.equal(serialize(second), text);
    }
  });
});

describe("stream header", () => {
  it("writes a header the parser accepts", () => {
    const h = streamHeader({ contentNs: NS.COMPONENT, from: "a'b", to: "c&d", id: "x<y", version: "1.0", lang: "en" });
    assert.ok(h.startsWith("<?xml version='1.0'?><stream:stream "));
    assert.ok(!h.endsWith("/>"));
    const c = run(h + "<presence/>" + streamFooter());
    assert.equal(c.errors.length, 0);
    const header = c.headers[0]!;
    assert.equal(header.contentNs, NS.COMPONENT);
    assert.deepEqual(
      { from: header.attrs.from, to: header.attrs.to, id: header.attrs.id, version: header.attrs.version, lang: header.attrs["xml:lang"] },
      { from: "a'b", to: "c&d", id: "x<y", version: "1.0", lang: "en" },
    );
    assert.equal(c.ends, 1);
    assert.ok(!streamHeader({ contentNs: NS.CLIENT, declaration: false }).startsWith("<?xml"));
  });
});

describe("StreamError", () => {
  it("is an Error with a condition and text", () => {
    const e = new StreamError("policy-violation", "too big");
    assert.ok(e instanceof Error);
    assert.equal(e.name, "StreamError");
    assert.equal(e.condition, "policy-violation");
    assert.equal(e.text, "too big");
    assert.equal(e.message, "policy-violation: too big");
    assert.equal(new StreamError("reset").message, "reset");
  });

  it("toXml() parses as a stream error with the condition and escaped text", () => {
    const e = new StreamError("not-well-formed", "bad <tag> & \"quotes\" ]]>");
    const el = parseElement(e.toXml(), NS.CLIENT);
    assert.equal(el.name, "stream:error");
    assert.equal(el.ns, NS.STREAMS);
    const cond = el.getChild("not-well-formed", NS.STREAM_ERRORS);
    assert.ok(cond);
    assert.equal(cond.children.length, 0);
    const text = el.getChild("text", NS.STREAM_ERRORS);
    assert.equal(text?.text(), "bad <tag> & \"quotes\" ]]>");
    assert.equal(text?.attrs["xml:lang"], "en");
    assert.equal(el.getChildren().length, 2);
  });

  it("toXml() without text, and with see-other-host's new host", () => {
    const plainErr = parseElement(new StreamError("host-unknown").toXml(), NS.CLIENT);
    assert.equal(plainErr.getChildren().length, 1);
    assert.ok(plainErr.getChild("host-unknown", NS.STREAM_ERRORS));
    const moved = parseElement(new StreamError("see-other-host", undefined, "[2001:db8::1]:5222&").toXml(), NS.CLIENT);
    assert.equal(moved.getChildText("see-other-host", NS.STREAM_ERRORS), "[2001:db8::1]:5222&");
  });

  it("every parser error serialises to a parsable stream error", () => {
    const err = onlyError(run(HEADER + "<a x='1' x='2'/>"));
    const el = parseElement(err.toXml(), NS.CLIENT);
    assert.ok(el.getChild(err.condition, NS.STREAM_ERRORS));
  });
});

describe("stanza errors", () => {
  const stanza = xml("iq", { to: "service.example.com", from: "juliet@example.com/balcony", id: "42", type: "get", "xml:lang": "en" },
    xml("query", { xmlns: "urn:q" }));

  it("stanzaErrorReply swaps to and from, keeps the id, sets type=error", () => {
    const reply = stanzaErrorReply(stanza, "item-not-found");
    assert.equal(reply.name, "iq");
    assert.equal(reply.attrs.to, "juliet@example.com/balcony");
    assert.equal(reply.attrs.from, "service.example.com");
    assert.equal(reply.attrs.id, "42");
    assert.equal(reply.attrs.type, "error");
    assert.equal(reply.attrs["xml:lang"], "en");
    assert.ok(reply.getChild("query", "urn:q"));
    const error = reply.getChild("error");
    assert.ok(error);
    assert.equal(error.attrs.type, "cancel");
    assert.ok(error.getChild("item-not-found", NS.STANZA_ERRORS));
    assert.equal(stanzaErrorCondition(reply), "item-not-found");
    // The original is untouched.
    assert.equal(stanza.attrs.type, "get");
    assert.equal(stanza.attrs.to, "service.example.com");
  });

  it("leaves out to/from that the original lacks and can drop the payload", () => {
    const reply = stanzaErrorReply(xml("message", { id: "1" }, xml("body", {}, "x")), "service-unavailable", { includePayload: false });
    assert.ok(!("to" in reply.attrs));
    assert.ok(!("from" in reply.attrs));
    assert.equal(reply.getChildren().length, 1);
    assert.equal(reply.getChild("body"), undefined);
  });

  it("uses the RFC 6120 §8.3.3 default types", () => {
    const expected: Array<[StanzaErrorCondition, string]> = [
      ["bad-request", "modify"], ["conflict", "cancel"], ["feature-not-implemented", "cancel"], ["forbidden", "auth"],
      ["internal-server-error", "cancel"], ["item-not-found", "cancel"], ["jid-malformed", "modify"],
      ["not-acceptable", "modify"], ["not-allowed", "cancel"], ["not-authorized", "auth"],
      ["recipient-unavailable", "wait"], ["redirect", "modify"], ["registration-required", "auth"],
      ["remote-server-not-found", "cancel"], ["remote-server-timeout", "wait"], ["resource-constraint", "wait"],
      ["service-unavailable", "cancel"], ["subscription-required", "auth"], ["unexpected-request", "wait"],
    ];
    for (const [cond, type] of expected) {
      assert.equal(errorElement(cond).attrs.type, type, cond);
      assert.equal(stanzaErrorReply(stanza, cond).getChild("error")?.attrs.type, type, cond);
    }
  });

  it("takes an explicit type, text and by", () => {
    const reply = stanzaErrorReply(stanza, "policy-violation", { type: "wait", text: "slow <down>", by: "example.com" });
    const error = reply.getChild("error")!;
    assert.equal(error.attrs.type, "wait");
    assert.equal(error.attrs.by, "example.com");
    assert.equal(error.getChildText("text", NS.STANZA_ERRORS), "slow <down>");
    assert.equal(error.getChild("text", NS.STANZA_ERRORS)?.attrs["xml:lang"], "en");
    assert.equal(stanzaErrorCondition(reply), "policy-violation");
    // It serialises to XML that parses back to the same reply.
    const back = parseElement(serialize(reply), NS.CLIENT);
    assert.equal(stanzaErrorCondition(back), "policy-violation");
    assert.equal(back.getChild("error")?.getChildText("text", NS.STANZA_ERRORS), "slow <down>");
  });

  it("does not nest a previous error element", () => {
    const failed = stanzaErrorReply(stanza, "forbidden");
    const again = stanzaErrorReply(failed, "conflict");
    assert.equal(again.getChildren("error").length, 1);
    assert.equal(stanzaErrorCondition(again), "conflict");
  });

  it("canBounce is false only for type=error", () => {
    assert.equal(canBounce(stanza), true);
    assert.equal(canBounce(xml("message")), true);
    assert.equal(canBounce(stanzaErrorReply(stanza, "conflict")), false);
    assert.equal(canBounce(xml("presence", { type: "error" })), false);
  });

  it("stanzaErrorCondition reads parsed replies and ignores non-errors", () => {
    const parsed = parseElement(
      `<message type='error'><error type='cancel'><gone xmlns='${NS.STANZA_ERRORS}'>xmpp:a@b</gone>` +
      `<text xmlns='${NS.STANZA_ERRORS}'>moved</text></error></message>`, NS.CLIENT);
    assert.equal(stanzaErrorCondition(parsed), "gone");
    assert.equal(stanzaErrorCondition(xml("message")), undefined);
    assert.equal(stanzaErrorCondition(xml("message", {}, xml("error", {}, xml("text", { xmlns: NS.STANZA_ERRORS })))), undefined);
  });
});
