import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { c2sConfigSchema } from "./config.js";

describe("c2s config", () => {
  it("has defaults for everything but the secret", () => {
    const c = c2sConfigSchema.parse({ secret: "a-test-secret-1" });
    assert.equal(c.domain, "localhost");
    assert.equal(c.instance, "c2s-1");
    assert.deepEqual(c.listeners.starttls, { host: "127.0.0.1", port: 5222 });
    assert.deepEqual(c.listeners.directTls, { host: "127.0.0.1", port: 5223 });
    assert.equal(c.requireTls, true);
    assert.equal(c.allowPlainWithoutTls, false);
    assert.equal(c.registration.allow, false);
    assert.equal(c.limits.maxStanzaBytes, 256 * 1024);
    assert.ok(c.limits.burstBytes >= c.limits.maxStanzaBytes);
    assert.equal(c.tls.dataDir, "./.jabberfarm/tls");
  });

  it("turns a listener off with false or null", () => {
    const c = c2sConfigSchema.parse({ secret: "a-test-secret-1", listeners: { starttls: false, directTls: null } });
    assert.equal(c.listeners.starttls, null);
    assert.equal(c.listeners.directTls, null);
  });

  it("accepts its own output again", () => {
    const c = c2sConfigSchema.parse({ secret: "a-test-secret-1", limits: { bytesPerSecond: 1000 } });
    assert.deepEqual(c2sConfigSchema.parse(c), c);
  });

  it("refuses unknown keys, a lone cert, a short secret", () => {
    assert.throws(() => c2sConfigSchema.parse({ secret: "a-test-secret-1", limtis: {} }));
    assert.throws(() => c2sConfigSchema.parse({ secret: "a-test-secret-1", tls: { cert: "a.pem" } }));
    assert.throws(() => c2sConfigSchema.parse({ secret: "short" }));
    assert.throws(() => c2sConfigSchema.parse({ secret: "a-test-secret-1", limits: { maxStanzaBytes: 100 } }));
  });
});
