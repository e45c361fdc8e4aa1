// `archive.appendMany` as every backend must keep it; part of store-suite.ts
// (run against PGlite and Postgres).
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { InvalidArgumentError } from "./errors.js";
import type { AppendedItem, ArchiveItem, Storage, StoreWriteResult } from "./storage.js";

type Item = { user: string; id?: string; when?: string; with?: string; value: string };

function appendedOf(r: StoreWriteResult): AppendedItem[] {
  assert.ok(r.ok && r.appended !== undefined, `an appendMany answer: ${JSON.stringify(r)}`);
  return r.appended;
}

export function appendManySuite(st: () => Storage, newAccount: (local?: string) => Promise<string>, fresh: (local?: string) => string): void {
  const many = async (store: string, items: Item[], quota?: { maxItems?: number; maxItemBytes?: number; maxBytes?: number; onFull?: "refuse" | "drop-oldest" }) =>
    appendedOf(await st().storeWrite({ kind: "archive.appendMany", store, items, ...(quota ? { quota } : {}) }));
  const query = async (user: string, store: string): Promise<ArchiveItem[]> => {
    const r = await st().storeRead({ kind: "archive.query", user, store });
    assert.ok("items" in r);
    return r.items as ArchiveItem[];
  };

  describe("archive.appendMany", () => {
    test("many users in one write, each user's items in order, idempotent by id within and across writes", async () => {
      const u = await newAccount();
      const v = await newAccount();
      const ghost = fresh("ghost");
      const first = await many("mam", [
        { user: u, id: "1", value: "u1", with: "x@y" },
        { user: v, id: "1", value: "v1" },
        { user: ghost, id: "1", value: "nobody" },
        { user: u, value: "u-no-id" },
        { user: u, id: "1", value: "u1 again in the same batch" },
        { user: u, id: "2", value: "u2", when: "2020-01-01T00:00:00Z" },
      ]);
      assert.equal(first.length, 6);
      assert.deepEqual(first[2], { unknownAccount: true });
      const a0 = first[0]!;
      assert.ok("id" in a0 && a0.id === "1" && a0.duplicate === false);
      const a4 = first[4]!;
      assert.ok("id" in a4 && a4.duplicate === true && a4.when === a0.when, "a repeat in the batch answers like the first");
      const a5 = first[5]!;
      assert.ok("when" in a5 && a5.when === "2020-01-01T00:00:00.000Z");
      const a3 = first[3]!;
      assert.ok("id" in a3 && a3.id.length > 0, "an id is made for an item without one");
      assert.deepEqual((await query(u, "mam")).map((i) => [i.id, i.value, i.with]), [["1", "u1", "x@y"], [a3.id, "u-no-id", null], ["2", "u2", null]]);
      assert.deepEqual((await query(v, "mam")).map((i) => i.value), ["v1"]);
      // Redelivered: nothing changes, every item is a duplicate with the stored time.
      // Between them a new item, which is stored after them in order.
      const again = await many("mam", [{ user: v, id: "1", value: "changed" }, { user: u, id: "3", value: "u3" }, { user: u, id: "2", value: "changed" }]);
      assert.deepEqual(again[0], { id: "1", when: (first[1] as { when: string }).when, duplicate: true });
      assert.ok("id" in again[1]! && again[1].id === "3" && again[1].duplicate === false);
      assert.deepEqual(again[2], { id: "2", when: "2020-01-01T00:00:00.000Z", duplicate: true });
      assert.deepEqual((await query(u, "mam")).map((i) => i.value), ["u1", "u-no-id", "u2", "u3"]);
    });

    test("quota per user: refuse leaves the others of the batch alone; drop-oldest keeps the newest", async () => {
      const u = await newAccount();
      const v = await newAccount();
      const refused = await many("r", [
        { user: u, value: "1" }, { user: u, value: "2" }, { user: v, value: "a" }, { user: u, value: "3" }, { user: u, value: "toolong" },
      ], { maxItems: 2, maxItemBytes: 5 });
      assert.deepEqual(refused.map((a) => ("refused" in a ? a.refused : "ok")), ["ok", "ok", "ok", "maxItems", "maxItemBytes"]);
      assert.deepEqual((await query(u, "r")).map((i) => i.value), ["1", "2"]);
      assert.deepEqual((await query(v, "r")).map((i) => i.value), ["a"]);
      // A stored id sent again takes no room: a duplicate, not a refusal, with the user full.
      const full = await many("r", [{ user: v, id: "k", value: "b" }], { maxItems: 2, onFull: "refuse" });
      assert.ok("id" in full[0]! && full[0].duplicate === false);
      const repeated = await many("r", [{ user: v, id: "k", value: "b" }, { user: v, value: "c" }], { maxItems: 2, onFull: "refuse" });
      assert.deepEqual(repeated.map((a) => ("refused" in a ? a.refused : "duplicate" in a && a.duplicate)), [true, "maxItems"]);
      const quota = { maxItems: 3, onFull: "drop-oldest" as const };
      await many("d", [1, 2].map((i) => ({ user: u, id: `${i}`, value: `${i}` })), quota);
      const dropped = await many("d", [3, 4, 5].map((i) => ({ user: u, id: `${i}`, value: `${i}` })), quota);
      assert.deepEqual(dropped.map((a) => ("dropped" in a ? a.dropped : undefined)), [undefined, undefined, 2], "told on the user's last item");
      assert.deepEqual((await query(u, "d")).map((i) => i.id), ["3", "4", "5"]);
    });

    test("a limit on each item's size alone: too large is refused, unless its id is stored already", async () => {
      const u = await newAccount();
      const ghost = fresh("ghost");
      const stored = await many("s", [{ user: u, id: "big", value: "0123456789" }]);
      assert.ok("id" in stored[0]! && stored[0].duplicate === false);
      const r = await many("s", [
        { user: u, id: "big", value: "0123456789" }, { user: u, id: "new", value: "0123456789" }, { user: u, value: "ok" },
        { user: ghost, id: "g", value: "ok" }, { user: u, id: "fits", value: "fine" },
      ], { maxItemBytes: 5 });
      assert.deepEqual(r.map((a) => ("refused" in a ? a.refused : "unknownAccount" in a ? "unknown" : a.duplicate)), [true, "maxItemBytes", false, "unknown", false]);
      assert.equal((r[0] as { when: string }).when, (stored[0] as { when: string }).when);
      assert.deepEqual((await query(u, "s")).map((i) => i.value), ["0123456789", "ok", "fine"]);
    });

    test("concurrent batches over the same users neither deadlock nor store an id twice", async () => {
      const users = await Promise.all([0, 1, 2, 3].map(() => newAccount()));
      const batches = Array.from({ length: 8 }, (_, b) =>
        // Users in different orders per batch; ids overlap between batches.
        (b % 2 === 0 ? users : [...users].reverse()).flatMap((user) => [0, 1, 2].map((i) => ({ user, id: `m${(b + i) % 5}`, value: `b${b}` }))));
      await Promise.all(batches.map((items) => many("c", items)));
      for (const user of users) assert.deepEqual((await query(user, "c")).map((i) => i.id).sort(), ["m0", "m1", "m2", "m3", "m4"]);
    });

    test("parameters are checked", async () => {
      await assert.rejects(st().storeWrite({ kind: "archive.appendMany", store: "x", items: [] }), InvalidArgumentError);
      await assert.rejects(st().storeWrite({ kind: "archive.appendMany", store: "x", items: [{ user: "not a jid", value: "" }] }), InvalidArgumentError);
    });
  });
}
