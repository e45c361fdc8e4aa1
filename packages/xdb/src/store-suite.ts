// The modules' stores (keyed and archive, docs/storage.md) as every backend
// must keep them; part of storage-suite.ts, run against PGlite and Postgres.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { Db } from "./db.js";
import { InvalidArgumentError, ItemNotFoundError, UnknownAccountError } from "./errors.js";
import { migrate, migrations } from "./migrations/index.js";
import { SqlStorage } from "./sql-storage.js";
import { storeRead, storeWrite } from "./store-sql.js";
import { appendManySuite } from "./store-append-many-suite.js";
import type {
  ArchiveItem, ArchiveQuota, KeyedQuota, Storage, StoreRead, StoreReadResult, StoreWrite, StoreWriteResult,
} from "./storage.js";

type Stores = { storeRead(p: StoreRead): Promise<StoreReadResult>; storeWrite(p: StoreWrite): Promise<StoreWriteResult> };
type ArchiveQueryParams = Omit<Extract<StoreRead, { kind: "archive.query" }>, "kind" | "user" | "store">;

function kvItems(r: StoreReadResult): { items: Array<{ key: string; value: string }>; complete: boolean } {
  assert.ok("items" in r, `a list: ${JSON.stringify(r)}`);
  return r as { items: Array<{ key: string; value: string }>; complete: boolean };
}

function archiveItems(r: StoreReadResult): { items: ArchiveItem[]; complete: boolean } {
  assert.ok("items" in r, `a list: ${JSON.stringify(r)}`);
  return r as { items: ArchiveItem[]; complete: boolean };
}

/** Store access for one test, shortened. */
function helpers(s: Stores) {
  return {
    get: async (user: string, store: string, key: string) => {
      const r = await s.storeRead({ kind: "kv.get", user, store, key });
      assert.ok("value" in r);
      return r.value;
    },
    set: (user: string, store: string, key: string, value: string | null, quota?: KeyedQuota) =>
      s.storeWrite({ kind: "kv.set", user, store, entries: [{ key, value }], ...(quota ? { quota } : {}) }),
    list: async (user: string, store: string, page: { after?: string; limit?: number; maxBytes?: number } = {}) =>
      kvItems(await s.storeRead({ kind: "kv.list", user, store, ...page })),
    append: (user: string, store: string, value: string, opts: { id?: string; with?: string; when?: string; quota?: ArchiveQuota } = {}) =>
      s.storeWrite({ kind: "archive.append", user, store, value, ...opts }),
    query: async (user: string, store: string, q: ArchiveQueryParams = {}) =>
      archiveItems(await s.storeRead({ kind: "archive.query", user, store, ...q })),
    count: async (user: string, store: string, w?: string) => {
      const r = await s.storeRead({ kind: "archive.count", user, store, ...(w ? { with: w } : {}) });
      assert.ok("count" in r);
      return r;
    },
  };
}

export function moduleStoresSuite(st: () => Storage, newAccount: (local?: string) => Promise<string>, fresh: (local?: string) => string): void {
  const h = () => helpers(st());

  describe("keyed stores", () => {
    test("set, get, replace, delete: per user and per store", async () => {
      const u = await newAccount();
      const v = await newAccount();
      assert.equal(await h().get(u, "private", "a ns"), null);
      assert.deepEqual(await h().set(u, "private", "a ns", "<a xmlns='ns'>1</a>"), { ok: true, deleted: 0 });
      await h().set(u, "vcard", "", "<vCard xmlns='vcard-temp'/>");
      assert.equal(await h().get(u, "private", "a ns"), "<a xmlns='ns'>1</a>");
      assert.equal(await h().get(u, "vcard", ""), "<vCard xmlns='vcard-temp'/>");
      assert.equal(await h().get(v, "private", "a ns"), null);
      assert.equal(await h().get(u, "private", "b ns"), null);
      await h().set(u, "private", "a ns", "<a xmlns='ns'>2 &amp; \"ü\" 🐘</a>");
      assert.equal(await h().get(u, "private", "a ns"), "<a xmlns='ns'>2 &amp; \"ü\" 🐘</a>");
      assert.deepEqual(await h().set(u, "private", "a ns", null), { ok: true, deleted: 1 });
      assert.deepEqual(await h().set(u, "private", "a ns", null), { ok: true, deleted: 0 });
      assert.equal(await h().get(u, "private", "a ns"), null);
      assert.equal(await h().get(u, "vcard", ""), "<vCard xmlns='vcard-temp'/>");
    });

    test("lists page in key order, by count and by bytes, from after a key", async () => {
      const u = await newAccount();
      const keys = ["b@x", "a@x", "é@x", "c@x", "A@x"];
      for (const k of keys) await h().set(u, "requests", k, `v-${k}`);
      const all = await h().list(u, "requests");
      // Code point order, the same on every backend whatever its locale.
      assert.deepEqual(all.items.map((i) => i.key), [...keys].sort());
      assert.equal(all.complete, true);
      const first = await h().list(u, "requests", { limit: 2 });
      assert.deepEqual(first.items.map((i) => i.key), ["A@x", "a@x"]);
      assert.equal(first.complete, false);
      const rest = await h().list(u, "requests", { after: "a@x", limit: 10 });
      assert.deepEqual(rest.items.map((i) => i.key), ["b@x", "c@x", "é@x"]);
      assert.equal(rest.complete, true);
      // By bytes: "v-A@x" is 5 bytes; 11 bytes take two values, and a page holds at least one whatever its size.
      assert.deepEqual((await h().list(u, "requests", { maxBytes: 11 })).items.map((i) => i.key), ["A@x", "a@x"]);
      const one = await h().list(u, "requests", { maxBytes: 1 });
      assert.deepEqual(one.items.map((i) => i.key), ["A@x"]);
      assert.equal(one.complete, false);
      assert.deepEqual(await h().list(u, "requests", { after: "é@x" }), { items: [], complete: true });
    });

    test("several keys in one write: all of them, or none when refused", async () => {
      const u = await newAccount();
      await h().set(u, "p", "gone", "x");
      const w = await st().storeWrite({
        kind: "kv.set", user: u, store: "p",
        entries: [{ key: "a", value: "1" }, { key: "b", value: "2" }, { key: "gone", value: null }, { key: "a", value: "3" }],
      });
      assert.deepEqual(w, { ok: true, deleted: 1 });
      assert.deepEqual((await h().list(u, "p")).items, [{ key: "a", value: "3" }, { key: "b", value: "2" }]);
      const refused = await st().storeWrite({
        kind: "kv.set", user: u, store: "p", quota: { maxKeys: 3 },
        entries: [{ key: "c", value: "1" }, { key: "d", value: "2" }],
      });
      assert.deepEqual(refused, { ok: false, reason: "quota", limit: "maxKeys" });
      assert.deepEqual((await h().list(u, "p")).items.map((i) => i.key), ["a", "b"]);
    });

    test("quotas: keys, bytes and value size; a user above a lowered quota may still shrink", async () => {
      const u = await newAccount();
      assert.deepEqual(await h().set(u, "q", "k1", "x".repeat(11), { maxValueBytes: 10 }), { ok: false, reason: "quota", limit: "maxValueBytes" });
      // Bytes count keys and values: "k1" + 8 = 10.
      assert.equal((await h().set(u, "q", "k1", "12345678", { maxBytes: 20, maxKeys: 2 })).ok, true);
      assert.equal((await h().set(u, "q", "k2", "12345678", { maxBytes: 20, maxKeys: 2 })).ok, true);
      assert.deepEqual(await h().set(u, "q", "k3", "1", { maxBytes: 100, maxKeys: 2 }), { ok: false, reason: "quota", limit: "maxKeys" });
      assert.deepEqual(await h().set(u, "q", "k2", "123456789", { maxBytes: 20, maxKeys: 2 }), { ok: false, reason: "quota", limit: "maxBytes" });
      // Replacing a value counts the old one out.
      assert.equal((await h().set(u, "q", "k2", "1234567", { maxBytes: 20, maxKeys: 2 })).ok, true);
      assert.equal((await h().set(u, "q", "k2", "1", { maxBytes: 5, maxKeys: 1 })).ok, true, "shrinking is never refused");
      assert.equal((await h().set(u, "q", "k2", null, { maxKeys: 0 })).ok, true);
      assert.deepEqual((await h().list(u, "q")).items.map((i) => i.key), ["k1"]);
    });

    test("concurrent writes never pass the quota", async () => {
      const u = await newAccount();
      const results = await Promise.all(Array.from({ length: 30 }, (_, i) => h().set(u, "race", `k${i}`, "v", { maxKeys: 7 })));
      assert.equal(results.filter((r) => r.ok).length, 7);
      assert.equal((await h().list(u, "race")).items.length, 7);
    });

    test("unknown users read nothing and write nothing; invalid parameters are refused", async () => {
      const ghost = fresh("ghost");
      assert.equal(await h().get(ghost, "vcard", ""), null);
      assert.deepEqual(await h().list(ghost, "vcard"), { items: [], complete: true });
      await assert.rejects(h().set(ghost, "vcard", "", "<vCard/>"), UnknownAccountError);
      const u = await newAccount();
      await assert.rejects(h().set(u, "Bad Store", "k", "v"), InvalidArgumentError);
      await assert.rejects(h().set(u, "s", "k", "a\u0000b"), InvalidArgumentError);
      await assert.rejects(h().get(u, "", "k"), InvalidArgumentError);
      await assert.rejects(h().list(u, "s", { limit: 0 }), InvalidArgumentError);
      await assert.rejects(st().storeWrite({ kind: "kv.set", user: u, store: "s", entries: [] }), InvalidArgumentError);
      await assert.rejects(st().storeWrite({ kind: "kv.set", user: "not-a-jid", store: "s", entries: [{ key: "k", value: "v" }] }), InvalidArgumentError);
    });
  });

  describe("archives", () => {
    test("appended in order with given or generated ids; a re-append of an id changes nothing", async () => {
      const u = await newAccount();
      const started = Date.now();
      const a = await h().append(u, "offline", "<message id='1'/>", { with: "a@x" });
      assert.ok(a.ok && a.id !== undefined && a.duplicate === false);
      const b = await h().append(u, "offline", "<message id='2'/>", { id: "m2" });
      assert.deepEqual(b.ok && b.id, "m2");
      const again = await h().append(u, "offline", "<message id='2'>changed</message>", { id: "m2" });
      assert.ok(again.ok);
      assert.equal(again.duplicate, true);
      assert.equal(again.when, b.ok ? b.when : undefined, "the stored item's time");
      const { items, complete } = await h().query(u, "offline");
      assert.equal(complete, true);
      assert.deepEqual(items.map((i) => [i.id, i.value, i.with]), [[a.id, "<message id='1'/>", "a@x"], ["m2", "<message id='2'/>", null]]);
      for (const i of items) assert.ok(Math.abs(Date.parse(i.when) - started) < 60_000);
      // The same id in another store or of another user is another item.
      assert.equal((await h().append(u, "other", "x", { id: "m2" })).ok, true);
      const v = await newAccount();
      assert.deepEqual((await h().append(v, "offline", "x", { id: "m2" })).ok && (await h().query(v, "offline")).items.length, 1);
    });

    test("pages by count and bytes, forwards and in reverse, after and before an item", async () => {
      const u = await newAccount();
      for (let i = 0; i < 7; i++) await h().append(u, "log", `v${i}`, { id: `i${i}` });
      const ids = (r: { items: ArchiveItem[] }) => r.items.map((i) => i.id);
      const p1 = await h().query(u, "log", { limit: 3 });
      assert.deepEqual([ids(p1), p1.complete], [["i0", "i1", "i2"], false]);
      const p2 = await h().query(u, "log", { limit: 3, after: "i2" });
      assert.deepEqual(ids(p2), ["i3", "i4", "i5"]);
      const p3 = await h().query(u, "log", { limit: 3, after: "i5" });
      assert.deepEqual([ids(p3), p3.complete], [["i6"], true]);
      assert.deepEqual(ids(await h().query(u, "log", { reverse: true, limit: 2 })), ["i6", "i5"]);
      assert.deepEqual(ids(await h().query(u, "log", { reverse: true, before: "i2" })), ["i1", "i0"]);
      assert.deepEqual(ids(await h().query(u, "log", { after: "i1", before: "i4" })), ["i2", "i3"]);
      // Two-byte values: 5 bytes take two of them; one always comes.
      const byBytes = await h().query(u, "log", { maxBytes: 5 });
      assert.deepEqual([ids(byBytes), byBytes.complete], [["i0", "i1"], false]);
      assert.deepEqual(ids(await h().query(u, "log", { maxBytes: 1 })), ["i0"]);
      await assert.rejects(h().query(u, "log", { after: "nope" }), ItemNotFoundError);
      await assert.rejects(h().query(u, "log", { limit: 100_000 }), InvalidArgumentError);
    });

    test("filters: with, time, ids; counts", async () => {
      const u = await newAccount();
      await h().append(u, "mam", "1", { with: "a@x", when: "2020-01-01T00:00:00Z", id: "1" });
      await h().append(u, "mam", "22", { with: "b@x", when: "2021-01-01T00:00:00.000Z", id: "2" });
      await h().append(u, "mam", "333", { with: "a@x", when: "2022-06-01T12:00:00+02:00", id: "3" });
      const ids = async (q: ArchiveQueryParams) => (await h().query(u, "mam", q)).items.map((i) => i.id);
      assert.deepEqual(await ids({ with: "a@x" }), ["1", "3"]);
      assert.deepEqual(await ids({ start: "2021-01-01T00:00:00Z" }), ["2", "3"]);
      assert.deepEqual(await ids({ end: "2021-01-01T00:00:00Z" }), ["1", "2"]);
      assert.deepEqual(await ids({ ids: ["3", "1", "nope"] }), ["1", "3"]);
      assert.equal((await h().query(u, "mam", { ids: ["3"] })).items[0]!.when, "2022-06-01T10:00:00.000Z");
      assert.deepEqual(await h().count(u, "mam"), { count: 3, bytes: 6 });
      assert.deepEqual(await h().count(u, "mam", "a@x"), { count: 2, bytes: 4 });
      assert.deepEqual(await h().count(fresh("ghost"), "mam"), { count: 0, bytes: 0 });
    });

    test("deletes: up to an id (never what came after the read), ids, older than, all; clear", async () => {
      const u = await newAccount();
      for (let i = 0; i < 4; i++) await h().append(u, "q", `m${i}`, { id: `a${i}`, when: `202${i}-01-01T00:00:00Z` });
      const seen = await h().query(u, "q", { limit: 2 });
      await h().append(u, "q", "late", { id: "late" });
      assert.deepEqual(await st().storeWrite({ kind: "archive.delete", user: u, store: "q", upTo: seen.items.at(-1)!.id }), { ok: true, deleted: 2 });
      assert.deepEqual(await st().storeWrite({ kind: "archive.delete", user: u, store: "q", upTo: "a1" }), { ok: true, deleted: 0 });
      assert.deepEqual(await st().storeWrite({ kind: "archive.delete", user: u, store: "q", upTo: "never" }), { ok: true, deleted: 0 });
      assert.deepEqual(await st().storeWrite({ kind: "archive.delete", user: u, store: "q", before: "2023-01-01T00:00:00Z" }), { ok: true, deleted: 1 });
      assert.deepEqual((await h().query(u, "q")).items.map((i) => i.id), ["a3", "late"]);
      assert.deepEqual(await st().storeWrite({ kind: "archive.delete", user: u, store: "q", ids: ["late", "x"] }), { ok: true, deleted: 1 });
      await h().append(u, "q", "y");
      assert.deepEqual(await st().storeWrite({ kind: "archive.delete", user: u, store: "q", all: true }), { ok: true, deleted: 2 });
      await assert.rejects(st().storeWrite({ kind: "archive.delete", user: u, store: "q", all: true, upTo: "a" }), InvalidArgumentError);
      await assert.rejects(st().storeWrite({ kind: "archive.delete", user: u, store: "q" }), InvalidArgumentError);
      // clear: one store (both shapes) or every store of the user.
      await h().append(u, "q", "1");
      await h().set(u, "q", "k", "v");
      await h().set(u, "other", "k", "v");
      assert.deepEqual(await st().storeWrite({ kind: "clear", user: u, store: "q" }), { ok: true, deleted: 2 });
      assert.equal(await h().get(u, "other", "k"), "v");
      assert.deepEqual(await st().storeWrite({ kind: "clear", user: u }), { ok: true, deleted: 1 });
      assert.equal(await h().get(u, "other", "k"), null);
    });

    test("quota refuse: count and bytes hold under 50 concurrent appends", async () => {
      const u = await newAccount();
      const byCount = await Promise.all(Array.from({ length: 50 }, (_, i) => h().append(u, "c", `m${i}`, { quota: { maxItems: 10 } })));
      assert.equal(byCount.filter((r) => r.ok).length, 10);
      for (const r of byCount) if (!r.ok) assert.deepEqual(r, { ok: false, reason: "quota", limit: "maxItems" });
      assert.equal((await h().count(u, "c")).count, 10);
      const byBytes = await Promise.all(Array.from({ length: 50 }, () => h().append(u, "b", "0123456789", { quota: { maxBytes: 95 } })));
      assert.equal(byBytes.filter((r) => r.ok).length, 9);
      assert.deepEqual(await h().count(u, "b"), { count: 9, bytes: 90 });
      assert.deepEqual(await h().append(u, "b", "x".repeat(11), { quota: { maxItemBytes: 10 } }), { ok: false, reason: "quota", limit: "maxItemBytes" });
    });

    test("quota drop-oldest keeps the newest items within the limits", async () => {
      const u = await newAccount();
      const quota: ArchiveQuota = { maxItems: 3, maxBytes: 10, onFull: "drop-oldest" };
      for (let i = 0; i < 5; i++) assert.equal((await h().append(u, "r", `${i}`, { id: `${i}`, quota })).ok, true);
      assert.deepEqual((await h().query(u, "r")).items.map((i) => i.id), ["2", "3", "4"]);
      const big = await h().append(u, "r", "abcdefgh", { id: "big", quota });
      assert.ok(big.ok);
      assert.equal(big.dropped, 1, "3 items at most: the oldest goes; 1 + 1 + 8 bytes fit the 10");
      assert.deepEqual((await h().query(u, "r")).items.map((i) => i.id), ["3", "4", "big"]);
      assert.equal((await h().append(u, "r", "abcdefghi", { id: "bigger", quota })).ok, true);
      assert.deepEqual((await h().query(u, "r")).items.map((i) => i.id), ["bigger"], "9 bytes leave room for nothing else");
      assert.deepEqual(await h().append(u, "r", "x".repeat(11), { quota }), { ok: false, reason: "quota", limit: "maxBytes" });
      assert.equal((await h().count(u, "r")).count, 1, "an item that cannot fit drops nothing");
    });

    test("appends racing a delete are never lost; concurrent re-appends of one id store it once", async () => {
      const u = await newAccount();
      for (let i = 0; i < 10; i++) await h().append(u, "o", `early${i}`);
      const seen = await h().query(u, "o");
      const [gone, ...stored] = await Promise.all([
        st().storeWrite({ kind: "archive.delete", user: u, store: "o", upTo: seen.items.at(-1)!.id }),
        ...Array.from({ length: 20 }, (_, i) => h().append(u, "o", `race${i}`)),
      ]);
      assert.deepEqual(gone, { ok: true, deleted: 10 });
      assert.ok(stored.every((r) => r.ok));
      const left = await h().query(u, "o");
      assert.equal(left.items.length, 20);
      assert.ok(left.items.every((i) => i.value.startsWith("race")));
      const same = await Promise.all(Array.from({ length: 10 }, (_, i) => h().append(u, "dup", `copy ${i}`, { id: "once" })));
      assert.equal(same.filter((r) => r.ok && r.duplicate === false).length, 1);
      assert.equal((await h().count(u, "dup")).count, 1);
    });

    test("unknown users can append nothing", async () => {
      const ghost = fresh("ghost");
      await assert.rejects(h().append(ghost, "offline", "<message/>"), UnknownAccountError);
      assert.deepEqual(await h().query(ghost, "offline"), { items: [], complete: true });
      assert.deepEqual(await st().storeWrite({ kind: "archive.delete", user: ghost, store: "offline", all: true }), { ok: true, deleted: 0 });
    });
  });

  appendManySuite(st, newAccount, fresh);

  describe("migration 002: the old tables' data moves into the stores", () => {
    test("in a schema at version 1 with data", async () => {
      const s = st();
      assert.ok(s instanceof SqlStorage);
      const schema = `xdb_v1_${process.pid}_${Date.now()}`;
      class Rollback extends Error {}
      await assert.rejects(s.db.transaction(async (tx) => {
        await tx.exec(`CREATE SCHEMA ${schema}; SET LOCAL search_path TO ${schema}`);
        assert.deepEqual(await migrate(tx, migrations.slice(0, 1)), { applied: [1], version: 1 });
        await writeVersion1Data(tx);
        assert.deepEqual(await migrate(tx), { applied: [2], version: 2 });
        for (const old of ["offline_messages", "vcards", "private_xml", "subscription_requests"]) {
          const [row] = await tx.query<{ t: string | null }>("SELECT to_regclass($1)::text AS t", [old]);
          assert.equal(row?.t, null, `${old} is dropped`);
        }
        await expectVersion1DataMoved({ storeRead: (p) => storeRead(tx, p), storeWrite: (p) => storeWrite(tx, p) });
        throw new Rollback();
      }), Rollback);
    });
  });
}

/** The users of writeVersion1Data. */
export const V1_USER = "old@example.org";
const V1_OTHER = "other@example.org";

/** Data as the schema of migration 1 held it: offline messages, a vCard, private XML, pending requests. */
export async function writeVersion1Data(db: Db): Promise<void> {
  await db.query("INSERT INTO accounts (username) VALUES ($1), ($2)", [V1_USER, V1_OTHER]);
  for (const [user, stanza] of [[V1_USER, "<message id='1'>first</message>"], [V1_OTHER, "<message id='x'/>"], [V1_USER, "<message id='2'>second &amp; last</message>"]]) {
    await db.query("INSERT INTO offline_messages (username, stanza) VALUES ($1, $2)", [user, stanza]);
  }
  await db.query("INSERT INTO vcards (username, xml) VALUES ($1, $2)", [V1_USER, "<vCard xmlns='vcard-temp'><FN>Old</FN></vCard>"]);
  await db.query("INSERT INTO private_xml (username, key, xml) VALUES ($1, $2, $3)", [V1_USER, "storage storage:bookmarks", "<storage xmlns='storage:bookmarks'/>"]);
  await db.query("INSERT INTO subscription_requests (username, contact, stanza) VALUES ($1, $2, $3), ($1, $4, $5)",
    [V1_USER, "zed@example.net", "<presence type='subscribe' from='zed@example.net'/>", "amy@example.net", "<presence type='subscribe' from='amy@example.net'/>"]);
}

export async function expectVersion1DataMoved(s: Stores): Promise<void> {
  const h = helpers(s);
  const offline = await h.query(V1_USER, "offline");
  assert.deepEqual(offline.items.map((i) => i.value), ["<message id='1'>first</message>", "<message id='2'>second &amp; last</message>"]);
  for (const i of offline.items) assert.match(i.id, /^[0-9]+$/);
  assert.deepEqual((await h.query(V1_OTHER, "offline")).items.map((i) => i.value), ["<message id='x'/>"]);
  assert.equal(await h.get(V1_USER, "vcard", ""), "<vCard xmlns='vcard-temp'><FN>Old</FN></vCard>");
  assert.equal(await h.get(V1_USER, "private", "storage storage:bookmarks"), "<storage xmlns='storage:bookmarks'/>");
  assert.deepEqual((await h.list(V1_USER, "subscription-requests")).items, [
    { key: "amy@example.net", value: "<presence type='subscribe' from='amy@example.net'/>" },
    { key: "zed@example.net", value: "<presence type='subscribe' from='zed@example.net'/>" },
  ]);
  // New items come after the moved ones; delete-up-to works across both.
  const added = await h.append(V1_USER, "offline", "<message id='3'/>");
  assert.ok(added.ok);
  assert.deepEqual((await h.query(V1_USER, "offline")).items.map((i) => i.value).at(-1), "<message id='3'/>");
  assert.deepEqual(await s.storeWrite({ kind: "archive.delete", user: V1_USER, store: "offline", upTo: offline.items[1]!.id }), { ok: true, deleted: 2 });
  assert.deepEqual((await h.query(V1_USER, "offline")).items.map((i) => i.id), [added.id]);
}
