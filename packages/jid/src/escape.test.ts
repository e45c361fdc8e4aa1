import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Jid, JidError, escapeLocal, unescapeLocal } from "./index.js";

// XEP-0106 section 5.1 (user input -> escaped localpart). Examples 9-11 are
// given as the XEP's business rules define them (a backslash is escaped only
// when it starts an escape-like sequence), not as its table prints them.
const XEP_EXAMPLES: Array<[string, string]> = [
  ["space cadet", "space\\20cadet"],
  ['call me "ishmael"', "call\\20me\\20\\22ishmael\\22"],
  ["at&t guy", "at\\26t\\20guy"],
  ["d'artagnan", "d\\27artagnan"],
  ["/.fanboy", "\\2f.fanboy"],
  ["::foo::", "\\3a\\3afoo\\3a\\3a"],
  ["<foo>", "\\3cfoo\\3e"],
  ["user@host", "user\\40host"],
  ["c:\\net", "c\\3a\\net"],
  ["c:\\\\net", "c\\3a\\\\net"],
  ["c:\\cool stuff", "c\\3a\\cool\\20stuff"],
  ["c:\\5commas", "c\\3a\\5c5commas"],
];

describe("escapeLocal / unescapeLocal (XEP-0106)", () => {
  for (const [plain, escaped] of XEP_EXAMPLES) {
    it(`escapes ${JSON.stringify(plain)} and back`, () => {
      assert.equal(escapeLocal(plain), escaped);
      assert.equal(unescapeLocal(escaped), plain);
    });
  }

  it("escaped examples are valid JID localparts and survive normalisation", () => {
    for (const [plain, escaped] of XEP_EXAMPLES) {
      const jid = Jid.parse(`${escaped}@example.com`);
      assert.equal(jid.local, escaped);
      assert.equal(unescapeLocal(jid.local), plain);
    }
  });

  it("maps every character of the table", () => {
    assert.equal(escapeLocal('a b"c&d\'e/f:g<h>i@j'), "a\\20b\\22c\\26d\\27e\\2ff\\3ag\\3ch\\3ei\\40j");
    assert.equal(unescapeLocal("\\5c"), "\\");
    assert.equal(escapeLocal("\\5c"), "\\5c5c");
  });

  it("escapes the backslash of escape-like sequences (XEP-0106 section 4.2, step 3)", () => {
    // The Wireless Village example.
    assert.equal(escapeLocal("\\3and\\2is\\5cool"), "\\5c3and\\2is\\5c5cool");
    assert.equal(unescapeLocal("\\5c3and\\2is\\5c5cool"), "\\3and\\2is\\5cool");
    assert.equal(escapeLocal("\\27"), "\\5c27");
    assert.equal(escapeLocal("a\\20b"), "a\\5c20b");
    assert.equal(unescapeLocal("a\\5c20b"), "a\\20b");
  });

  it("leaves partial and unknown sequences alone (XEP-0106 section 4.3)", () => {
    for (const s of ["\\2plus\\2is\\4", "foo\\bar", "foob\\41r", "trailing\\", "\\", "\\2", "\\5"]) {
      assert.equal(escapeLocal(s), s, `escape ${s}`);
      assert.equal(unescapeLocal(s), s, `unescape ${s}`);
    }
  });

  it("unescapes only lower-case sequences, but escapes upper-case look-alikes", () => {
    assert.equal(unescapeLocal("a\\2Fb"), "a\\2Fb");
    assert.equal(unescapeLocal("a\\3Ab"), "a\\3Ab");
    // "\2F" would become the escape "\2f" once the JID is case-folded,
    // so its backslash is escaped.
    assert.equal(escapeLocal("a\\2Fb"), "a\\5c2Fb");
    const jid = Jid.parse(`${escapeLocal("a\\2Fb")}@example.com`);
    assert.equal(unescapeLocal(jid.local), "a\\2fb");
  });

  it("refuses leading or trailing spaces", () => {
    for (const s of [" foo", "foo ", " "]) {
      assert.throws(
        () => escapeLocal(s),
        (err: unknown) => err instanceof JidError && err.code === "escape-edge-space" && err.input === s,
      );
    }
    assert.equal(escapeLocal("a  b"), "a\\20\\20b");
  });

  it("does not unescape a string that starts or ends with \\20", () => {
    assert.equal(unescapeLocal("\\20foo"), "\\20foo");
    assert.equal(unescapeLocal("foo\\20"), "foo\\20");
    assert.equal(unescapeLocal("\\20"), "\\20");
  });

  it("passes strings without special characters through unchanged", () => {
    for (const s of ["", "juliet", "π", "ροδος", "a.b_c-d"]) {
      assert.equal(escapeLocal(s), s);
      assert.equal(unescapeLocal(s), s);
    }
  });

  it("round-trips arbitrary strings made of the special characters", () => {
    const alphabet = [" ", '"', "&", "'", "/", ":", "<", ">", "@", "\\", "2", "0", "5", "c", "f", "3", "a", "x"];
    let seed = 12345;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    for (let n = 0; n < 2000; n++) {
      let s = "x";
      const len = rand(12);
      for (let i = 0; i < len; i++) s += alphabet[rand(alphabet.length)]!;
      s += "x";
      const escaped = escapeLocal(s);
      assert.equal(unescapeLocal(escaped), s, JSON.stringify(s));
      assert.doesNotMatch(escaped, /[ "&'/:<>@]/);
      assert.equal(Jid.parse(`${escaped}@example.com`).local, escaped.toLowerCase());
    }
  });
});
