/**
 * The farm's parser limits: each one at, and one past, its value.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { NS } from "./namespaces.js";
import { DEFAULT_LIMITS, StreamParser } from "./parser.js";
import { HEADER, byteLength, collect, onlyError, run, utf8, type Collector } from "./test-helpers.js";

/** The parser's internal buffers, for checking that memory stays bounded. */
function internals(p: StreamParser): { buf: number; saxText: number } {
  const inner = p as unknown as { buf: string; sax: { text: string } };
  return { buf: inner.buf.length, saxText: inner.sax.text.length };
}

/** `<message><body>` + filler + `</body></message>` of exactly `bytes` bytes of UTF-8. */
function stanzaOfBytes(bytes: number, unit = "a"): string {
  const frame = "<message><body></body></message>";
  const unitBytes = byteLength(unit);
  const room = bytes - frame.length;
  assert.ok(room >= 0);
  const n = Math.floor(room / unitBytes);
  const pad = "b".repeat(room - n * unitBytes);
  const s = `<message><body>${unit.repeat(n)}${pad}</body></message>`;
  assert.equal(byteLength(s), bytes);
  return s;
}

function feedBytewise(c: Collector, s: string): void {
  const bytes = utf8(s);
  for (let i = 0; i < bytes.length; i++) c.parser.write(bytes.subarray(i, i + 1));
}

describe("defaults", () => {
  it("has the documented defaults", () => {
    assert.deepEqual({ ...DEFAULT_LIMITS }, {
      maxStanzaBytes: 256 * 1024,
      maxDepth: 32,
      maxAttributes: 64,
      maxHeaderBytes: 4096,
    });
    assert.ok(Object.isFrozen(DEFAULT_LIMITS));
    // RFC 6120 §13.12: at least 10,000 bytes.
    assert.ok(DEFAULT_LIMITS.maxStanzaBytes >= 10000);
  });

  it("accepts a default-sized stanza and rejects a larger one", () => {
    const ok = stanzaOfBytes(DEFAULT_LIMITS.maxStanzaBytes);
    assert.equal(run(HEADER + ok).raws[0], ok);
    const big = stanzaOfBytes(DEFAULT_LIMITS.maxStanzaBytes + 1);
    assert.equal(onlyError(run(HEADER + big)).condition, "policy-violation");
  });
});

describe("maxStanzaBytes", () => {
  const limit = 1000;

  for (const unit of ["a", "é", "日", "😀"]) {
    it(`counts UTF-8 bytes (${unit}: ${byteLength(unit)} bytes)`, () => {
      const exact = stanzaOfBytes(limit, unit);
      const over = stanzaOfBytes(limit + 1, unit);
      for (const feed of ["one write", "bytewise", "strings"] as const) {
        for (const [stanza, ok] of [[exact, true], [over, false]] as const) {
          const c = collect({ maxStanzaBytes: limit });
          c.parser.write(HEADER);
          if (feed === "one write") c.parser.write(stanza);
          else if (feed === "bytewise") feedBytewise(c, stanza);
          else for (let i = 0; i < stanza.length; i += 7) c.parser.write(stanza.slice(i, i + 7));
          if (ok) {
            assert.equal(c.errors.length, 0, `${feed}: exact`);
            assert.deepEqual(c.raws, [stanza]);
          } else {
            assert.equal(onlyError(c).condition, "policy-violation", `${feed}: over`);
            assert.equal(c.elements.length, 0);
          }
        }
      }
    });
  }

  it("does not count whitespace keepalives before a stanza", () => {
    const exact = stanzaOfBytes(limit);
    const c = collect({ maxStanzaBytes: limit });
    c.parser.write(HEADER + "<presence/>");
    // Keepalives, then the start of the stanza in the same read.
    c.parser.write("\r\n \t\n" + exact.slice(0, limit - 1));
    c.parser.write(exact.slice(limit - 1));
    assert.equal(c.errors.length, 0);
    assert.deepEqual(c.raws, ["<presence/>", exact]);
  });

  it("applies to each stanza separately", () => {
    const exact = stanzaOfBytes(limit);
    const c = run(HEADER + exact + exact + "\n" + exact, { maxStanzaBytes: limit });
    assert.equal(c.errors.length, 0);
    assert.equal(c.elements.length, 3);
  });

  it("stops a huge stanza early, with bounded memory", () => {
    const c = collect({ maxStanzaBytes: 10_000 });
    c.parser.write(HEADER + "<message><body>");
    const chunk = "x".repeat(1000);
    let written = 0;
    let maxBuf = 0;
    for (let i = 0; i < 10_000 && c.errors.length === 0; i++) {
      c.parser.write(chunk);
      written++;
      const { buf, saxText } = internals(c.parser);
      maxBuf = Math.max(maxBuf, buf, saxText);
    }
    assert.equal(onlyError(c).condition, "policy-violation");
    assert.ok(written <= 11, `failed after ${written} chunks`);
    assert.ok(maxBuf <= 12_000, `buffers stayed small (${maxBuf})`);
  });

  it("stops a huge stanza early when it arrives in one large write", () => {
    const c = collect({ maxStanzaBytes: 10_000 });
    c.parser.write(HEADER);
    const t0 = performance.now();
    c.parser.write("<message><body>" + "x".repeat(5_000_000));
    assert.equal(onlyError(c).condition, "policy-violation");
    assert.ok(performance.now() - t0 < 500);
  });

  it("stops a huge open tag, comment, PI or text between stanzas", () => {
    for (const start of ["<message a='", "<", "<!--", "<?pi ", "<![CDATA[", "&"]) {
      const c = collect({ maxStanzaBytes: 10_000 });
      c.parser.write(HEADER + start);
      const filler = start === "<" ? "m" : "y";
      let written = 0;
      for (let i = 0; i < 1000 && c.errors.length === 0; i++) {
        c.parser.write(filler.repeat(1000));
        written++;
      }
      assert.equal(c.errors.length, 1, start);
      assert.ok(written <= 11, `${start}: failed after ${written} chunks`);
      const { buf, saxText } = internals(c.parser);
      assert.ok(buf <= 12_000 && saxText <= 12_000, start);
    }
  });
});

describe("whitespace keepalives", () => {
  it("never count against the stanza limit, and are not kept in memory", () => {
    const c = collect({ maxStanzaBytes: 1000 });
    c.parser.write(HEADER + "<presence/>");
    const ws = " \n\t\r\n ".repeat(64 * 1024 / 8);
    let total = 0;
    let maxBuf = 0;
    while (total < 10 * 1024 * 1024) {
      c.parser.write(ws);
      total += ws.length;
      const { buf, saxText } = internals(c.parser);
      maxBuf = Math.max(maxBuf, buf, saxText);
    }
    c.parser.write(utf8(" ".repeat(100_000) + "<presence/>"));
    assert.equal(c.errors.length, 0);
    assert.deepEqual(c.raws, ["<presence/>", "<presence/>"]);
    assert.ok(maxBuf < 100_000, `buffers stayed small (${maxBuf})`);
  });

  it("of one space each, many times", () => {
    const c = collect({ maxStanzaBytes: 100 });
    c.parser.write(HEADER);
    for (let i = 0; i < 20_000; i++) c.parser.write(" ");
    c.parser.write("<presence/>");
    assert.equal(c.errors.length, 0);
    assert.equal(c.elements.length, 1);
  });
});

describe("maxDepth", () => {
  const nest = (n: number): string => "<a>".repeat(n) + "</a>".repeat(n);

  it("counts the stanza as depth 1", () => {
    for (const limit of [1, 2, 5]) {
      const ok = run(HEADER + nest(limit), { maxDepth: limit });
      assert.equal(ok.errors.length, 0, `depth ${limit}`);
      assert.equal(ok.elements.length, 1);
      assert.equal(onlyError(run(HEADER + nest(limit + 1), { maxDepth: limit })).condition, "policy-violation");
    }
  });

  it("has a default of 32, with self-closing elements counted too", () => {
    assert.equal(run(HEADER + nest(32)).errors.length, 0);
    assert.equal(onlyError(run(HEADER + nest(33))).condition, "policy-violation");
    const selfClosing = "<a>".repeat(31) + "<b/>" + "</a>".repeat(31);
    assert.equal(run(HEADER + selfClosing).errors.length, 0);
    const tooDeep = "<a>".repeat(32) + "<b/>" + "</a>".repeat(32);
    assert.equal(onlyError(run(HEADER + tooDeep)).condition, "policy-violation");
  });

  it("fails as soon as the too-deep tag opens", () => {
    const c = collect({ maxDepth: 3 });
    c.parser.write(HEADER + "<a><b><c><d ");
    assert.equal(onlyError(c).condition, "policy-violation");
  });

  it("is per stanza: siblings do not add up", () => {
    const c = run(HEADER + "<a><b><c/></b><b><c/></b></a>" + nest(3), { maxDepth: 3 });
    assert.equal(c.errors.length, 0);
    assert.equal(c.elements.length, 2);
  });
});

describe("maxAttributes", () => {
  const withAttrs = (n: number): string =>
    "<message " + Array.from({ length: n }, (_, i) => `a${i}='${i}'`).join(" ") + "/>";

  it("allows exactly the limit and rejects one more", () => {
    assert.equal(run(HEADER + withAttrs(5), { maxAttributes: 5 }).errors.length, 0);
    assert.equal(onlyError(run(HEADER + withAttrs(6), { maxAttributes: 5 })).condition, "policy-violation");
    assert.equal(run(HEADER + withAttrs(64)).errors.length, 0);
    assert.equal(onlyError(run(HEADER + withAttrs(65))).condition, "policy-violation");
  });

  it("counts namespace declarations and applies to children", () => {
    // This header has two attributes, both namespace declarations.
    const header = `<stream:stream xmlns='jabber:client' xmlns:stream='${NS.STREAMS}'>`;
    assert.equal(onlyError(run(header + "<message xmlns:p='urn:p' a='1' p:b='2'/>", { maxAttributes: 2 })).condition, "policy-violation");
    assert.equal(run(header + "<message xmlns:p='urn:p' p:b='2'/>", { maxAttributes: 2 }).errors.length, 0);
    assert.equal(onlyError(run(header + "<message><body a='1' b='2' c='3'/></message>", { maxAttributes: 2 })).condition, "policy-violation");
    assert.equal(onlyError(run(`<stream:stream xmlns='jabber:client' xmlns:stream='${NS.STREAMS}' to='x'>`, { maxAttributes: 2 })).condition, "policy-violation");
  });

  it("applies to the stream header", () => {
    // HEADER has 5 attributes.
    assert.equal(run(HEADER, { maxAttributes: 5 }).errors.length, 0);
    assert.equal(onlyError(run(HEADER, { maxAttributes: 4 })).condition, "policy-violation");
  });
});

describe("maxHeaderBytes", () => {
  /** A header (declaration included) of exactly `bytes` bytes. */
  function headerOfBytes(bytes: number, unit = "a"): string {
    const frame = `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='${NS.STREAMS}' to=''>`;
    const room = bytes - byteLength(frame);
    const n = Math.floor(room / byteLength(unit));
    const pad = "b".repeat(room - n * byteLength(unit));
    const h = frame.replace("to=''", `to='${unit.repeat(n)}${pad}'`);
    assert.equal(byteLength(h), bytes);
    return h;
  }

  for (const unit of ["a", "é", "😀"]) {
    it(`allows a header of exactly the limit and rejects one byte more (${unit})`, () => {
      for (const limit of [200, 4096]) {
        const opts = limit === 4096 ? {} : { maxHeaderBytes: limit };
        const exact = headerOfBytes(limit, unit);
        const over = headerOfBytes(limit + 1, unit);
        const ok = run(exact + "<presence/>", opts);
        assert.equal(ok.errors.length, 0, `exact ${limit}`);
        assert.equal(ok.headers.length, 1);
        assert.equal(ok.elements.length, 1);
        const bad = run(over + "<presence/>", opts);
        assert.equal(onlyError(bad).condition, "policy-violation", `over ${limit} in one write`);
        assert.equal(bad.headers.length, 0, "the oversized header is not reported");
        const c = collect(opts);
        feedBytewise(c, over);
        assert.equal(onlyError(c).condition, "policy-violation", `over ${limit} bytewise`);
        assert.equal(c.headers.length, 0);
      }
    });
  }

  it("stops an endless header early", () => {
    const c = collect({ maxHeaderBytes: 1000 });
    c.parser.write(`<stream:stream xmlns:stream='${NS.STREAMS}' to='`);
    let written = 0;
    for (let i = 0; i < 1000 && c.errors.length === 0; i++) {
      c.parser.write("z".repeat(100));
      written++;
    }
    assert.equal(onlyError(c).condition, "policy-violation");
    assert.ok(written <= 11);
  });

  it("counts whatever comes before the header", () => {
    const header = `<stream:stream xmlns='jabber:client' xmlns:stream='${NS.STREAMS}'>`;
    assert.equal(run(" ".repeat(3000) + header).errors.length, 0);
    assert.equal(onlyError(run(" ".repeat(5000) + header)).condition, "policy-violation");
    const c = collect();
    for (let i = 0; i < 5000; i++) c.parser.write(" ");
    assert.equal(onlyError(c).condition, "policy-violation");
  });

  it("does not apply to stanzas", () => {
    const c = run(HEADER + stanzaOfBytes(10_000), { maxHeaderBytes: 200 });
    assert.equal(c.errors.length, 0);
    assert.equal(c.elements.length, 1);
  });
});
