/**
 * StreamParser.release(): an idle stream frees its saxes and starts a new
 * one when data comes. Whatever the cut points and wherever release() is
 * tried, the handlers must see exactly what one parser that was never
 * released sees, errors included.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { NS } from "./namespaces.js";
import { HEADER, collect, digest, onlyError, plain, prng, utf8, type Collector } from "./test-helpers.js";
import type { StreamParserOptions } from "./parser.js";

const STANZAS = [
  "<message to='juliet@example.com' id='m1' type='chat'><body>Art thou not Romeo? 日本語 😀</body></message>",
  "<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>",
  "<presence/>",
  "<message><body>a &amp; b</body><![CDATA[<x> & ]]></message>",
];
const STREAM = HEADER + "\n" + STANZAS.join(" \r\n") + "\n</stream:stream>";

/** Feeds `bytes` cut at random places, trying release() after every write. */
function feedReleasing(bytes: Uint8Array, seed: number, opts: StreamParserOptions = {}): { c: Collector; released: number } {
  const c = collect(opts);
  const rnd = prng(seed);
  let released = 0;
  for (let at = 0; at < bytes.length;) {
    const n = 1 + Math.floor(rnd() * 40);
    c.parser.write(bytes.subarray(at, at + n));
    at += n;
    if (c.parser.release()) released++;
  }
  return { c, released };
}

function once(input: string, opts: StreamParserOptions = {}): Collector {
  const c = collect(opts);
  c.parser.write(utf8(input));
  return c;
}

describe("releasing an idle parser", () => {
  it("gives the same events, raw text included, for any cut points", () => {
    const expected = digest(once(STREAM).events);
    let releasedSomewhere = 0;
    for (let seed = 1; seed <= 200; seed++) {
      const { c, released } = feedReleasing(utf8(STREAM), seed);
      assert.deepEqual(digest(c.events), expected, `seed ${seed}`);
      releasedSomewhere += released;
    }
    // Cuts fall between stanzas often enough (146 times for these seeds).
    assert.ok(releasedSomewhere >= 100, `release() took effect between stanzas ${releasedSomewhere} times`);
  });

  it("same events in canonical and shallow modes", () => {
    for (const opts of [{ canonical: true }, { shallow: true }]) {
      const expected = digest(once(STREAM, opts).events);
      for (let seed = 1; seed <= 50; seed++) assert.deepEqual(digest(feedReleasing(utf8(STREAM), seed, opts).c.events), expected);
    }
  });

  it("keeps the namespace prefixes the header declared", () => {
    const header = `<stream:stream xmlns='jabber:client' xmlns:stream='${NS.STREAMS}' xmlns:x='urn:example:x' to='example.com' version='1.0'>`;
    const stanza = "<message><x:data a='1'/></message>";
    const c = collect({ canonical: true });
    c.parser.write(header + stanza);
    assert.equal(c.parser.release(), true);
    assert.equal(c.parser.released, true);
    c.parser.write(stanza);
    assert.equal(c.errors.length, 0);
    assert.equal(c.headers.length, 1, "the handlers hear of the header once");
    assert.deepEqual(plain(c.elements[1]!), plain(c.elements[0]!));
    assert.equal(c.elements[1]!.getChild("data")?.ns, "urn:example:x");
    assert.equal(c.raws[1], stanza);
  });

  it("is refused inside a stanza, before the header, and with part of a character pending", () => {
    const c = collect();
    c.parser.write(HEADER.slice(0, 20));
    assert.equal(c.parser.release(), false, "before the header");
    c.parser.write(HEADER.slice(20) + "<message><body>");
    assert.equal(c.parser.release(), false, "inside a stanza");
    c.parser.write("hi</body></message>");
    const smile = utf8("😀");
    c.parser.write(smile.subarray(0, 2));
    assert.equal(c.parser.release(), false, "part of a character in the decoder");
    assert.equal(c.parser.released, false);
    // The rest of that character, outside a stanza: refused as before.
    c.parser.write(smile.subarray(2));
    assert.equal(onlyError(c).condition, "bad-format");
  });

  it("keepalive white space does not start a new saxes", () => {
    const c = collect();
    c.parser.write(HEADER + STANZAS[2]);
    assert.equal(c.parser.release(), true);
    c.parser.write(" \n \t");
    assert.equal(c.parser.released, true);
    // A plain stanza is read by the quick reader: still no saxes.
    c.parser.write(STANZAS[2]!);
    assert.equal(c.parser.released, true);
    // One with a CDATA section needs saxes.
    c.parser.write(STANZAS[3]!);
    assert.equal(c.parser.released, false);
    assert.deepEqual(c.raws, [STANZAS[2], STANZAS[2], STANZAS[3]]);
  });

  it("answers hostile input after a release as it would have before", () => {
    const cases: Array<[string, string, StreamParserOptions?]> = [
      ["text outside", "bad-format"],
      ["<!-- c --><presence/>", "restricted-xml"],
      ["<?pi x?>", "restricted-xml"],
      ["<message><body>&ent;</body></message>", "restricted-xml"],
      ["<message></iq>", "not-well-formed"],
      ["<a:b/>", "not-well-formed"],
      [`<message>${"<a>".repeat(40)}`, "policy-violation"],
      [`<message><body>${"x".repeat(3000)}</body></message>`, "policy-violation", { maxStanzaBytes: 2000 }],
    ];
    for (const [input, condition, opts] of cases) {
      const c = collect(opts);
      c.parser.write(HEADER + STANZAS[1]);
      assert.equal(c.parser.release(), true);
      c.parser.write(input);
      assert.equal(onlyError(c).condition, condition, input.slice(0, 30));
      const fresh = collect(opts);
      fresh.parser.write(HEADER + STANZAS[1] + input);
      assert.equal(onlyError(fresh).condition, condition, "the same without a release");
    }
  });

  it("a reset after a release reads a new header", () => {
    const c = collect();
    c.parser.write(HEADER + STANZAS[2]);
    assert.equal(c.parser.release(), true);
    c.parser.reset();
    c.parser.write(HEADER + STANZAS[1]);
    assert.equal(c.errors.length, 0);
    assert.equal(c.headers.length, 2);
    assert.deepEqual(c.raws, [STANZAS[2], STANZAS[1]]);
  });

  it("the end of the stream after a release", () => {
    const c = collect();
    c.parser.write(HEADER + STANZAS[2]);
    assert.equal(c.parser.release(), true);
    c.parser.write("</stream:stream>");
    assert.equal(c.ends, 1);
    assert.equal(c.errors.length, 0);
  });
});
