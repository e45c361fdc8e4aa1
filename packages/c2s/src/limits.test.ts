import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { SlidingWindow, TokenBucket } from "./limits.js";

describe("TokenBucket", () => {
  it("allows the burst, then the rate", () => {
    const b = new TokenBucket(1000, 5000, 0);
    assert.equal(b.take(5000, 0), true);
    assert.equal(b.take(1, 0), false);
    // Overdrawn by one byte; two seconds refill 2000.
    assert.equal(b.take(1998, 2000), true);
    assert.equal(b.take(2, 2000), false);
  });

  it("never holds more than the burst", () => {
    const b = new TokenBucket(1000, 100, 0);
    assert.equal(b.take(100, 1_000_000), true);
    assert.equal(b.take(1, 1_000_000), false);
  });
});

describe("SlidingWindow", () => {
  it("counts events inside the window only", () => {
    const w = new SlidingWindow({ windowMs: 1000 });
    assert.equal(w.add("a", 0), 1);
    assert.equal(w.add("a", 500), 2);
    assert.equal(w.count("a", 999), 2);
    assert.equal(w.count("a", 1200), 1);
    assert.equal(w.count("a", 1600), 0);
    assert.equal(w.size, 0);
  });

  it("bounds the keys it keeps, dropping the least recently touched", () => {
    const w = new SlidingWindow({ windowMs: 10_000, maxKeys: 2 });
    w.add("a", 0);
    w.add("b", 1);
    w.add("a", 2);
    w.add("c", 3);
    assert.equal(w.count("b", 4), 0);
    assert.equal(w.count("a", 4), 2);
    assert.equal(w.count("c", 4), 1);
  });

  it("sweep forgets idle keys", () => {
    const w = new SlidingWindow({ windowMs: 100 });
    w.add("a", 0);
    w.add("b", 50);
    w.sweep(120);
    assert.equal(w.size, 1);
  });
});

describe("TokenBucket.tryTake", () => {
  it("takes only what is there, so refusals do not put the bucket in debt", () => {
    const b = new TokenBucket(2, 2, 0);
    assert.equal(b.tryTake(1, 0), true);
    assert.equal(b.tryTake(1, 0), true);
    for (let i = 0; i < 100; i++) assert.equal(b.tryTake(1, 0), false);
    // Half a second refills one, however many were refused meanwhile.
    assert.equal(b.tryTake(1, 500), true);
    assert.equal(b.tryTake(1, 500), false);
  });
});
