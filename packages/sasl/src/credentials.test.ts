import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash, createHmac, pbkdf2Sync } from "node:crypto";
import {
  DEFAULT_SALT_BYTES,
  MIN_ITERATIONS,
  decodeCredential,
  deriveCredential,
  deriveCredentialAsync,
  deriveCredentials,
  deriveCredentialsAsync,
  verifyPlain,
  verifyPlainAsync,
  type ScramCredential,
} from "./index.js";
import { saslError } from "./test-util.js";

const RFC5802_SALT = Buffer.from("QSXCR+Q6sek8bf92", "base64");
const RFC7677_SALT = Buffer.from("W22ZaJ0SNY7soEsUEjb6gQ==", "base64");

/** The RFC 5802 §3 definitions written out independently of the package. */
function reference(digest: "sha1" | "sha256", password: string, salt: Buffer, iterations: number) {
  const len = digest === "sha1" ? 20 : 32;
  const salted = pbkdf2Sync(password, salt, iterations, len, digest);
  const clientKey = createHmac(digest, salted).update("Client Key").digest();
  return {
    storedKey: createHash(digest).update(clientKey).digest("base64"),
    serverKey: createHmac(digest, salted).update("Server Key").digest("base64"),
  };
}

describe("deriveCredential", () => {
  it("computes StoredKey and ServerKey per RFC 5802 (SHA-1 vector inputs)", () => {
    const cred = deriveCredential("SCRAM-SHA-1", "pencil", { salt: RFC5802_SALT, iterations: 4096 });
    assert.deepEqual(cred, {
      mechanism: "SCRAM-SHA-1",
      salt: "QSXCR+Q6sek8bf92",
      iterations: 4096,
      ...reference("sha1", "pencil", RFC5802_SALT, 4096),
    });
  });

  it("computes StoredKey and ServerKey per RFC 7677 (SHA-256 vector inputs)", () => {
    const cred = deriveCredential("SCRAM-SHA-256", "pencil", { salt: RFC7677_SALT });
    assert.equal(cred.salt, "W22ZaJ0SNY7soEsUEjb6gQ==");
    assert.equal(cred.iterations, 4096);
    assert.equal(Buffer.from(cred.storedKey, "base64").length, 32);
    assert.deepEqual({ storedKey: cred.storedKey, serverKey: cred.serverKey }, reference("sha256", "pencil", RFC7677_SALT, 4096));
  });

  it("stores nothing from which the password can be read back", () => {
    const cred = deriveCredential("SCRAM-SHA-256", "hunter2hunter2");
    assert.doesNotMatch(JSON.stringify(cred), /hunter2/);
    assert.deepEqual(Object.keys(cred).sort(), ["iterations", "mechanism", "salt", "serverKey", "storedKey"]);
  });

  it("uses a fresh 16-byte random salt by default", () => {
    const a = deriveCredential("SCRAM-SHA-1", "pencil");
    const b = deriveCredential("SCRAM-SHA-1", "pencil");
    assert.equal(Buffer.from(a.salt, "base64").length, DEFAULT_SALT_BYTES);
    assert.notEqual(a.salt, b.salt);
    assert.notEqual(a.storedKey, b.storedKey);
  });

  it("defaults to 4096 iterations for both mechanisms", () => {
    assert.equal(deriveCredential("SCRAM-SHA-1", "x").iterations, 4096);
    assert.equal(deriveCredential("SCRAM-SHA-256", "x").iterations, 4096);
  });

  it("accepts more iterations", () => {
    const cred = deriveCredential("SCRAM-SHA-1", "pencil", { salt: RFC5802_SALT, iterations: 5000 });
    assert.equal(cred.iterations, 5000);
    assert.equal(cred.storedKey, reference("sha1", "pencil", RFC5802_SALT, 5000).storedKey);
  });

  it("refuses fewer than 4096 iterations and non-integers", () => {
    for (const iterations of [MIN_ITERATIONS - 1, 1, 0, -4096, 4096.5, Number.NaN, 2 ** 31]) {
      assert.throws(() => deriveCredential("SCRAM-SHA-256", "pencil", { iterations }), RangeError, String(iterations));
    }
  });

  it("refuses short salts", () => {
    assert.throws(() => deriveCredential("SCRAM-SHA-1", "pencil", { salt: Buffer.alloc(4) }), RangeError);
  });

  it("refuses unknown mechanisms", () => {
    assert.throws(() => deriveCredential("SCRAM-MD5" as "SCRAM-SHA-1", "pencil"), TypeError);
  });

  it("SASLpreps the password (stored string)", () => {
    const salt = Buffer.alloc(16, 7);
    const mapped = deriveCredential("SCRAM-SHA-256", "my\u00A0pass\u00ADword", { salt });
    const plain = deriveCredential("SCRAM-SHA-256", "my password", { salt });
    assert.equal(mapped.storedKey, plain.storedKey);
    assert.throws(() => deriveCredential("SCRAM-SHA-256", "bell\u0007"), saslError("malformed-request"));
    assert.throws(() => deriveCredential("SCRAM-SHA-256", "new\u0221"), saslError("malformed-request"));
  });

  it("refuses empty passwords, also when SASLprep maps them to nothing", () => {
    assert.throws(() => deriveCredential("SCRAM-SHA-1", ""), saslError("malformed-request"));
    assert.throws(() => deriveCredential("SCRAM-SHA-1", "\u00AD"), saslError("malformed-request"));
  });

  it("async variant gives the same result", async () => {
    const salt = Buffer.alloc(16, 1);
    for (const m of ["SCRAM-SHA-1", "SCRAM-SHA-256"] as const) {
      assert.deepEqual(await deriveCredentialAsync(m, "pencil", { salt }), deriveCredential(m, "pencil", { salt }));
    }
    await assert.rejects(deriveCredentialAsync("SCRAM-SHA-1", "pencil", { iterations: 100 }), RangeError);
  });
});

describe("deriveCredentials", () => {
  it("derives one credential per mechanism with different salts", () => {
    const creds = deriveCredentials("pencil");
    assert.deepEqual(creds.map((c) => c.mechanism), ["SCRAM-SHA-256", "SCRAM-SHA-1"]);
    assert.notEqual(creds[0]!.salt, creds[1]!.salt);
    for (const c of creds) assert.equal(verifyPlain("pencil", c), true);
  });

  it("passes the iteration count on and enforces the floor", async () => {
    assert.deepEqual(deriveCredentials("pencil", { iterations: 4100 }).map((c) => c.iterations), [4100, 4100]);
    assert.throws(() => deriveCredentials("pencil", { iterations: 10 }), RangeError);
    const creds = await deriveCredentialsAsync("pencil");
    assert.equal(creds.length, 2);
    assert.equal(await verifyPlainAsync("pencil", creds[1]!), true);
  });
});

describe("verifyPlain", () => {
  const sha1 = deriveCredential("SCRAM-SHA-1", "pencil");
  const sha256 = deriveCredential("SCRAM-SHA-256", "pencil");

  it("accepts the right password and refuses wrong ones", () => {
    for (const cred of [sha1, sha256]) {
      assert.equal(verifyPlain("pencil", cred), true);
      assert.equal(verifyPlain("Pencil", cred), false);
      assert.equal(verifyPlain("pencil ", cred), false);
      assert.equal(verifyPlain("", cred), false);
    }
  });

  it("checks the RFC 5802 vector credential", () => {
    const cred: ScramCredential = {
      mechanism: "SCRAM-SHA-1",
      salt: "QSXCR+Q6sek8bf92",
      iterations: 4096,
      ...reference("sha1", "pencil", RFC5802_SALT, 4096),
    };
    assert.equal(verifyPlain("pencil", cred), true);
    assert.equal(verifyPlain("pencil2", cred), false);
  });

  it("SASLpreps the candidate", () => {
    const cred = deriveCredential("SCRAM-SHA-256", "a b");
    assert.equal(verifyPlain("a\u00A0b", cred), true);
    assert.equal(verifyPlain("a\u00AD b", cred), true);
    assert.throws(() => verifyPlain("a\u0007b", cred), saslError("malformed-request"));
  });

  it("has an async variant", async () => {
    assert.equal(await verifyPlainAsync("pencil", sha256), true);
    assert.equal(await verifyPlainAsync("crayon", sha256), false);
  });

  it("refuses corrupt credentials with TypeError", () => {
    const bad: ScramCredential[] = [
      { ...sha256, storedKey: sha1.storedKey },
      { ...sha256, serverKey: "not base64!" },
      { ...sha256, salt: "" },
      { ...sha256, iterations: 0 },
      { ...sha256, mechanism: "SCRAM-SHA-512" as "SCRAM-SHA-256" },
    ];
    for (const cred of bad) assert.throws(() => verifyPlain("pencil", cred), TypeError);
  });
});

describe("decodeCredential", () => {
  it("decodes the binary fields", () => {
    const d = decodeCredential(deriveCredential("SCRAM-SHA-1", "pencil", { salt: RFC5802_SALT }));
    assert.ok(d.salt.equals(RFC5802_SALT));
    assert.equal(d.storedKey.length, 20);
    assert.equal(d.serverKey.length, 20);
  });
  it("accepts stored iteration counts below the derivation floor (imported accounts)", () => {
    const cred = { ...deriveCredential("SCRAM-SHA-1", "pencil"), iterations: 1000 };
    assert.equal(decodeCredential(cred).iterations, 1000);
  });
});
