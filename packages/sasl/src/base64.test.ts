import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { decodeSaslPayload, encodeSaslPayload } from "./index.js";
import { decodeBase64Strict } from "./base64.js";
import { saslError } from "./test-util.js";

describe("SASL payload base64 (RFC 6120 §6.4.2)", () => {
  it("decodes ordinary payloads", () => {
    assert.equal(decodeSaslPayload("biwsbj11c2VyLHI9YWJj").toString(), "n,,n=user,r=abc");
  });
  it('treats "=" and "" as empty data', () => {
    assert.equal(decodeSaslPayload("=").length, 0);
    assert.equal(decodeSaslPayload("").length, 0);
  });
  it("tolerates whitespace from pretty-printed XML", () => {
    assert.equal(decodeSaslPayload(" biws\n  bj11\r\n").toString(), "n,,n=u");
  });
  it("rejects invalid base64 with incorrect-encoding", () => {
    for (const bad of ["biw", "bi*s", "QR==", "QQ", "====", "QQ==QQ==", "YQ=x"]) {
      assert.throws(() => decodeSaslPayload(bad), saslError("incorrect-encoding"), bad);
    }
  });
  it('encodes empty data as "="', () => {
    assert.equal(encodeSaslPayload(Buffer.alloc(0)), "=");
    assert.equal(encodeSaslPayload(""), "=");
    assert.equal(encodeSaslPayload("v=abc"), Buffer.from("v=abc").toString("base64"));
  });
  it("strict decoder refuses non-canonical trailing bits", () => {
    assert.equal(decodeBase64Strict("QQ==")?.toString(), "A");
    assert.equal(decodeBase64Strict("QR=="), null);
    assert.equal(decodeBase64Strict("QUI=")?.toString(), "AB");
    assert.equal(decodeBase64Strict("QUJ="), null);
    assert.equal(decodeBase64Strict("")?.length, 0);
  });
});
