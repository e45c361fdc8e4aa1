import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { saslprep, SaslError } from "./index.js";
import { saslError } from "./test-util.js";

describe("saslprep (RFC 4013)", () => {
  // RFC 4013 §3 examples.
  it("removes SOFT HYPHEN (mapped to nothing)", () => {
    assert.equal(saslprep("I\u00ADX"), "IX");
  });
  it("leaves plain ASCII alone and keeps case", () => {
    assert.equal(saslprep("user"), "user");
    assert.equal(saslprep("USER"), "USER");
  });
  it("applies NFKC", () => {
    assert.equal(saslprep("\u00AA"), "a");
    assert.equal(saslprep("\u2168"), "IX");
  });
  it("rejects prohibited characters (U+0007) as malformed-request", () => {
    assert.throws(() => saslprep("\u0007"), saslError("malformed-request"));
    assert.throws(() => saslprep("pass\u0000word"), saslError("malformed-request"));
  });
  it("enforces the bidi rule", () => {
    assert.throws(() => saslprep("\u0627\u0031"), saslError("malformed-request"));
    assert.equal(saslprep("\u0627\u0031\u0628"), "\u0627\u0031\u0628");
  });

  it("maps non-ASCII spaces to U+0020", () => {
    assert.equal(saslprep("pass\u00A0word"), "pass word");
    assert.equal(saslprep("a\u3000b\u2003c"), "a b c");
  });
  it("maps zero-width characters to nothing", () => {
    assert.equal(saslprep("a\u200Cb\u2060c\uFEFF"), "abc");
  });
  it("maps U+200B (in both B.1 and C.1.2) to a space, as the library does", () => {
    assert.equal(saslprep("a\u200Bb"), "a b");
  });
  it('returns "" when everything maps to nothing (the library alone would crash)', () => {
    assert.equal(saslprep("\u00AD"), "");
    assert.equal(saslprep("\u00AD\uFEFF\u200D"), "");
  });
  it("handles characters outside the BMP", () => {
    assert.equal(saslprep("x\u{10400}y"), "x\u{10400}y");
    assert.equal(saslprep("\u{1D400}"), "A");
    // Emoji postdate Unicode 3.2, so they are unassigned for stringprep.
    assert.throws(() => saslprep("\u{1F600}"), saslError("malformed-request"));
    assert.equal(saslprep("x\u{1F600}y", { allowUnassigned: true }), "x\u{1F600}y");
  });
  it("rejects unpaired surrogates", () => {
    assert.throws(() => saslprep("a\uD800b"), saslError("malformed-request", /surrogate/));
    assert.throws(() => saslprep("a\uDC00"), saslError("malformed-request", /surrogate/));
  });
  it("rejects unassigned code points in stored strings only", () => {
    // U+0221 was unassigned in Unicode 3.2, the version stringprep is tied to.
    assert.throws(() => saslprep("a\u0221"), saslError("malformed-request", /[Uu]nassigned/));
    assert.equal(saslprep("a\u0221", { allowUnassigned: true }), "a\u0221");
  });
  it("names what was rejected but never echoes the value", () => {
    try {
      saslprep("secret\u0007", { what: "password" });
      assert.fail("should have thrown");
    } catch (err) {
      assert.ok(err instanceof SaslError);
      assert.match(err.message, /^password /);
      assert.doesNotMatch(err.message, /secret/);
    }
  });
  it("rejects non-strings", () => {
    assert.throws(() => saslprep(42 as unknown as string), saslError("malformed-request"));
  });
  it("returns the empty string for empty input", () => {
    assert.equal(saslprep(""), "");
  });
});
