/**
 * The quick reader (plain-element.ts) against saxes: for any input, a
 * parser using it must report exactly what a parser without it reports
 * (the same elements, trees, raw text, errors, in the same order), in every
 * mode and however the input is cut. And it must really take the plain
 * stanzas clients send, or it saves nothing.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { NS } from "./namespaces.js";
import { DEFAULT_LIMITS, type StreamParserOptions } from "./parser.js";
import { readPlainElement } from "./plain-element.js";
import { HEADER, collect, digest, utf8 } from "./test-helpers.js";

// Fixed, so that CI runs the same cases each time; set PLAIN_SEED (and PLAIN_RUNS) to explore further.
const SEED = Number(process.env.PLAIN_SEED ?? 17);
const MODES: StreamParserOptions[] = [{}, { canonical: true }, { shallow: true }, { maxDepth: 3, maxAttributes: 3, maxStanzaBytes: 300 }];

/** What each parser reports for `input` written after the header in pieces cut at `cuts`. */
function both(input: string, opts: StreamParserOptions, cuts: number[] = []): { quick: unknown[]; saxes: unknown[] } {
  const run = (quick: boolean): unknown[] => {
    const c = collect({ ...opts, quick });
    c.parser.write(HEADER);
    const bytes = utf8(input);
    let prev = 0;
    for (const cut of [...new Set(cuts)].sort((a, b) => a - b)) {
      if (cut <= prev || cut >= bytes.length) continue;
      c.parser.write(bytes.subarray(prev, cut));
      prev = cut;
    }
    c.parser.write(bytes.subarray(prev));
    c.parser.end();
    return digest(c.events);
  };
  return { quick: run(true), saxes: run(false) };
}

function same(input: string, cuts: number[] = []): void {
  for (const opts of MODES) {
    const { quick, saxes } = both(input, opts, cuts);
    assert.deepEqual(quick, saxes, `${JSON.stringify(opts)}: ${JSON.stringify(input).slice(0, 200)}`);
  }
}

const PLAIN = [
  "<message to='juliet@example.com/balcony' id='m1' type='chat' xml:lang='en'><body>Art thou not Romeo? 日本語 😀 a &amp; b &lt;3 &#x1F600; &#65;</body><active xmlns='http://jabber.org/protocol/chatstates'/></message>",
  "<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>",
  "<presence/>",
  "<presence><show>away</show><status>out\n\tback soon</status><priority>5</priority></presence>",
  '<iq type="set" id="b"><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"><resource>r</resource></bind></iq>',
  "<r xmlns='urn:xmpp:sm:3'/>",
  "<message><x xmlns=''><y a = 'q&quot;&apos;' /></x></message >",
];

// Inputs the quick reader must leave to saxes: each is either an error or needs what only saxes does.
const NOT_PLAIN = [
  "<message><body>a &ent; b</body></message>",
  "<message><body>&#0;</body></message>",
  "<message><body>&#xD800;</body></message>",
  "<message><body><![CDATA[<x>]]></body></message>",
  "<message><!-- c --></message>",
  "<message><?pi x?></message>",
  "<message><body>a ]]> b</body></message>",
  "<message><body>line\r\nbreak</body></message>",
  "<message to='a\tb'/>",
  "<message to='a\nb'/>",
  "<message to='a<b'/>",
  "<message a='1' a='2'/>",
  "<message a='1'b='2'/>",
  "<message __proto__='x'/>",
  "<message xmlns:x='urn:x' x:a='1'/>",
  "<x:message xmlns:x='jabber:client'/>",
  "<message xmlns='http://www.w3.org/XML/1998/namespace'/>",
  "<xmlfoo/>",
  "<message xmlfoo='1'/>",
  "<mëssage/>",
  "<message></iq>",
  "<message><body></message></body>",
  "<message><body>\u0001</body></message>",
  "<message><body>\uFFFE</body></message>",
  "<message/ >",
  "<message><body>unfinished",
  "</stream:stream>",
];

describe("the quick reader for plain stanzas", () => {
  const options = { contentNs: NS.CLIENT, canonical: true, shallow: false, limits: { ...DEFAULT_LIMITS } };

  it("takes the plain stanzas clients send", () => {
    for (const s of PLAIN) {
      const read = readPlainElement(s, 0, options);
      assert.ok(read, s);
      assert.equal(read.end, s.length, s);
    }
  });

  it("leaves everything else to saxes", () => {
    for (const s of NOT_PLAIN) assert.equal(readPlainElement(s, 0, options), undefined, s);
  });

  it("declines what would pass a limit, so that saxes reports it", () => {
    const limits = { ...DEFAULT_LIMITS, maxDepth: 2, maxAttributes: 2, maxStanzaBytes: 90 };
    const o = { ...options, limits };
    assert.equal(readPlainElement("<a><b><c/></b></a>", 0, o), undefined, "depth");
    assert.equal(readPlainElement("<a x='1' y='2' z='3'/>", 0, o), undefined, "attributes");
    assert.equal(readPlainElement(`<a>${"x".repeat(40)}</a>`, 0, o), undefined, "over a third of the byte limit");
    assert.ok(readPlainElement("<a><b/></a>", 0, o));
  });

  it("reports what saxes reports, stanza by stanza and all together", () => {
    for (const s of [...PLAIN, ...NOT_PLAIN]) same(s);
    same(PLAIN.join("\n  "));
    // A plain stanza after one saxes read, and the other way round.
    same(NOT_PLAIN[3]! + PLAIN[0]! + " " + PLAIN[1]!);
    same(PLAIN[0]! + NOT_PLAIN[0]!);
    same(PLAIN[2]! + "</stream:stream>" + PLAIN[2]!);
    same(PLAIN[2]! + " text outside");
  });

  it("reports what saxes reports however the input is cut", () => {
    const input = [PLAIN[0], NOT_PLAIN[3], PLAIN[3], PLAIN[1], PLAIN[6]].join(" ");
    const length = utf8(input).length;
    fc.assert(fc.property(fc.array(fc.integer({ min: 1, max: length - 1 }), { maxLength: 6 }), (cuts) => same(input, cuts)), { numRuns: 150, seed: SEED });
  });

  it("builds what saxes builds for generated stanzas, plain or not", () => {
    const names = fc.constantFrom("message", "body", "x", "a.b-c_d", "x:y", "xmlns", "é", "_", "Q1");
    const attrNames = fc.constantFrom("to", "id", "type", "xml:lang", "xmlns", "xmlns:p", "p:q", "to", "a-b", "xmlfoo");
    const chars = fc.constantFrom("a", " ", "\n", "\t", "\r", "&amp;", "&lt;", "&#65;", "&#x10FFFF;", "&#1;", "&bogus;", "&", "<", ">", "]]>", "'", '"', "😀", "\u0007", "\uFFFF", "日");
    const text = fc.array(chars, { maxLength: 6 }).map((a) => a.join(""));
    // Namespace names that repeat the parent's, change it or undeclare it, besides any text.
    const value = fc.oneof(text, fc.constantFrom("jabber:client", "urn:a", ""));
    const attr = fc.tuple(attrNames, value, fc.constantFrom("'", '"'), fc.constantFrom(" ", "\n", "  ", "")).map(
      ([n, v, q, ws]) => `${ws}${n}=${q}${v}${q}`,
    );
    const leaf = fc.tuple(names, fc.array(attr, { maxLength: 3 })).map(([n, a]) => `<${n}${a.join("")}/>`);
    const element: fc.Arbitrary<string> = fc.letrec<{ el: string }>((tie) => ({
      el: fc.oneof(
        { depthSize: "small", withCrossShrink: true },
        leaf,
        fc.tuple(names, fc.array(attr, { maxLength: 3 }), fc.array(fc.oneof(text, tie("el"), fc.constant("<![CDATA[c]]>")), { maxLength: 3 }), fc.boolean())
          .map(([n, a, kids, match]) => `<${n}${a.join("")}>${kids.join("")}</${match ? n : "other"}>`),
      ),
    })).el;
    fc.assert(fc.property(fc.array(element, { minLength: 1, maxLength: 3 }), fc.constantFrom("", " ", "\n"), (els, sep) => same(els.join(sep))), { numRuns: Number(process.env.PLAIN_RUNS ?? 400), seed: SEED });
  });
});
