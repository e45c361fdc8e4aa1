import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PGlite } from "@electric-sql/pglite";
import { openPglite } from "./backends/pglite.js";
import { pgliteDb } from "./db.js";
import { DataDirInUseError, InvalidArgumentError } from "./errors.js";
import { migrate, migrations } from "./migrations/index.js";
import { openStorage } from "./open.js";
import { SqlStorage } from "./sql-storage.js";
import { ExclusiveSqlStorage } from "./exclusive-storage.js";
import type { Storage } from "./storage.js";
import { storageSuite } from "./storage-suite.js";
import { expectVersion1DataMoved, writeVersion1Data } from "./store-suite.js";

const root = await mkdtemp(join(tmpdir(), "xdb-pglite-test-"));
after(() => rm(root, { recursive: true, force: true }));

// Deliberately not yet existing: openPglite must create it.
const suiteDir = join(root, "suite", "data");
storageSuite(
  "pglite",
  () => openPglite(suiteDir),
  () => rm(join(root, "suite"), { recursive: true, force: true }),
);

describe("pglite backend", () => {
  const dir = join(root, "locking");
  const lockFile = join(dir, "xdb.lock");

  test("one open storage per data directory", async () => {
    const s = await openStorage({ dataDir: dir });
    try {
      assert.ok(s instanceof SqlStorage);
      const [row] = await s.db.query<{ v: string }>("SELECT version() AS v");
      assert.match(row!.v, /PGlite/);
      assert.equal(await readFile(lockFile, "utf8"), `${process.pid}\n`);
      await assert.rejects(openPglite(dir), (err: unknown) => {
        assert.ok(err instanceof DataDirInUseError);
        assert.equal(err.pid, process.pid);
        return true;
      });
      // The refused open must not have taken the lock away from the holder.
      assert.equal(await s.createAccount("still@example.org", []), true);
    } finally {
      await s.close();
    }
    assert.equal(existsSync(lockFile), false, "close releases the lock");
  });

  test("a lock left by a dead process is taken over", async () => {
    const dead = spawnSync(process.execPath, ["-e", ""]).pid;
    assert.ok(dead > 0);
    await writeFile(lockFile, `${dead}\n`);
    const s = await openPglite(dir);
    try {
      assert.equal(await s.accountExists("still@example.org"), true);
    } finally {
      await s.close();
    }
  });
});

describe("PGlite: credentials served from memory", () => {
  test("warm reads every account once; writes keep the memory current across a reopen", async () => {
    const dir = await mkdtemp(join(tmpdir(), "xdb-cache-"));
    const cred = (m: "SCRAM-SHA-1" | "SCRAM-SHA-256", k: string) => ({ mechanism: m, salt: "c2FsdA==", iterations: 4096, storedKey: k, serverKey: k });
    try {
      let s = await openPglite(dir);
      assert.ok(s instanceof ExclusiveSqlStorage);
      await s.createAccount("a@x", [cred("SCRAM-SHA-256", "a1"), cred("SCRAM-SHA-1", "a0")]);
      await s.createAccount("b@x", [cred("SCRAM-SHA-1", "b0")]);
      await s.close();
      s = await openPglite(dir);
      const cache = s as ExclusiveSqlStorage;
      assert.equal(cache.cachedAccounts, 2);
      assert.deepEqual((await s.getCredentials("a@x"))?.map((c) => c.storedKey), ["a0", "a1"]);
      assert.equal(await s.getCredentials("nobody@x"), null);
      assert.equal(await s.accountExists("nobody@x"), false);
      assert.equal(await s.setCredentials("b@x", [cred("SCRAM-SHA-256", "b2")]), true);
      assert.deepEqual((await s.getCredentials("b@x"))?.map((c) => c.storedKey), ["b2"]);
      assert.equal(await s.deleteAccount("a@x"), true);
      assert.equal(await s.getCredentials("a@x"), null);
      // what memory says is what the database says
      const fromDb = await (s as ExclusiveSqlStorage).db.query<{ stored_key: string }>("SELECT stored_key FROM credentials ORDER BY username, mechanism");
      assert.deepEqual(fromDb.map((r) => r.stored_key), ["b2"]);
      await s.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("PGlite: which users have anything in which store is known in memory", () => {
  test("stored items are always found, across reopen, and empty stores cost no query", async () => {
    const dir = await mkdtemp(join(tmpdir(), "xdb-maybe-"));
    const cred = { mechanism: "SCRAM-SHA-1" as const, salt: "c2FsdA==", iterations: 4096, storedKey: "k", serverKey: "k" };
    const offline = (s: Storage) => s.storeRead({ kind: "archive.query", user: "a@x", store: "offline" }) as Promise<{ items: unknown[]; complete: boolean }>;
    const append = (s: Storage, value: string) => s.storeWrite({ kind: "archive.append", user: "a@x", store: "offline", value });
    try {
      let s = await openPglite(dir);
      await s.createAccount("a@x", [cred]);
      await s.createAccount("b@x", [cred]);
      assert.deepEqual(await offline(s), { items: [], complete: true });
      // concurrent appends and reads: nothing stored is ever hidden
      await Promise.all([
        ...Array.from({ length: 20 }, (_, i) => append(s, `<message id='${i}'/>`)),
        ...Array.from({ length: 20 }, () => offline(s)),
      ]);
      assert.equal((await offline(s)).items.length, 20);
      await s.storeWrite({ kind: "kv.set", user: "b@x", store: "subscription-requests", entries: [{ key: "a@x", value: "<presence type='subscribe'/>" }] });
      await s.close();
      s = await openPglite(dir);
      assert.equal((await offline(s)).items.length, 20, "known again after a reopen");
      assert.equal((await s.storeRead({ kind: "kv.list", user: "b@x", store: "subscription-requests" }) as { items: unknown[] }).items.length, 1);
      await s.storeWrite({ kind: "archive.delete", user: "a@x", store: "offline", all: true });
      assert.deepEqual(await offline(s), { items: [], complete: true });
      assert.deepEqual(await s.storeRead({ kind: "archive.count", user: "a@x", store: "offline" }), { count: 0, bytes: 0 });
      assert.equal((await append(s, "<message id='again'/>")).ok, true);
      assert.equal((await offline(s)).items.length, 1, "a store forgotten when empty is found again after an append");
      // Invalid parameters are refused even where memory knows the store is empty.
      await assert.rejects(s.storeRead({ kind: "kv.list", user: "nobody@x", store: "x", limit: 0 }), InvalidArgumentError);
      await s.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("PGlite: a data directory of the old schema upgrades in place", () => {
  test("offline messages, vCards, private XML and pending requests are in the stores after the open", async () => {
    const dir = await mkdtemp(join(tmpdir(), "xdb-upgrade-"));
    try {
      const pg = await PGlite.create(dir);
      const db = pgliteDb(pg);
      await migrate(db, migrations.slice(0, 1));
      await writeVersion1Data(db);
      await db.close();
      const s = await openPglite(dir);
      try {
        await expectVersion1DataMoved(s);
      } finally {
        await s.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
