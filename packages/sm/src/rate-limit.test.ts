import { test } from "node:test";
import assert from "node:assert/strict";
import { SlidingWindowLimit } from "./rate-limit.js";

test("at most `count` per window, per key; the previous window counts for what it still covers; idle keys are forgotten", () => {
  let now = 60_000;
  const limit = new SlidingWindowLimit(3, 60, () => now);
  for (let i = 0; i < 3; i++) assert.equal(limit.take("a"), true);
  assert.equal(limit.take("a"), false);
  assert.equal(limit.take("b"), true, "another key has its own count");
  // Half into the next window, half of the previous 3 still count: 1.5 + 1 ≤ 3, 1.5 + 2 > 3.
  now = 60_000 + 60_000 + 30_000;
  assert.equal(limit.take("a"), true);
  assert.equal(limit.take("a"), false);
  // Two whole windows later nothing counts.
  now += 120_000;
  for (let i = 0; i < 3; i++) assert.equal(limit.take("a"), true);
  assert.equal(limit.size, 1, "b, idle for two windows, was swept");
});
