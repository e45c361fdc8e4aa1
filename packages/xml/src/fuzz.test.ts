/**
 * Property-based tests: hostile input never escapes the parser as an
 * exception, always ends in elements, nothing, the end of the stream or one
 * RFC 6120 stream error; built trees survive serialise + parse.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { Element, isXmlText, serialize, xml } from "./element.js";
import { StreamError } from "./errors.js";
import { parseElement } from "./fragment.js";
import { NS } from "./namespaces.js";
import { HEADER, STREAM_CONDITIONS, byteLength, collect, utf8, type Collector } from "./test-helpers.js";

const HEADER_BYTES = utf8(HEADER);
/** Per-case time bound: generous against GC pauses, far below any pathological behaviour. */
const CASE_MS = 1000;

/** Events must read: start, element*, then at most one of end / error. */
function checkInvariants(c: Collector, label: string): void {
  const kinds = c.events.map((e) => e.kind);
  assert.equal(kinds[0], "start", label);
  let i = 1;
  while (i < kinds.length && kinds[i] === "element") i++;
  assert.ok(kinds.length - i <= 1, `${label}: nothing after the end or an error: ${kinds.join(",")}`);
  const last = kinds[i];
  if (last !== undefined) assert.ok(last === "error" || last === "end", `${label}: ${kinds.join(",")}`);
  for (const err of c.errors) {
    assert.ok(err instanceof StreamError, label);
    assert.ok(STREAM_CONDITIONS.has(err.condition), `${label}: unknown condition ${err.condition}`);
  }
}

/** Writes `input` to the parser in chunks whose sizes cycle through `sizes` (all at once when empty). */
function writeChunked(c: Collector, input: Uint8Array | string, sizes: number[]): void {
  let at = 0;
  let k = 0;
  while (at < input.length) {
    const n = sizes.length === 0 ? input.length : sizes[k++ % sizes.length]!;
    c.parser.write(typeof input === "string" ? input.slice(at, at + n) : input.subarray(at, at + n));
    at += n;
  }
}

/** Writes `bytes` in chunks whose sizes cycle through `sizes`, then ends; must not throw. */
function feed(bytes: Uint8Array, sizes: number[]): Collector {
  const c = collect();
  c.parser.write(HEADER_BYTES);
  writeChunked(c, bytes, sizes);
  c.parser.end();
  return c;
}

function timed<T>(fn: () => T): T {
  const t0 = performance.now();
  const r = fn();
  const ms = performance.now() - t0;
  assert.ok(ms < CASE_MS, `took ${ms.toFixed(0)} ms`);
  return r;
}

const chunkSizes = fc.array(fc.integer({ min: 1, max: 64 }), { maxLength: 8 });

const TOKENS = [
  "<", ">", "/>", "</", "&", ";", "=", "'", '"', "/", "?", "!", "[", "]", " ", "\n", "\r", "\t",
  "<!DOCTYPE", "<!DOCTYPE x [<!ENTITY e 'v'>]>", "<!--", "-->", "<![CDATA[", "]]>", "<?", "?>", "<?xml version='1.0'?>",
  "message", "body", "a", "x:", "xmlns", "xmlns:x", "='urn:x'", " id='1'", ' to="a@b"',
  "<message>", "</message>", "<body>", "</body>", "<presence/>", "<x:y/>", "</stream:stream>", "<stream:features/>",
  "&amp;", "&lt;", "&#x263A;", "&#0;", "&#xZZ;", "&foo;", "&#65;",
  "é", "日本", "😀", "\u0000", "\u0001", "\uFFFE", "\u00A0", "\uFEFF",
];
/** Token soup, half the time starting inside a stanza so that more of it reaches the element parser. */
const tokenString = fc
  .tuple(
    fc.constantFrom("", "", "", "<presence/>", "<message>", "<message><body>", "<iq type='get'><query xmlns='urn:q'>"),
    fc.array(fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...TOKENS) }, { weight: 1, arbitrary: fc.string({ maxLength: 4 }) }), { maxLength: 60 }),
  )
  .map(([prefix, parts]) => prefix + parts.join(""));

describe("fuzz: hostile input", () => {
  it("random bytes in random chunks never throw and end cleanly", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), chunkSizes, (bytes, sizes) => {
        const c = timed(() => feed(bytes, sizes));
        checkInvariants(c, "bytes");
      }),
      { numRuns: Number(process.env.FUZZ_RUNS ?? 500) },
    );
  });

  it("random bytes after a stanza prefix never throw and end cleanly", () => {
    const prefix = utf8("<message to='a@b'><body>");
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), chunkSizes, (bytes, sizes) => {
        const all = new Uint8Array(prefix.length + bytes.length);
        all.set(prefix);
        all.set(bytes, prefix.length);
        const c = timed(() => feed(all, sizes));
        checkInvariants(c, "stanza bytes");
      }),
      { numRuns: Number(process.env.FUZZ_RUNS ?? 300) },
    );
  });

  it("XML-ish token soup never throws, ends cleanly, and chunking does not change the elements", () => {
    fc.assert(
      fc.property(tokenString, chunkSizes, (s, sizes) => {
        const bytes = utf8(s);
        const chunked = timed(() => feed(bytes, sizes));
        checkInvariants(chunked, "tokens chunked");
        const whole = timed(() => feed(bytes, []));
        checkInvariants(whole, "tokens whole");
        assert.deepEqual(chunked.raws, whole.raws, "same elements");
        assert.equal(chunked.errors.length, whole.errors.length, "same outcome");
        assert.equal(chunked.ends, whole.ends);
      }),
      { numRuns: Number(process.env.FUZZ_RUNS ?? 800) },
    );
  });

  it("token soup written as strings (UTF-16 units, split anywhere) never throws", () => {
    fc.assert(
      fc.property(tokenString, chunkSizes, (s, sizes) => {
        const c = collect();
        timed(() => {
          c.parser.write(HEADER);
          writeChunked(c, s, sizes);
          c.parser.end();
        });
        checkInvariants(c, "strings");
      }),
      { numRuns: Number(process.env.FUZZ_RUNS ?? 300) },
    );
  });
});

// ---- round trip of built trees ----

type Tree = { name: string; attrs: Record<string, string>; children: Array<Tree | string> };

const NAME = fc.stringMatching(/^[a-zA-Z_][a-zA-Z0-9_.\-é日]{0,7}$/).filter((n) => !/^xml/i.test(n));
/** Valid XML characters, biased towards the ones that need escaping. */
const CHAR = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom("&", "<", ">", '"', "'", "\t", "\n", "\r", "]", " ", ";", "#") },
  { weight: 2, arbitrary: fc.constantFrom("é", "日", "😀", "\u{10FFFF}", "\uFFFD", "\u00A0", "\u2028") },
  { weight: 3, arbitrary: fc.string({ unit: "binary", minLength: 1, maxLength: 1 }).filter(isXmlText) },
);
const TEXT = fc.string({ unit: CHAR, maxLength: 12 });

const treeArb = fc.letrec<{ tree: Tree; node: Tree | string }>((tie) => ({
  tree: fc.record({
    name: NAME,
    attrs: fc.dictionary(NAME, TEXT, { maxKeys: 4 }),
    children: fc.array(tie("node"), { maxLength: 4, depthIdentifier: "tree" }),
  }),
  node: fc.oneof({ depthSize: "small", withCrossShrink: true, depthIdentifier: "tree" }, TEXT, tie("tree")),
})).tree;

function build(t: Tree): Element {
  return xml(t.name, t.attrs, ...t.children.map((c) => (typeof c === "string" ? c : build(c))));
}

/** What the parser gives back: adjacent text merged, empty text gone, no namespaces compared. */
function expected(t: Tree): Tree {
  const children: Array<Tree | string> = [];
  for (const c of t.children) {
    if (typeof c !== "string") children.push(expected(c));
    else if (c === "") continue;
    else if (typeof children[children.length - 1] === "string") children[children.length - 1] += c;
    else children.push(c);
  }
  return { name: t.name, attrs: { ...t.attrs }, children };
}

function shape(el: Element): Tree {
  return { name: el.name, attrs: { ...el.attrs }, children: el.children.map((c) => (typeof c === "string" ? c : shape(c))) };
}

describe("fuzz: round trip", () => {
  it("built trees serialise and parse back to equal trees, with raw equal to the text", () => {
    fc.assert(
      fc.property(treeArb, chunkSizes, (t, sizes) => {
        const el = build(t);
        const text = serialize(el);
        assert.deepEqual(shape(parseElement(text, NS.CLIENT)), expected(t));
        // Through a stream, in chunks, between keepalives.
        const bytes = utf8(" " + text + "\n" + text);
        const c = feed(bytes, sizes);
        assert.equal(c.errors.length, 0);
        assert.deepEqual(c.raws, [text, text]);
        for (const got of c.elements) {
          assert.deepEqual(shape(got), expected(t));
          assert.equal(got.ns, NS.CLIENT);
        }
        // Serialising the parsed tree gives the same text again.
        assert.equal(serialize(c.elements[0]!), text);
        // And a deep clone serialises identically.
        assert.equal(serialize(el.clone()), text);
      }),
      { numRuns: Number(process.env.FUZZ_RUNS ?? 300) },
    );
  });

  it("a stanza passes maxStanzaBytes exactly when its UTF-8 size fits", () => {
    fc.assert(
      fc.property(
        fc.string({ unit: CHAR, maxLength: 60 }),
        fc.integer({ min: -3, max: 3 }),
        fc.constantFrom("", " ", "\r\n", "\n\n\t "),
        chunkSizes,
        (body, delta, ws, sizes) => {
          const stanza = serialize(xml("message", { to: "a@b" }, xml("body", {}, body)));
          const size = byteLength(stanza);
          const limit = Math.max(1, size + delta);
          const c = collect({ maxStanzaBytes: limit });
          c.parser.write(HEADER + "<presence/>");
          writeChunked(c, utf8(ws + stanza), sizes);
          if (size <= limit) {
            assert.equal(c.errors.length, 0, `size ${size} limit ${limit}`);
            assert.deepEqual(c.raws, ["<presence/>", stanza]);
          } else {
            assert.equal(c.errors.length, 1, `size ${size} limit ${limit}`);
            assert.equal(c.errors[0]!.condition, "policy-violation");
            assert.equal(c.raws.includes(stanza), false);
          }
        },
      ),
      { numRuns: Number(process.env.FUZZ_RUNS ?? 400) },
    );
  });
});
