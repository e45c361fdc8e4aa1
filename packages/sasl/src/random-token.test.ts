import { test } from "node:test";
import assert from "node:assert/strict";
import { randomToken } from "./random-token.js";

test("random tokens: the asked length, never the same twice across pool refills, bounds checked", () => {
  const seen = new Set<string>();
  // 12 bytes each, 2,000 of them: several refills of the 4 KB pool.
  for (let i = 0; i < 2000; i++) {
    const t = randomToken(12);
    assert.match(t, /^[A-Za-z0-9_-]{16}$/);
    assert.ok(!seen.has(t), "no token repeats");
    seen.add(t);
  }
  assert.match(randomToken(18, "base64"), /^[A-Za-z0-9+/]{24}$/);
  // Bytes are spread: over 2,000 tokens every base64url character shows up.
  assert.equal(new Set([...seen].join("")).size, 64);
  assert.throws(() => randomToken(0), RangeError);
  assert.throws(() => randomToken(257), RangeError);
});
