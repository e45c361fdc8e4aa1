import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { deriveCredential, parsePlain, verifyPlain } from "./index.js";
import { saslError } from "./test-util.js";

describe("parsePlain (RFC 4616)", () => {
  it("parses authcid and password without authzid", () => {
    assert.deepEqual(parsePlain("\0tim\0tanstaaftanstaaf"), { authcid: "tim", password: "tanstaaftanstaaf" });
  });

  it("parses an authzid", () => {
    assert.deepEqual(parsePlain("Ursel\0Kurt\0xipj3plmq"), { authzid: "Ursel", authcid: "Kurt", password: "xipj3plmq" });
  });

  it("accepts a Buffer (the base64-decoded payload)", () => {
    assert.deepEqual(parsePlain(Buffer.from("\0juliet\0r0m\u00e9o!", "utf8")), { authcid: "juliet", password: "r0m\u00e9o!" });
  });

  it("SASLpreps authcid and password but not the authzid", () => {
    assert.deepEqual(parsePlain("\u2168@x\0I\u00ADX\0pass\u00A0word"), { authzid: "\u2168@x", authcid: "IX", password: "pass word" });
  });

  it("rejects the wrong number of NULs", () => {
    for (const msg of ["", "tim", "tim\0pw", "\0tim\0pw\0", "\0\0tim\0pw", "a\0b\0c\0d"]) {
      assert.throws(() => parsePlain(msg), saslError("malformed-request"), JSON.stringify(msg));
    }
  });

  it("rejects an empty authcid or password", () => {
    assert.throws(() => parsePlain("\0\0pw"), saslError("malformed-request", /authcid/));
    assert.throws(() => parsePlain("\0tim\0"), saslError("malformed-request", /password/));
    assert.throws(() => parsePlain("\0\u00AD\0pw"), saslError("malformed-request", /authcid/));
    assert.throws(() => parsePlain("\0tim\0\uFEFF"), saslError("malformed-request", /password/));
  });

  it("rejects prohibited characters", () => {
    assert.throws(() => parsePlain("\0tim\u0007\0pw"), saslError("malformed-request"));
    assert.throws(() => parsePlain("\0tim\0p\u0007w"), saslError("malformed-request"));
    assert.throws(() => parsePlain("\0\u0627\u0031\0pw"), saslError("malformed-request"));
  });

  it("rejects invalid UTF-8", () => {
    assert.throws(() => parsePlain(Buffer.from([0, 0x74, 0, 0xff, 0xfe])), saslError("malformed-request", /UTF-8/));
  });

  it("feeds verifyPlain", () => {
    const cred = deriveCredential("SCRAM-SHA-256", "pass word");
    const ok = parsePlain("\0juliet\0pass\u00A0word");
    const bad = parsePlain("\0juliet\0password");
    assert.equal(verifyPlain(ok.password, cred), true);
    assert.equal(verifyPlain(bad.password, cred), false);
  });
});
