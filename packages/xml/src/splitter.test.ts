import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { xml, type Element } from "./element.js";
import type { StreamError } from "./errors.js";
import { StreamParser } from "./parser.js";
import { StanzaSplitter, incompleteUtf8Tail, readStartTag, unescapeXml } from "./splitter.js";
import { parseElement } from "./fragment.js";

interface Got {
  els: Element[];
  raws: string[];
  errors: StreamError[];
  ended: boolean;
}

function splitAll(chunks: Buffer[], opts: { maxStanzaBytes?: number } = {}): Got {
  const got: Got = { els: [], raws: [], errors: [], ended: false };
  const s = new StanzaSplitter({
    onElement: (el, raw) => {
      got.els.push(el);
      got.raws.push(raw.toString("utf8"));
    },
    onStreamEnd: () => (got.ended = true),
    onError: (e) => got.errors.push(e),
  }, { contentNs: "jabber:component:accept", ...opts });
  for (const c of chunks) s.write(c);
  return got;
}

function chunked(buf: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (buf.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of points) {
    out.push(buf.subarray(prev, p));
    prev = p;
  }
  out.push(buf.subarray(prev));
  return out;
}

describe("StanzaSplitter", () => {
  test("reads a start tag's attributes as the full parser does, for any spacing, quoting and escaping", () => {
    const attrName = fc.stringMatching(/^[a-z][a-z0-9-]{0,8}$/);
    const value = fc.array(fc.constantFrom("a", "Z", "0", " ", "@", "/", ">", "=", "é", "😀", "&amp;", "&lt;", "&gt;", "&quot;", "&apos;", "&#65;", "&#x263A;", "'", '"'), { maxLength: 12 });
    const space = fc.constantFrom("", " ", "  ", "\n", "\t", "\r\n");
    fc.assert(fc.property(
      fc.uniqueArray(fc.record({ name: attrName, value, q: fc.constantFrom("'", '"'), s1: space, s2: space }), { selector: (a) => a.name, maxLength: 6 }),
      fc.constantFrom(">", "/>", " >", "\n/>"),
      (list, close) => {
        let tag = "<x:el xmlns:x='urn:x'";
        for (const a of list) {
          // A quote of the kind that delimits the value must be an entity inside it.
          const v = a.value.map((p) => (p === a.q ? (a.q === "'" ? "&apos;" : "&quot;") : p)).join("");
          tag += ` ${a.name}${a.s1}=${a.s2}${a.q}${v}${a.q}`;
        }
        tag += close;
        const full = parseElement(close.endsWith("/>") ? tag : `${tag}</x:el>`);
        const fast = readStartTag(tag, "jabber:component:accept");
        assert.equal(fast.name, "x:el");
        assert.deepEqual(fast.attrs, full.attrs);
      },
    ), { numRuns: 500 });
  });

  test("hands out each top-level element's exact bytes with its tag's name and attributes", () => {
    const text = "<message from='a@x' to=\"b@y\" id='1'><body>caf\u00e9 &amp; &lt;3 ></body><x xmlns='urn:x' a='&apos;q&apos;'/></message>\n  <iq type='get' to='x' id=\"2\"/><stream:features/>";
    const got = splitAll([Buffer.from(text)]);
    assert.deepEqual(got.raws, [
      "<message from='a@x' to=\"b@y\" id='1'><body>caf\u00e9 &amp; &lt;3 ></body><x xmlns='urn:x' a='&apos;q&apos;'/></message>",
      "<iq type='get' to='x' id=\"2\"/>",
      "<stream:features/>",
    ]);
    assert.equal(got.els[0]!.name, "message");
    assert.deepEqual(got.els[0]!.attrs, { from: "a@x", to: "b@y", id: "1" });
    assert.equal(got.els[0]!.ns, "jabber:component:accept");
    assert.equal(got.els[0]!.children.length, 0, "children are not built");
    assert.equal(got.els[2]!.uri, "http://etherx.jabber.org/streams");
  });

  test("keeps the text of a text-only element (a handshake digest)", () => {
    const got = splitAll([Buffer.from("<handshake>ab&amp;cd</handshake>")]);
    assert.equal(got.els[0]!.text(), "ab&cd");
  });

  test("decodes entities and character references in attribute values", () => {
    const got = splitAll([Buffer.from("<m to='a&amp;b&#x263A;&#65;' q=\"&quot;\"/>")]);
    assert.deepEqual(got.els[0]!.attrs, { to: "a&b\u263aA", q: '"' });
    assert.equal(unescapeXml("x&lt;y&gt;z"), "x<y>z");
  });

  test("quoted '>' inside attribute values does not end a tag", () => {
    const got = splitAll([Buffer.from("<m a='x>y' b=\"<\">t</m>")]);
    assert.equal(got.raws[0], "<m a='x>y' b=\"<\">t</m>");
  });

  test("</stream:stream> ends the stream; nothing after it is read", () => {
    const got = splitAll([Buffer.from("<a/></stream:stream><b/>")]);
    assert.equal(got.els.length, 1);
    assert.equal(got.ended, true);
  });

  test("refuses text between elements, comments and PIs, mismatched end tags, oversized stanzas", () => {
    assert.equal(splitAll([Buffer.from("<a/>junk<b/>")]).errors[0]?.condition, "bad-format");
    assert.equal(splitAll([Buffer.from("<!-- x --><a/>")]).errors[0]?.condition, "restricted-xml");
    assert.equal(splitAll([Buffer.from("<?pi x?>")]).errors[0]?.condition, "restricted-xml");
    assert.equal(splitAll([Buffer.from("<a><b></c></a>")]).errors[0]?.condition, "not-well-formed");
    const big = Buffer.from(`<m>${"x".repeat(2000)}</m>`);
    assert.equal(splitAll([big], { maxStanzaBytes: 1000 }).errors[0]?.condition, "policy-violation");
    // an unfinished stanza over the limit fails before it is complete
    const parts = [Buffer.from("<m>"), ...Array.from({ length: 20 }, () => Buffer.from("y".repeat(100)))];
    assert.equal(splitAll(parts, { maxStanzaBytes: 1000 }).errors[0]?.condition, "policy-violation");
  });

  test("agrees with the full parser on random trees split at random points", () => {
    const name = fc.constantFrom("message", "iq", "presence", "body", "x", "query", "item", "a:b");
    const value = fc.string({ unit: fc.constantFrom("a", "&", "<", ">", "'", '"', " ", "\u00e9", "\u263a", "\ud83d\ude00") });
    const tree: fc.Arbitrary<Element> = fc.letrec<{ node: Element }>((tie) => ({
      node: fc.tuple(name, fc.dictionary(fc.constantFrom("to", "from", "id", "type"), value, { maxKeys: 3 }),
        fc.array(fc.oneof({ depthSize: "small" }, value, tie("node")), { maxLength: 3 }))
        .map(([n, attrs, kids]) => {
          const el = xml(n.replace(":", ""), attrs, ...kids);
          return el;
        }),
    })).node;
    fc.assert(fc.property(fc.array(tree, { minLength: 1, maxLength: 5 }), fc.array(fc.nat(), { maxLength: 8 }), (trees, cuts) => {
      const text = trees.map((t) => t.toString()).join(" \n");
      const bytes = Buffer.from(text, "utf8");
      const got = splitAll(chunked(bytes, cuts));
      assert.equal(got.errors.length, 0);
      const full: Array<{ el: Element; raw: string }> = [];
      const p = new StreamParser({ onStreamStart() {}, onElement: (el, raw) => full.push({ el, raw }), onStreamEnd() {}, onError: (e) => assert.fail(e.message) });
      p.write("<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams'>");
      p.write(text);
      assert.deepEqual(got.raws, full.map((f) => f.raw));
      assert.deepEqual(got.els.map((e) => [e.name, e.attrs]), full.map((f) => [f.el.name, f.el.attrs]));
    }), { numRuns: 300 });
  });

  test("incompleteUtf8Tail finds the bytes of a character still to come", () => {
    const euro = Buffer.from("\u20ac"); // 3 bytes
    const smile = Buffer.from("\ud83d\ude00"); // 4 bytes
    assert.equal(incompleteUtf8Tail(Buffer.from("abc")).length, 0);
    assert.equal(incompleteUtf8Tail(euro).length, 0);
    assert.equal(incompleteUtf8Tail(euro.subarray(0, 2)).length, 2);
    assert.equal(incompleteUtf8Tail(Buffer.concat([Buffer.from("a"), smile.subarray(0, 3)])).length, 3);
    assert.equal(incompleteUtf8Tail(Buffer.concat([Buffer.from("a"), smile.subarray(0, 1)])).length, 1);
  });
});

describe("StreamParser.handOff", () => {
  test("from a handler, gives the rest of the input to the next reader", () => {
    const got: string[] = [];
    let rest = "";
    const p = new StreamParser({
      onStreamStart() {},
      onElement: (el) => {
        got.push(el.name);
        if (el.name === "handshake") p.handOff((r) => (rest = r));
      },
      onStreamEnd() {},
      onError: (e) => assert.fail(e.message),
    });
    p.write("<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams'><handshake/><message to='x'><body>\u00e9</body></message><iq");
    assert.deepEqual(got, ["handshake"]);
    assert.equal(rest, "<message to='x'><body>\u00e9</body></message><iq");
    p.write("<ignored/>");
    assert.deepEqual(got, ["handshake"], "the parser reads nothing after handing off");
  });
});
