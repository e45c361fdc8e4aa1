/**
 * Plain key-value sets on PGlite are written together (plain-sets.ts): one
 * statement for the sets of one turn, with the same outcome, per set, as
 * one statement each, and in the same order with respect to everything else.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openPglite } from "./backends/pglite.js";
import { UnknownAccountError } from "./errors.js";
import type { PlainSetBatcher } from "./plain-sets.js";
import type { Storage } from "./storage.js";

const cred = { mechanism: "SCRAM-SHA-1" as const, salt: "c2FsdA==", iterations: 4096, storedKey: "k", serverKey: "k" };
const set = (s: Storage, user: string, key: string, value: string, store = "last") =>
  s.storeWrite({ kind: "kv.set", user, store, entries: [{ key, value }] });
const get = async (s: Storage, user: string, key: string, store = "last") =>
  ((await s.storeRead({ kind: "kv.get", user, store, key })) as { value: string | null }).value;
const batcher = (s: Storage) => (s as unknown as { plainSets: PlainSetBatcher }).plainSets;

describe("PGlite: plain sets of one turn in one statement", () => {
  test("many sets, one statement; the last value of a key wins; an unknown account fails alone", async () => {
    const dir = await mkdtemp(join(tmpdir(), "xdb-plain-"));
    try {
      const s = await openPglite(dir);
      for (let i = 0; i < 30; i++) await s.createAccount(`u${i}@x`, [cred]);
      const before = { batches: batcher(s).batches, rows: batcher(s).rows };
      const results = await Promise.allSettled([
        ...Array.from({ length: 30 }, (_, i) => set(s, `u${i}@x`, "logout", `t${i}`)),
        set(s, "u0@x", "logout", "t0-again"),
        set(s, "nobody@x", "logout", "t"),
      ]);
      assert.equal(batcher(s).batches - before.batches, 1, "one statement for the turn");
      assert.equal(batcher(s).rows - before.rows, 31, "u0's key once, the unknown account's row tried");
      for (const r of results.slice(0, 31)) assert.deepEqual(r, { status: "fulfilled", value: { ok: true, deleted: 0 } });
      const failed = results[31]!;
      assert.ok(failed.status === "rejected" && failed.reason instanceof UnknownAccountError, "the unknown account alone fails");
      assert.equal(await get(s, "u0@x", "logout"), "t0-again");
      assert.equal(await get(s, "u29@x", "logout"), "t29");
      // A set that replaces a stored value, and a refused one (value over the quota), as single sets do.
      await set(s, "u1@x", "logout", "later");
      assert.equal(await get(s, "u1@x", "logout"), "later");
      const big = await s.storeWrite({ kind: "kv.set", user: "u1@x", store: "last", entries: [{ key: "logout", value: "x".repeat(50) }], quota: { maxValueBytes: 10 } });
      assert.equal(big.ok, false);
      assert.equal(await get(s, "u1@x", "logout"), "later");
      await s.close();
      // Committed: there after a reopen.
      const again = await openPglite(dir);
      assert.equal(await get(again, "u5@x", "logout"), "t5");
      await again.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("what is issued after a set runs after it: a read sees it, a clear removes it, a deleted account takes it along", async () => {
    const dir = await mkdtemp(join(tmpdir(), "xdb-plain-order-"));
    try {
      const s = await openPglite(dir);
      await s.createAccount("a@x", [cred]);
      await s.createAccount("b@x", [cred]);
      // Not awaited one by one: all issued in the same turn, as requests from one socket read are.
      const [, seen] = await Promise.all([set(s, "a@x", "k", "v1"), get(s, "a@x", "k")]);
      assert.equal(seen, "v1", "a read issued after the set sees it");
      const [, cleared] = await Promise.all([set(s, "a@x", "k2", "v2"), s.storeWrite({ kind: "clear", user: "a@x", store: "last" })]);
      assert.equal(cleared.ok, true);
      assert.equal(await get(s, "a@x", "k2"), null, "the clear issued after the set removed it");
      const [, deleted, after] = await Promise.allSettled([set(s, "b@x", "k", "v"), s.deleteAccount("b@x"), set(s, "b@x", "k", "again")]);
      assert.deepEqual(deleted, { status: "fulfilled", value: true });
      assert.ok(after.status === "rejected" && after.reason instanceof UnknownAccountError, "a set after the deletion finds no account");
      await s.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
