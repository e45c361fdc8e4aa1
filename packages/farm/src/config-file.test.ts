import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError, applyEnvOverrides } from "./config-file.js";

test("environment variables override any value, by key path, read as YAML", () => {
  const doc: Record<string, unknown> = { router: { port: 5347, components: { c2s: { secret: "from-file", trusted: true } } }, c2s: { limits: { maxStanzaBytes: 1000 } } };
  applyEnvOverrides(doc, {
    JABBERFARM__ROUTER__PORT: "6000",
    JABBERFARM__C2S__LIMITS__MAX_STANZA_BYTES: "65536",
    JABBERFARM__C2S__REQUIRE_TLS: "false",
    JABBERFARM__DATABASE_URL: "postgres://db/jf",
    JABBERFARM__SM__ROUTERS: "[{host: r1, port: 5347}, {host: r2, port: 5347}]",
    UNRELATED: "x",
  });
  assert.deepEqual(doc, {
    router: { port: 6000, components: { c2s: { secret: "from-file", trusted: true } } },
    c2s: { limits: { maxStanzaBytes: 65536 }, requireTls: false },
    databaseUrl: "postgres://db/jf",
    sm: { routers: [{ host: "r1", port: 5347 }, { host: "r2", port: 5347 }] },
  });
});

test("a _FILE variable reads the value from a file (mounted secrets)", () => {
  const dir = mkdtempSync(join(tmpdir(), "jf-env-"));
  const secret = join(dir, "c2s-secret");
  writeFileSync(secret, "s3cret-from-a-file\n");
  const doc: Record<string, unknown> = { router: { components: { c2s: { secret: "old", trusted: true } } } };
  applyEnvOverrides(doc, { JABBERFARM__ROUTER__COMPONENTS__C2S__SECRET_FILE: secret });
  assert.equal((doc.router as { components: { c2s: { secret: string } } }).components.c2s.secret, "s3cret-from-a-file");
  assert.throws(() => applyEnvOverrides({}, { JABBERFARM__SM__SECRET_FILE: join(dir, "missing") }),
    (e: unknown) => e instanceof ConfigError && /JABBERFARM__SM__SECRET_FILE: cannot read/.test(e.message));
});
