// The behaviour every Storage backend must show, run by each backend's test
// file against a fresh database. Tests within the suite run in order and
// share one open storage (PGlite takes seconds to create), so each test works
// on users of its own.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { Db } from "./db.js";
import { InvalidArgumentError, SchemaTooNewError, UnknownAccountError } from "./errors.js";
import { latestVersion, migrate, migrations } from "./migrations/index.js";
import { SqlStorage } from "./sql-storage.js";
import type { RosterItem, RosterWrite, ScramCredential, Storage } from "./storage.js";
import { moduleStoresSuite } from "./store-suite.js";

const SHA1: ScramCredential = {
  mechanism: "SCRAM-SHA-1",
  salt: "c2FsdA==",
  iterations: 4096,
  storedKey: "6dlGYMOdZcOPutkcNY8U2g7vK9Y=",
  serverKey: "D+CSWLOshSulAsxiupA+qs2/fTE=",
};
const SHA256: ScramCredential = {
  mechanism: "SCRAM-SHA-256",
  salt: "W22ZaJ0SNY7soEsUEjb6gQ==",
  iterations: 8192,
  storedKey: "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=",
  serverKey: "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
};

// XML that breaks naive quoting: both quote kinds, entities, a literal
// ampersand entity, non-BMP characters and a backslash.
const TRICKY_XML =
  "<vCard xmlns='vcard-temp'><FN>Zoë \"Zed\" O'Brien &amp; Ünal 🐘</FN>" +
  "<DESC>a &lt;b&gt; c\\n\u00a0日本語</DESC><NOTE>it's \"$1\" and $$x$$</NOTE></vCard>";

class Rollback extends Error {}

/** Runs fn in a transaction that is always rolled back, leaving no trace. */
async function inRolledBackTransaction(db: Db, fn: (tx: Db) => Promise<void>): Promise<void> {
  await assert.rejects(
    db.transaction(async (tx) => {
      await fn(tx);
      throw new Rollback();
    }),
    Rollback,
  );
}

function asSql(s: Storage): SqlStorage {
  assert.ok(s instanceof SqlStorage, "the suite inspects tables through SqlStorage.db");
  return s;
}

/** The new roster ver of a set that must have been accepted. */
async function ver(write: Promise<RosterWrite>): Promise<string> {
  const w = await write;
  assert.ok(w.ok, "the roster set was accepted");
  return w.ver;
}

async function rosterItem(s: Storage, user: string, jid: string): Promise<RosterItem | null> {
  return (await s.getRoster(user)).items.find((i) => i.jid === jid) ?? null;
}

export function storageSuite(name: string, open: () => Promise<Storage>, cleanup: () => Promise<void>): void {
  describe(name, () => {
    let s: Storage | undefined;
    let n = 0;
    /** A fresh account name per call, so tests never see each other's data. */
    const fresh = (local = "user", domain = "example.org"): string => `${local}${++n}@${domain}`;
    const st = (): Storage => {
      assert.ok(s, "storage is open");
      return s;
    };
    const newAccount = async (local?: string, domain?: string): Promise<string> => {
      const u = fresh(local, domain);
      assert.equal(await st().createAccount(u, [SHA1]), true);
      return u;
    };

    before(async () => {
      s = await open();
    });
    after(async () => {
      try {
        await s?.close();
      } finally {
        await cleanup();
      }
    });

    describe("accounts", () => {
      test("create, duplicate, exists, credentials", async () => {
        const u = fresh("alice");
        assert.equal(await st().accountExists(u), false);
        assert.equal(await st().getCredentials(u), null);
        assert.equal(await st().createAccount(u, [SHA256, SHA1]), true);
        assert.equal(await st().accountExists(u), true);
        assert.deepEqual(await st().getCredentials(u), [SHA1, SHA256]);
        // A duplicate must neither succeed nor touch the existing credentials.
        assert.equal(await st().createAccount(u, [{ ...SHA1, salt: "AAAA" }]), false);
        assert.deepEqual(await st().getCredentials(u), [SHA1, SHA256]);
      });

      test("an account may start without credentials", async () => {
        const u = fresh();
        assert.equal(await st().createAccount(u, []), true);
        assert.deepEqual(await st().getCredentials(u), []);
      });

      test("invalid input is rejected and nothing is created", async () => {
        await assert.rejects(st().createAccount("no-at-sign", [SHA1]), InvalidArgumentError);
        await assert.rejects(st().createAccount("a@b/resource", [SHA1]), InvalidArgumentError);
        const u = fresh();
        await assert.rejects(st().createAccount(u, [SHA1, SHA1]), InvalidArgumentError);
        await assert.rejects(st().createAccount(u, [{ ...SHA1, iterations: 0 }]), InvalidArgumentError);
        await assert.rejects(st().createAccount(u, [{ ...SHA1, salt: "not base64!" }]), InvalidArgumentError);
        await assert.rejects(
          st().createAccount(u, [{ ...SHA1, mechanism: "PLAIN" as ScramCredential["mechanism"] }]),
          InvalidArgumentError,
        );
        assert.equal(await st().accountExists(u), false);
      });

      test("concurrent creation of one account succeeds exactly once", async () => {
        const u = fresh();
        const results = await Promise.all(Array.from({ length: 10 }, () => st().createAccount(u, [SHA1])));
        assert.equal(results.filter(Boolean).length, 1);
        assert.deepEqual(await st().getCredentials(u), [SHA1]);
      });

      test("setCredentials replaces all of them", async () => {
        const u = fresh();
        assert.equal(await st().createAccount(u, [SHA1, SHA256]), true);
        const changed = { ...SHA256, salt: "bmV3c2FsdA==", iterations: 10000 };
        assert.equal(await st().setCredentials(u, [changed]), true);
        assert.deepEqual(await st().getCredentials(u), [changed]);
        assert.equal(await st().setCredentials(u, []), true);
        assert.deepEqual(await st().getCredentials(u), []);
        assert.equal(await st().setCredentials(fresh("ghost"), [SHA1]), false);
        assert.equal(await st().accountExists(`ghost${n}@example.org`), false);
      });

      test("concurrent setCredentials leave one complete set", async () => {
        const u = await newAccount();
        const sets = Array.from({ length: 10 }, (_, i) => [{ ...SHA1, iterations: 1000 + i }, SHA256]);
        const results = await Promise.all(sets.map((c) => st().setCredentials(u, c)));
        assert.ok(results.every(Boolean));
        const now = await st().getCredentials(u);
        assert.equal(now?.length, 2);
        assert.ok(sets.some((c) => JSON.stringify(c) === JSON.stringify(now)));
      });

      test("deleteAccount removes everything of the user and only of the user", async () => {
        const u = await newAccount("doomed");
        const other = await newAccount("bystander");
        for (const who of [u, other]) {
          await st().setRosterItem(who, { jid: "friend@example.net", subscription: "both", groups: ["g"] });
          assert.equal((await st().storeWrite({ kind: "kv.set", user: who, store: "vcard", entries: [{ key: "", value: "<vCard xmlns='vcard-temp'/>" }] })).ok, true);
          assert.equal((await st().storeWrite({ kind: "archive.append", user: who, store: "offline", value: "<message/>" })).ok, true);
        }
        assert.equal(await st().deleteAccount(u), true);
        assert.equal(await st().deleteAccount(u), false);

        assert.equal(await st().accountExists(u), false);
        assert.equal(await st().getCredentials(u), null);
        assert.deepEqual(await st().getRoster(u), { ver: "0", items: [] });
        assert.deepEqual(await st().storeRead({ kind: "kv.get", user: u, store: "vcard", key: "" }), { value: null });
        assert.deepEqual(await st().storeRead({ kind: "archive.count", user: u, store: "offline" }), { count: 0, bytes: 0 });
        // Checked in the tables as well: nothing may survive that a re-created
        // account with the same name would inherit.
        const db = asSql(st()).db;
        for (const table of ["credentials", "roster_items", "kv_store", "archive_store"]) {
          const [mine] = await db.query<{ c: number }>(`SELECT count(*)::int AS c FROM ${table} WHERE username = $1`, [u]);
          const [theirs] = await db.query<{ c: number }>(`SELECT count(*)::int AS c FROM ${table} WHERE username = $1`, [
            other,
          ]);
          assert.equal(mine?.c, 0, `${table} rows left for the deleted user`);
          assert.equal(theirs?.c, 1, `${table} rows of the other user`);
        }

        assert.equal(await st().createAccount(u, []), true);
        assert.deepEqual(await st().getRoster(u), { ver: "0", items: [] });
        assert.deepEqual(await st().storeRead({ kind: "archive.count", user: u, store: "offline" }), { count: 0, bytes: 0 });
        assert.equal((await st().getRoster(other)).items.length, 1);
      });
    });

    describe("roster", () => {
      test("a new or unknown user has an empty roster at ver 0", async () => {
        assert.deepEqual(await st().getRoster(await newAccount()), { ver: "0", items: [] });
        assert.deepEqual(await st().getRoster(fresh("ghost")), { ver: "0", items: [] });
        assert.equal(await rosterItem(st(), fresh("ghost"), "x@example.net"), null);
      });

      test("upsert, get, remove, and a strictly increasing ver", async () => {
        const u = await newAccount();
        const vers: string[] = [];
        const full: RosterItem = {
          jid: "romeo@example.net",
          name: "Romeo",
          subscription: "to",
          ask: "subscribe",
          approved: true,
          groups: ["Friends", "Lovers"],
        };
        vers.push(await ver(st().setRosterItem(u, full)));
        assert.deepEqual(await rosterItem(st(), u, full.jid), full);

        // Replacing drops what the new item lacks.
        const bare: RosterItem = { jid: full.jid, subscription: "both", groups: [] };
        vers.push(await ver(st().setRosterItem(u, bare)));
        assert.deepEqual(await rosterItem(st(), u, full.jid), bare);

        const nurse: RosterItem = { jid: "nurse@example.com", name: "", subscription: "none", groups: ["Servants"] };
        vers.push(await ver(st().setRosterItem(u, nurse)));
        // Re-setting an identical item is still a change as far as ver goes.
        vers.push(await ver(st().setRosterItem(u, nurse)));

        const roster = await st().getRoster(u);
        assert.equal(roster.ver, vers.at(-1));
        assert.deepEqual(roster.items, [nurse, bare]);

        const removed = await st().removeRosterItem(u, nurse.jid);
        assert.ok(removed !== null);
        vers.push(removed);
        assert.equal(await st().removeRosterItem(u, nurse.jid), null);
        assert.equal(await st().removeRosterItem(u, "never@example.com"), null);
        assert.equal((await st().getRoster(u)).ver, removed, "removing nothing does not change ver");
        assert.equal(await rosterItem(st(), u, nurse.jid), null);
        assert.deepEqual((await st().getRoster(u)).items, [bare]);

        for (const v of vers) assert.match(v, /^[0-9]+$/);
        for (let i = 1; i < vers.length; i++) {
          assert.ok(BigInt(vers[i]!) > BigInt(vers[i - 1]!), `ver ${vers[i]} after ${vers[i - 1]}`);
        }
      });

      test("groups and names round-trip whatever their characters", async () => {
        const u = await newAccount();
        const groups = [
          "a,b",
          "{braces}",
          'double "quotes"',
          "single 'quotes'",
          "back\\slash",
          "NULL",
          "",
          "  spaced  ",
          "Ünïcödé",
          "日本語",
          "🐘 emoji",
        ];
        const item: RosterItem = { jid: "juliet@example.com", name: "Джульетта 💌 \"J\" & 'co'", subscription: "from", groups };
        await st().setRosterItem(u, item);
        assert.deepEqual(await rosterItem(st(), u, item.jid), item);
        assert.deepEqual((await st().getRoster(u)).items, [item]);
      });

      test("items are sorted by jid; users are isolated", async () => {
        const u = await newAccount();
        const v = await newAccount();
        for (const jid of ["c@x.org", "a@x.org", "b@x.org"]) {
          await st().setRosterItem(u, { jid, subscription: "none", groups: [] });
        }
        await st().setRosterItem(v, { jid: "a@x.org", name: "only v's", subscription: "both", groups: ["v"] });
        assert.deepEqual(
          (await st().getRoster(u)).items.map((i) => i.jid),
          ["a@x.org", "b@x.org", "c@x.org"],
        );
        assert.equal((await st().getRoster(u)).ver, "3");
        assert.deepEqual(await st().getRoster(v), {
          ver: "1",
          items: [{ jid: "a@x.org", name: "only v's", subscription: "both", groups: ["v"] }],
        });
        assert.equal(await st().removeRosterItem(v, "b@x.org"), null);
        assert.equal((await st().getRoster(u)).items.length, 3);
      });

      test("unknown users and invalid items are rejected", async () => {
        await assert.rejects(
          st().setRosterItem(fresh("ghost"), { jid: "a@b", subscription: "none", groups: [] }),
          UnknownAccountError,
        );
        const u = await newAccount();
        const bad: unknown[] = [
          { jid: "a@b", subscription: "maybe", groups: [] },
          { jid: "a@b", subscription: "none" },
          { jid: "", subscription: "none", groups: [] },
          { jid: "a@b", subscription: "none", groups: [1] },
          { jid: "a@b", subscription: "none", groups: [], ask: "unsubscribe" },
        ];
        for (const item of bad) {
          await assert.rejects(st().setRosterItem(u, item as RosterItem), InvalidArgumentError, JSON.stringify(item));
        }
        assert.deepEqual(await st().getRoster(u), { ver: "0", items: [] });
      });

      test("concurrent changes all land, each with its own ver", async () => {
        const u = await newAccount();
        const vers = await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            ver(st().setRosterItem(u, { jid: `c${i}@example.net`, subscription: "none", groups: [`g${i}`] })),
          ),
        );
        assert.equal(new Set(vers).size, 20);
        assert.deepEqual(
          vers.map(Number).sort((a, b) => a - b),
          Array.from({ length: 20 }, (_, i) => i + 1),
        );
        const roster = await st().getRoster(u);
        assert.equal(roster.ver, "20");
        assert.equal(roster.items.length, 20);
      });

      test("the roster quota refuses new items, never changes of present ones, under concurrency too", async () => {
        const u = await newAccount();
        const results = await Promise.all(
          Array.from({ length: 12 }, (_, i) => st().setRosterItem(u, { jid: `q${i}@example.net`, subscription: "none", groups: [] }, { maxItems: 5 })),
        );
        assert.equal(results.filter((r) => r.ok).length, 5);
        for (const r of results) if (!r.ok) assert.deepEqual(r, { ok: false, reason: "quota", limit: "maxItems" });
        const roster = await st().getRoster(u);
        assert.equal(roster.items.length, 5);
        assert.equal(roster.ver, "5", "a refused set does not bump ver");
        const present = roster.items[0]!;
        assert.equal((await st().setRosterItem(u, { ...present, name: "renamed" }, { maxItems: 5 })).ok, true);
        // A quota lowered below what is there refuses additions, never deletes.
        assert.equal((await st().setRosterItem(u, { jid: "more@example.net", subscription: "none", groups: [] }, { maxItems: 2 })).ok, false);
        assert.equal((await st().getRoster(u)).items.length, 5);
        await assert.rejects(st().setRosterItem(fresh("ghost"), present, { maxItems: 5 }), UnknownAccountError);
        await assert.rejects(st().setRosterItem(u, present, { maxItems: -1 }), InvalidArgumentError);
      });
    });

    moduleStoresSuite(st, newAccount, fresh);

    describe("migrations", () => {
      test("running them again changes nothing", async () => {
        const db = asSql(st()).db;
        assert.deepEqual(await migrate(db), { applied: [], version: latestVersion() });
        const rows = await db.query<{ version: number; name: string }>(
          "SELECT version, name FROM schema_migrations ORDER BY version",
        );
        assert.deepEqual(
          rows,
          migrations.map((m) => ({ version: m.version, name: m.name })),
        );
      });

      test("only missing migrations are applied, in order", async () => {
        const next = latestVersion() + 1;
        await inRolledBackTransaction(asSql(st()).db, async (tx) => {
          const extra = [
            ...migrations,
            { version: next, name: "first", sql: "CREATE TABLE xdb_suite_probe (v int); INSERT INTO xdb_suite_probe VALUES (1);" },
            { version: next + 5, name: "second", sql: "INSERT INTO xdb_suite_probe VALUES (2); INSERT INTO xdb_suite_probe VALUES (3);" },
          ];
          assert.deepEqual(await migrate(tx, extra), { applied: [next, next + 5], version: next + 5 });
          assert.deepEqual(await migrate(tx, extra), { applied: [], version: next + 5 });
          const rows = await tx.query<{ v: number }>("SELECT v FROM xdb_suite_probe ORDER BY v");
          assert.deepEqual(rows.map((r) => r.v), [1, 2, 3]);
          // The code that only knows the first of them must now refuse.
          await assert.rejects(migrate(tx, extra.slice(0, -1)), SchemaTooNewError);
        });
      });

      test("a failing migration leaves no trace", async () => {
        const next = latestVersion() + 1;
        const db = asSql(st()).db;
        await assert.rejects(
          migrate(db, [
            ...migrations,
            { version: next, name: "broken", sql: "CREATE TABLE xdb_suite_broken (v int); SELECT no_such_function();" },
          ]),
        );
        const [row] = await db.query<{ t: string | null }>("SELECT to_regclass('xdb_suite_broken')::text AS t");
        assert.equal(row?.t, null);
        assert.deepEqual(await migrate(db), { applied: [], version: latestVersion() });
      });

      test("a database newer than the code is refused", async () => {
        await inRolledBackTransaction(asSql(st()).db, async (tx) => {
          await tx.query("INSERT INTO schema_migrations (version, name) VALUES ($1, 'from the future')", [
            latestVersion() + 1000,
          ]);
          await assert.rejects(migrate(tx), (err: unknown) => {
            assert.ok(err instanceof SchemaTooNewError);
            assert.equal(err.databaseVersion, latestVersion() + 1000);
            assert.equal(err.knownVersion, latestVersion());
            assert.match(err.message, /only knows up to/);
            return true;
          });
        });
      });
    });

    describe("persistence", () => {
      test("data survives close and re-open", async () => {
        const u = await newAccount("durable");
        const item: RosterItem = { jid: "kept@example.net", name: "Kept ✓", subscription: "both", groups: ["a", "b"] };
        const v = await ver(st().setRosterItem(u, item));
        await st().storeWrite({ kind: "kv.set", user: u, store: "vcard", entries: [{ key: "", value: TRICKY_XML }] });
        await st().storeWrite({ kind: "archive.append", user: u, store: "offline", value: "<message>kept</message>" });
        const archived = await st().storeRead({ kind: "archive.query", user: u, store: "offline" });

        await st().close();
        await st().close(); // idempotent
        s = undefined;
        s = await open();

        assert.deepEqual(await st().getCredentials(u), [SHA1]);
        assert.deepEqual(await st().getRoster(u), { ver: v, items: [item] });
        assert.deepEqual(await st().storeRead({ kind: "kv.get", user: u, store: "vcard", key: "" }), { value: TRICKY_XML });
        assert.deepEqual(await st().storeRead({ kind: "archive.query", user: u, store: "offline" }), archived);
        // Counters continue after a restart rather than starting over.
        assert.ok(BigInt(await ver(st().setRosterItem(u, { ...item, groups: [] }))) > BigInt(v));
        await st().storeWrite({ kind: "archive.append", user: u, store: "offline", value: "<message>later</message>" });
        const later = await st().storeRead({ kind: "archive.query", user: u, store: "offline" });
        assert.ok("items" in later && later.items.length === 2 && later.items[1]!.value === "<message>later</message>");
      });

      test("opening a database whose schema is newer than the code fails cleanly", async () => {
        // Committed on purpose: this is the last test, cleanup discards the database.
        await asSql(st()).db.query("INSERT INTO schema_migrations (version, name) VALUES ($1, 'from the future')", [
          latestVersion() + 1,
        ]);
        await st().close();
        s = undefined;
        await assert.rejects(open(), SchemaTooNewError);
        // A second attempt fails the same way: the first released what it held.
        await assert.rejects(open(), SchemaTooNewError);
      });
    });
  });
}
