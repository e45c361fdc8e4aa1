import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { loadTlsMaterial } from "./tls.js";
import { testLogger } from "./testing.js";

describe("TLS material", () => {
  const dir = mkdtempSync(join(tmpdir(), "c2s-tls-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const log = testLogger();

  it("generates a self-signed certificate for the domain once, key 0600, then reuses it", async () => {
    const first = await loadTlsMaterial({ dataDir: join(dir, "tls") }, "example.test", log);
    assert.equal(first.source, "generated");
    assert.equal(statSync(first.keyPath).mode & 0o777, 0o600);
    const x509 = new X509Certificate(first.cert);
    assert.equal(x509.checkHost("example.test"), "example.test");
    const second = await loadTlsMaterial({ dataDir: join(dir, "tls") }, "example.test", log);
    assert.equal(second.source, "reused");
    assert.equal(second.fingerprint256, first.fingerprint256);
  });

  it("replaces a kept certificate that does not match its key or domain", async () => {
    const a = await loadTlsMaterial({ dataDir: join(dir, "other") }, "a.test", log);
    writeFileSync(a.keyPath, (await loadTlsMaterial({ dataDir: join(dir, "third") }, "a.test", log)).key);
    const again = await loadTlsMaterial({ dataDir: join(dir, "other") }, "a.test", log);
    assert.equal(again.source, "generated");
    assert.notEqual(again.fingerprint256, a.fingerprint256);
  });

  it("uses configured PEM files as they are", async () => {
    const made = await loadTlsMaterial({ dataDir: join(dir, "cfg") }, "cfg.test", log);
    const loaded = await loadTlsMaterial({ dataDir: "/nonexistent", cert: made.certPath, key: made.keyPath }, "cfg.test", log);
    assert.equal(loaded.source, "configured");
    assert.equal(loaded.fingerprint256, made.fingerprint256);
  });
});
