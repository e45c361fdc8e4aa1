import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Jid, JidError, prepDomainpart, prepLocalpart, prepResourcepart, type JidErrorCode } from "./index.js";
import { isVirama } from "./precis.js";

function parts(s: string): [string, string, string] {
  const j = Jid.parse(s);
  return [j.local, j.domain, j.resource];
}

function assertJidError(fn: () => unknown, code: JidErrorCode, input?: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof JidError, `expected JidError, got ${String(err)}`);
    assert.ok(err instanceof Error);
    assert.equal(err.name, "JidError");
    assert.equal(err.code, code, err.message);
    if (input !== undefined) {
      assert.equal(err.input, input);
      assert.ok(err.message.includes(JSON.stringify(input).slice(1, -1).slice(0, 50)), err.message);
    }
    return true;
  });
}

describe("RFC 7622 section 3.5: valid examples", () => {
  const cases: Array<[string, [string, string, string], string]> = [
    ["juliet@example.com", ["juliet", "example.com", ""], "juliet@example.com"],
    ["juliet@example.com/foo", ["juliet", "example.com", "foo"], "juliet@example.com/foo"],
    ["juliet@example.com/foo bar", ["juliet", "example.com", "foo bar"], "juliet@example.com/foo bar"],
    ["juliet@example.com/foo@bar", ["juliet", "example.com", "foo@bar"], "juliet@example.com/foo@bar"],
    ["foo\\20bar@example.com", ["foo\\20bar", "example.com", ""], "foo\\20bar@example.com"],
    ["fussball@example.com", ["fussball", "example.com", ""], "fussball@example.com"],
    ["fußball@example.com", ["fußball", "example.com", ""], "fußball@example.com"],
    ["π@example.com", ["π", "example.com", ""], "π@example.com"],
    ["Σ@example.com/foo", ["σ", "example.com", "foo"], "σ@example.com/foo"],
    ["σ@example.com/foo", ["σ", "example.com", "foo"], "σ@example.com/foo"],
    ["ς@example.com/foo", ["ς", "example.com", "foo"], "ς@example.com/foo"],
    ["king@example.com/♚", ["king", "example.com", "♚"], "king@example.com/♚"],
    ["example.com", ["", "example.com", ""], "example.com"],
    ["example.com/foobar", ["", "example.com", "foobar"], "example.com/foobar"],
    ["a.example.com/b@example.net", ["", "a.example.com", "b@example.net"], "a.example.com/b@example.net"],
  ];
  for (const [input, expected, str] of cases) {
    it(`parses ${JSON.stringify(input)}`, () => {
      assert.deepEqual(parts(input), expected);
      assert.equal(Jid.parse(input).toString(), str);
    });
  }

  it("keeps fußball and fussball distinct (toLowerCase, not full case folding)", () => {
    assert.equal(Jid.equal("fußball@example.com", "fussball@example.com"), false);
  });

  it("accepts a leading space in the resourcepart (RFC 7622 erratum 4560)", () => {
    assert.deepEqual(parts("juliet@example.com/ foo"), ["juliet", "example.com", " foo"]);
  });
});

describe("RFC 7622 section 3.5: invalid examples", () => {
  const cases: Array<[string, JidErrorCode]> = [
    ['"juliet"@example.com', "forbidden-char"],
    ["foo bar@example.com", "forbidden-char"],
    ["juliet@example.com/", "empty-resource"],
    ["@example.com/", "empty-localpart"],
    ["@example.com", "empty-localpart"],
    // U+2163 ROMAN NUMERAL FOUR: lower-cased to U+2173, a compatibility character
    // (HasCompat) that the IdentifierClass disallows.
    ["henry\u2163@example.com", "forbidden-char"],
    // U+265A BLACK CHESS KING: a symbol, disallowed by the IdentifierClass.
    ["♚@example.com", "forbidden-char"],
    ["juliet@", "empty-domain"],
    ["/foobar", "empty-domain"],
    ["", "empty-domain"],
    [".", "empty-domain"],
  ];
  for (const [input, code] of cases) {
    it(`rejects ${JSON.stringify(input)} with ${code}`, () => {
      assertJidError(() => Jid.parse(input), code, input);
      assert.equal(Jid.tryParse(input), null);
    });
  }
});

describe("splitting (RFC 7622 section 3.1)", () => {
  it("takes the resource after the first slash, even if it contains / and @", () => {
    assert.deepEqual(parts("juliet@example.com/foo/bar@baz"), ["juliet", "example.com", "foo/bar@baz"]);
  });
  it("ignores an @ that comes after the first slash", () => {
    assert.deepEqual(parts("example.com/juliet@example.net"), ["", "example.com", "juliet@example.net"]);
  });
  it("uses the first @ for the localpart, so a second @ lands in the domain and fails", () => {
    assertJidError(() => Jid.parse("a@b@example.com"), "bad-domain");
  });
});

describe("localpart normalisation and validation", () => {
  it("folds upper-case ASCII", () => {
    assert.deepEqual(parts("JuLiEt@Example.COM/Balcony"), ["juliet", "example.com", "Balcony"]);
  });
  it("maps fullwidth characters (width mapping) before case mapping", () => {
    assert.equal(Jid.parse("ＪＵＬＩＥＴ@example.com").local, "juliet");
  });
  it("applies NFC", () => {
    assert.equal(Jid.parse("e\u0301@example.com").local, "\u00e9");
    assert.ok(Jid.equal("e\u0301@example.com", "\u00c9@example.com"));
  });
  it("uses context-sensitive lower-casing of final sigma", () => {
    assert.equal(Jid.parse("ΟΔΟΣ@example.com").local, "οδος");
  });
  it("rejects each RFC 7622 forbidden character", () => {
    for (const ch of ['"', "&", "'", ":", "<", ">"]) {
      assertJidError(() => Jid.parse(`a${ch}b@example.com`), "forbidden-char");
    }
    // Fullwidth @ is width-mapped to '@' and then rejected.
    assertJidError(() => Jid.parse("a\uff20b@example.com"), "forbidden-char");
  });
  it("rejects spaces, controls, ignorables, noncharacters, surrogates and private use", () => {
    for (const ch of [" ", "\u00a0", "\u3000", "\t", "\u0000", "\u007f", "\u0085", "\u00ad", "\u200b", "\ufeff", "\ufffe", "\uffff", "\ud800", "\ue000", "\u2028"]) {
      assertJidError(() => Jid.parse(`a${ch}b@example.com`), "forbidden-char");
    }
  });
  it("rejects symbols, compatibility characters and non-ASCII punctuation", () => {
    for (const s of ["☃", "€", "\u00bd", "\ufb01", "\u00bf", "\u2014", "\u01c5", "\u20dd"]) {
      assertJidError(() => Jid.parse(`a${s}@example.com`), "forbidden-char");
    }
  });
  it("case-maps OHM SIGN to omega (valid after mapping)", () => {
    assert.equal(Jid.parse("\u2126@example.com").local, "\u03c9"); // Ω sign -> ω
  });
  it("accepts letters and digits of other scripts", () => {
    for (const local of ["juliëtte", "ромео", "ジュリエット", "朱丽叶", "جولييت", "ג׳ולייט", "١٢٣", "a_b-c.d+e!f", "user\\5c"]) {
      assert.equal(Jid.parse(`${local}@example.com`).local, local.toLowerCase().normalize("NFC"));
    }
  });
  it("applies CONTEXTO rules", () => {
    assert.equal(Jid.parse("l\u00b7l@example.com").local, "l\u00b7l"); // MIDDLE DOT between two l
    assertJidError(() => Jid.parse("a\u00b7b@example.com"), "forbidden-char");
    assertJidError(() => Jid.parse("\u0660\u06f0@example.com"), "forbidden-char"); // mixed Arabic-Indic digits
  });
  it("applies CONTEXTJ (virama rule) to ZWJ / ZWNJ", () => {
    assert.ok(Jid.tryParse("\u0915\u094d\u200d\u0937@example.com") !== null);
    assertJidError(() => Jid.parse("a\u200db@example.com"), "forbidden-char");
    assertJidError(() => Jid.parse("\u200c@example.com"), "forbidden-char");
  });
  it("detects viramas from the built-in Unicode data", () => {
    assert.equal(isVirama("\u094d"), true); // DEVANAGARI SIGN VIRAMA
    assert.equal(isVirama("\u0e3a"), true); // THAI CHARACTER PHINTHU
    assert.equal(isVirama("\u093c"), false); // nukta (ccc 7)
    assert.equal(isVirama("\u3099"), false); // kana voicing mark (ccc 8)
    assert.equal(isVirama("\u05b0"), false); // sheva (ccc 10)
    assert.equal(isVirama("\u0301"), false);
    assert.equal(isVirama("a"), false);
  });
  it("prepLocalpart is idempotent", () => {
    for (const s of ["Juliet", "ΟΔΟΣ", "ＡＢＣ", "e\u0301", "İstanbul"]) {
      const once = prepLocalpart(s);
      assert.equal(prepLocalpart(once), once);
    }
  });
});

describe("resourcepart normalisation and validation", () => {
  it("keeps case and allows symbols, punctuation, spaces and compatibility characters", () => {
    for (const r of ["Balcony", "Foo Bar", "♚", "x/y@z", "henry\u2163", "½", " padded "]) {
      assert.equal(Jid.parse(`juliet@example.com/${r}`).resource, r);
    }
  });
  it("maps non-ASCII spaces to U+0020 and applies NFC", () => {
    assert.equal(Jid.parse("juliet@example.com/a\u00a0b\u2003c").resource, "a b c");
    assert.equal(Jid.parse("juliet@example.com/e\u0301").resource, "\u00e9");
  });
  it("rejects controls, unassigned, ignorables and private use", () => {
    for (const ch of ["\u0000", "\n", "\u007f", "\u200b", "\ufffe", "\ud800", "\ue000", "\u2029"]) {
      assertJidError(() => Jid.parse(`juliet@example.com/a${ch}b`), "forbidden-char");
    }
  });
  it("prepResourcepart rejects the empty string", () => {
    assertJidError(() => prepResourcepart(""), "empty-resource");
  });
});

describe("domainpart", () => {
  it("strips exactly one trailing dot", () => {
    assert.equal(Jid.parse("juliet@example.com.").domain, "example.com");
    assert.equal(Jid.parse("juliet@example.com./r").toString(), "juliet@example.com/r");
    assert.ok(Jid.equal("example.com.", "example.com"));
    assertJidError(() => Jid.parse("juliet@example.com.."), "bad-domain");
  });
  it("lower-cases ASCII and Unicode domains", () => {
    assert.equal(Jid.parse("EXAMPLE.Com").domain, "example.com");
    assert.equal(Jid.parse("a@BÜCHER.example").domain, "bücher.example");
  });
  it("stores IDNs as U-labels, so A-label and U-label spellings are equal", () => {
    assert.equal(Jid.parse("a@xn--bcher-kva.example").domain, "bücher.example");
    assert.ok(Jid.equal("a@xn--bcher-kva.example", "a@bücher.example"));
    assert.equal(Jid.parse("a@XN--BCHER-KVA.example").domain, "bücher.example");
    assert.equal(prepDomainpart("ＥＸＡＭＰＬＥ.com"), "example.com"); // UTS #46 width mapping
  });
  it("accepts IPv6 literals in brackets and canonicalises them", () => {
    assert.deepEqual(parts("juliet@[::1]/r"), ["juliet", "[::1]", "r"]);
    assert.equal(Jid.parse("[0:0:0:0:0:0:0:1]").domain, "[::1]");
    assert.equal(Jid.parse("[2001:DB8::A]").domain, "[2001:db8::a]");
    assert.ok(Jid.equal("[::1]", "[0::1]"));
  });
  it("rejects bad IPv6 literals", () => {
    for (const d of ["[::1", "[1.2.3.4]", "[fe80::1%eth0]", "[1::2::3]", "[]", "[::g]"]) {
      assertJidError(() => Jid.parse(d), "bad-domain", d);
    }
  });
  it("accepts dotted-quad IPv4 literals", () => {
    assert.equal(Jid.parse("juliet@192.0.2.1/r").domain, "192.0.2.1");
  });
  it("rejects numeric names that are not dotted quads", () => {
    for (const d of ["1.2.3", "127.1", "12345", "example.123", "256.1.1.1", "01.2.3.4", "foo.0x1f"]) {
      assertJidError(() => Jid.parse(d), "bad-domain", d);
    }
  });
  it("enforces the 63-octet label limit", () => {
    const l63 = "a".repeat(63);
    assert.equal(Jid.parse(`${l63}.example`).domain, `${l63}.example`);
    assertJidError(() => Jid.parse(`${l63}a.example`), "bad-domain");
    // An IDN label whose A-label form exceeds 63 octets.
    assert.equal(Jid.parse(`${"ü".repeat(40)}.example`).domain, `${"ü".repeat(40)}.example`); // xn-- form: 46 octets
    assertJidError(() => Jid.parse(`${"ü".repeat(60)}.example`), "bad-domain"); // xn-- form: 66 octets
  });
  it("rejects malformed names", () => {
    for (const d of ["a..b", ".a", "-a.example", "a-.example", "ab--cd.example", "a b", "a!b", "a*b.example", "a%b", "a\u0000b", "xn--zzzz.example", "xn--a.example", "a\u200db.example"]) {
      assertJidError(() => Jid.parse(d), "bad-domain", d);
    }
  });
  it("rejects URL delimiters and whitespace instead of truncating at them", () => {
    for (const d of ["example.com?x", "example.com#x", "ex\\ample.com", "a\tb.example", "a\nb.example", "exämple.com?x", "exämple.com\\x", "a:1"]) {
      assertJidError(() => Jid.parse(`juliet@${d}`), "bad-domain");
    }
    assertJidError(() => Jid.of("juliet", "example.com/x"), "bad-domain");
    // A fullwidth solidus is mapped to '/' by UTS #46 and must not truncate either.
    assertJidError(() => Jid.parse("juliet@example.com\uff0fx"), "bad-domain");
  });
  it("rejects symbols in IDNs (IDNA2008) although UTS #46 allows them", () => {
    assertJidError(() => Jid.parse("☃.com"), "bad-domain");
    assertJidError(() => Jid.parse("xn--n3h.com"), "bad-domain");
  });
  it("tolerates underscores", () => {
    assert.equal(Jid.parse("pubsub_service.example").domain, "pubsub_service.example");
  });
});

describe("length limits (1023 bytes per part, after normalisation)", () => {
  it("localpart, ASCII", () => {
    assert.equal(Jid.parse(`${"a".repeat(1023)}@example.com`).local.length, 1023);
    assertJidError(() => Jid.parse(`${"a".repeat(1024)}@example.com`), "localpart-too-long");
  });
  it("localpart, multibyte", () => {
    const ok = "π".repeat(511) + "a"; // 1022 + 1 bytes
    assert.equal(Buffer.byteLength(ok), 1023);
    assert.equal(Jid.parse(`${ok}@example.com`).local, ok);
    assertJidError(() => Jid.parse(`${"π".repeat(512)}@example.com`), "localpart-too-long");
    // Upper case Σ is also 2 bytes; the limit applies to the normalised σ.
    assertJidError(() => Jid.parse(`${"Σ".repeat(512)}@example.com`), "localpart-too-long");
  });
  it("measures after NFC", () => {
    // 400 × (e + U+0301) is 1200 bytes raw but 800 bytes once composed.
    const raw = "e\u0301".repeat(400);
    assert.ok(Buffer.byteLength(raw) > 1023);
    assert.equal(Jid.parse(`${raw}@example.com`).local, "\u00e9".repeat(400));
  });
  it("resourcepart, ASCII and multibyte", () => {
    assert.equal(Jid.parse(`a@example.com/${"r".repeat(1023)}`).resource.length, 1023);
    assertJidError(() => Jid.parse(`a@example.com/${"r".repeat(1024)}`), "resource-too-long");
    const ok = "♚".repeat(341); // 1023 bytes
    assert.equal(Jid.parse(`a@example.com/${ok}`).resource, ok);
    assertJidError(() => Jid.parse(`a@example.com/${ok}x`), "resource-too-long");
  });
  it("domainpart", () => {
    const label = "a".repeat(63);
    const d1023 = Array(16).fill(label).join("."); // 16 × 63 + 15 dots
    assert.equal(d1023.length, 1023);
    assert.equal(Jid.parse(d1023).domain, d1023);
    const d1024 = d1023.slice(0, -1) + ".a"; // every label still ≤ 63 octets
    assert.equal(d1024.length, 1024);
    assertJidError(() => Jid.parse(d1024), "domain-too-long");
    // The trailing dot does not count.
    assert.equal(Jid.parse(d1023 + ".").domain, d1023);
  });
  it("rejects huge input early", () => {
    assertJidError(() => Jid.parse("x".repeat(100_000) + "@example.com"), "localpart-too-long");
    assertJidError(() => Jid.parse("a@example.com/" + "\u00e9".repeat(100_000)), "resource-too-long");
  });
});

describe("Jid API", () => {
  it("bare and full", () => {
    const full = Jid.parse("juliet@example.com/balcony");
    assert.equal(full.isFull(), true);
    assert.equal(full.isBare(), false);
    const bare = full.bare();
    assert.equal(bare.toString(), "juliet@example.com");
    assert.equal(bare.isBare(), true);
    assert.equal(bare.isFull(), false);
    assert.equal(bare.resource, "");
    assert.equal(full.bare(), bare, "bare() is cached");
    assert.equal(bare.bare(), bare, "bare() of a bare JID is itself");
    assert.equal(full.bareString(), "juliet@example.com");
    assert.equal(bare.bareString(), "juliet@example.com");
    assert.equal(Jid.parse("example.com/x").bareString(), "example.com");
  });

  it("withResource", () => {
    const j = Jid.parse("juliet@example.com/balcony");
    const k = j.withResource("Garden");
    assert.equal(k.toString(), "juliet@example.com/Garden");
    assert.equal(j.toString(), "juliet@example.com/balcony", "original unchanged");
    assert.equal(j.withResource("balcony"), j);
    assert.equal(j.withResource(""), j.bare());
    assert.equal(Jid.parse("example.com").withResource("a\u00a0b").toString(), "example.com/a b");
    assertJidError(() => j.withResource("a\u0000b"), "forbidden-char");
  });

  it("of() validates and normalises each part", () => {
    assert.equal(Jid.of("Juliet", "Example.COM.", "Balcony").toString(), "juliet@example.com/Balcony");
    assert.equal(Jid.of("", "example.com").toString(), "example.com");
    assert.equal(Jid.of("juliet", "example.com", "").isBare(), true);
    // of() takes parts literally: '@' or '/' inside a part is not a separator.
    assert.equal(Jid.of("juliet", "example.com", "a/b@c").resource, "a/b@c");
    assertJidError(() => Jid.of("a b", "example.com"), "forbidden-char");
    assertJidError(() => Jid.of("a@b", "example.com"), "forbidden-char");
    assertJidError(() => Jid.of("juliet", ""), "empty-domain");
    assertJidError(() => Jid.of("juliet", "example.com/x"), "bad-domain");
    assert.ok(Jid.of("Σ", "example.com", "foo").equals(Jid.parse("σ@example.com/foo")));
  });

  it("equals and equal", () => {
    const a = Jid.parse("Juliet@Example.com/Balcony");
    const b = Jid.parse("juliet@example.com./Balcony");
    assert.ok(a.equals(b));
    assert.ok(b.equals(a));
    assert.equal(a.toString(), b.toString());
    assert.ok(!a.equals(Jid.parse("juliet@example.com/balcony")), "resource is case-sensitive");
    assert.ok(!a.equals(a.bare()));
    assert.ok(Jid.equal("ROMEO@EXAMPLE.NET", "romeo@example.net"));
    assert.ok(!Jid.equal("romeo@example.net", "romeo@example.org"));
    assert.ok(!Jid.equal("bad jid@example.net", "bad jid@example.net"), "invalid input is never equal");
    assert.ok(!Jid.equal("romeo@example.net", ""));
  });

  it("toString and toJSON give the normalised full form", () => {
    const j = Jid.parse("ＪＵＬＩＥＴ@EXAMPLE.com/Foo");
    assert.equal(j.toString(), "juliet@example.com/Foo");
    assert.equal(`${j}`, "juliet@example.com/Foo");
    assert.equal(JSON.stringify({ to: j }), '{"to":"juliet@example.com/Foo"}');
    assert.equal(j.toString(), j.toString());
  });

  it("is immutable", () => {
    const j = Jid.parse("juliet@example.com/foo");
    assert.ok(Object.isFrozen(j));
    assert.throws(() => {
      (j as unknown as { local: string }).local = "romeo";
    }, TypeError);
    assert.equal(j.local, "juliet");
  });

  it("tryParse returns null only for invalid JIDs", () => {
    assert.equal(Jid.tryParse("juliet@example.com")?.local, "juliet");
    assert.equal(Jid.tryParse("juliet@"), null);
    assert.equal(Jid.tryParse(undefined as unknown as string), null);
    assertJidError(() => Jid.parse(42 as unknown as string), "not-a-string");
  });

  it("JidError carries code, part and input", () => {
    try {
      Jid.parse("juliet@example.com/a\u0007b");
      assert.fail("should throw");
    } catch (err) {
      assert.ok(err instanceof JidError);
      assert.equal(err.code, "forbidden-char");
      assert.equal(err.part, "resourcepart");
      assert.equal(err.input, "juliet@example.com/a\u0007b");
      assert.match(err.message, /juliet@example\.com\/a\\u0007b/);
      assert.match(err.message, /U\+0007/);
    }
  });
});

describe("parse cache", () => {
  it("returns the same instance for a repeated input and the same value after clearing", () => {
    Jid.clearCache();
    const a = Jid.parse("Juliet@Example.com/r");
    const b = Jid.parse("Juliet@Example.com/r");
    assert.equal(a, b);
    Jid.clearCache();
    assert.equal(Jid.cacheSize, 0);
    const c = Jid.parse("Juliet@Example.com/r");
    assert.notEqual(c, a);
    assert.ok(c.equals(a));
    assert.equal(c.toString(), "juliet@example.com/r");
  });

  it("does not cache failures", () => {
    Jid.clearCache();
    assert.equal(Jid.tryParse("bad jid@example.com"), null);
    assert.equal(Jid.tryParse("bad jid@example.com"), null);
    assert.equal(Jid.cacheSize, 0);
  });

  it("is bounded, keeps recently used entries and evicts stale ones", () => {
    Jid.clearCache();
    const hot = Jid.parse("hot@example.com");
    const cold = Jid.parse("cold@example.com");
    for (let i = 0; i < 30_000; i++) {
      Jid.parse(`u${i}@example.com`);
      assert.ok(Jid.cacheSize <= 10_000);
      if (i % 1000 === 0) assert.equal(Jid.parse("hot@example.com"), hot, `hot entry lost at ${i}`);
    }
    assert.equal(Jid.parse("hot@example.com"), hot);
    const coldAgain = Jid.parse("cold@example.com");
    assert.notEqual(coldAgain, cold, "an entry unused for 30 000 parses is evicted");
    assert.ok(coldAgain.equals(cold));
    assert.ok(Jid.cacheSize >= 5_000, "the cache is not emptied wholesale");
  });

  it("does not cache very long inputs but still parses them", () => {
    Jid.clearCache();
    const long = `${"a".repeat(500)}@example.com`;
    assert.equal(Jid.parse(long).local.length, 500);
    assert.equal(Jid.cacheSize, 0);
  });

  it("gives identical results with and without the cache", () => {
    const inputs = ["juliet@example.com", "JULIET@EXAMPLE.COM/Home", "Σ@example.com/foo", "a@xn--bcher-kva.example", "[::1]", "example.com."];
    Jid.clearCache();
    const cold = inputs.map((s) => Jid.parse(s).toString());
    const warm = inputs.map((s) => Jid.parse(s).toString());
    assert.deepEqual(warm, cold);
    for (const s of inputs) {
      Jid.clearCache();
      assert.equal(Jid.parse(s).toString(), cold[inputs.indexOf(s)]);
    }
  });
});

describe("fast path and slow path agree", () => {
  it("ASCII input gives the same result as the Unicode path would", () => {
    // Force the slow path by appending a non-ASCII letter, then drop it.
    for (const local of ["Juliet", "a.b-c_d", "X!#$%", "user\\5C"]) {
      const fast = prepLocalpart(local);
      const slow = prepLocalpart(local + "é");
      assert.equal(slow, fast + "é");
    }
    for (const res of ["Balcony", " x ", "a/b@c"]) {
      assert.equal(prepResourcepart(res + "é"), res + "é");
    }
  });

  it("the normalised-ASCII domain shortcut accepts exactly what the full checks accept", () => {
    const alphabet = "ab09x-_.";
    let seed = 42;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const outcome = (d: string): string => {
      try {
        return prepDomainpart(d);
      } catch (err) {
        return (err as JidError).code;
      }
    };
    const samples = ["xn--abc", "ab--c", "a.0x1", "a.0xg", "a.1", "1a", "a".repeat(63), "a".repeat(64), "_a_", "a-", "-a"];
    for (let n = 0; n < 5000; n++) {
      let d = "";
      const len = 1 + rand(10);
      for (let i = 0; i < len; i++) d += alphabet[rand(alphabet.length)]!;
      samples.push(d);
    }
    for (const d of samples) {
      // An upper-case letter bypasses the shortcut and takes the general path.
      const general = outcome("Q" + d).replace(/^q/, "");
      const viaShortcut = outcome("q" + d).replace(/^q/, "");
      assert.equal(viaShortcut, general, JSON.stringify(d));
    }
  });
});
