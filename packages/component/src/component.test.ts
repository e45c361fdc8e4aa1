import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { backoffDelay } from "./pool.js";
import { handshakeDigest, verifyHandshake } from "./handshake.js";

describe("handshake", () => {
  test("is the lower-case hex SHA-1 of stream id + secret (XEP-0114 §3)", () => {
    const expected = createHash("sha1").update("3BF96D32" + "s3cr3t").digest("hex");
    assert.equal(handshakeDigest("3BF96D32", "s3cr3t"), expected);
    assert.match(handshakeDigest("id", "secret"), /^[0-9a-f]{40}$/);
  });

  test("verification accepts the right digest, in either case, and nothing else", () => {
    const d = handshakeDigest("abc", "secret");
    assert.equal(verifyHandshake("abc", "secret", d), true);
    assert.equal(verifyHandshake("abc", "secret", d.toUpperCase()), true);
    assert.equal(verifyHandshake("abc", "secret", ` ${d}\n`), true);
    assert.equal(verifyHandshake("abc", "other", d), false);
    assert.equal(verifyHandshake("abd", "secret", d), false);
    assert.equal(verifyHandshake("abc", "secret", d.slice(0, 39)), false);
    assert.equal(verifyHandshake("abc", "secret", ""), false);
  });

  test("non-ASCII secrets are hashed as UTF-8", () => {
    const expected = createHash("sha1").update(Buffer.from("idgeheimnis-\u00e4\u00f6", "utf8")).digest("hex");
    assert.equal(handshakeDigest("id", "geheimnis-\u00e4\u00f6"), expected);
  });
});

describe("backoff", () => {
  const o = { initialMs: 100, maxMs: 5000 };
  test("grows exponentially up to the ceiling", () => {
    assert.equal(backoffDelay(0, o, () => 0.999), 99);
    assert.equal(backoffDelay(3, o, () => 0.999), 799);
    assert.equal(backoffDelay(20, o, () => 0.999), 4995);
    assert.equal(backoffDelay(1000, o, () => 0.999), 4995, "no overflow for huge attempt counts");
  });
  test("is jittered over the whole range but never below half the initial delay", () => {
    assert.equal(backoffDelay(5, o, () => 0), 50);
    const seen = new Set<number>();
    for (let i = 0; i < 50; i++) seen.add(backoffDelay(6, o));
    assert.ok(seen.size > 10, "delays are spread out");
    for (const d of seen) assert.ok(d >= 50 && d <= 5000);
  });
});
