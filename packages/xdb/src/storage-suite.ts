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
import type { RosterItem, ScramCredential, Storage } from "./storage.js";

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
  `<vCard xmlns='vcard-temp'><FN>Zoë "Zed" O'Brien &amp; Ünal 🐘</FN>` +
  `<DESC>a &lt;b&gt; c\\n\u00a0日本語</DESC><NOTE>it's "$1" and $$x$$</NOTE></vCard>`;

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

      test("listAccounts lists one domain, sorted", async () => {
        const domain = `list${++n}.example`;
        const users = [`zed@${domain}`, `amy@${domain}`, `éva@${domain}`, `bob@${domain}`];
        for (const u of users) assert.equal(await st().createAccount(u, []), true);
        await st().createAccount(`amy@sub.${domain}`, []);
        await st().createAccount(`amy@x${domain}`, []);
        // Code point order, the same on every backend whatever its locale.
        assert.deepEqual(await st().listAccounts(domain), [...users].sort());
        assert.deepEqual(await st().listAccounts(`nothing-here.${domain}`), []);
      });

      test("deleteAccount removes everything of the user and only of the user", async () => {
        const u = await newAccount("doomed");
        const other = await newAccount("bystander");
        for (const who of [u, other]) {
          await st().setRosterItem(who, { jid: "friend@example.net", subscription: "both", groups: ["g"] });
          await st().addSubscriptionRequest(who, "asker@example.net", "<presence type='subscribe'/>");
          assert.equal(await st().storeOffline(who, "<message/>", 10), true);
          await st().setVcard(who, "<vCard xmlns='vcard-temp'/>");
          await st().setPrivate(who, "storage storage:bookmarks", "<storage xmlns='storage:bookmarks'/>");
        }
        assert.equal(await st().deleteAccount(u), true);
        assert.equal(await st().deleteAccount(u), false);

        assert.equal(await st().accountExists(u), false);
        assert.equal(await st().getCredentials(u), null);
        assert.deepEqual(await st().getRoster(u), { ver: "0", items: [] });
        assert.deepEqual(await st().listSubscriptionRequests(u), []);
        assert.equal(await st().countOffline(u), 0);
        assert.equal(await st().getVcard(u), null);
        assert.equal(await st().getPrivate(u, "storage storage:bookmarks"), null);
        // Checked in the tables as well: nothing may survive that a re-created
        // account with the same name would inherit.
        const db = asSql(st()).db;
        for (const table of [
          "credentials",
          "roster_items",
          "subscription_requests",
          "offline_messages",
          "vcards",
          "private_xml",
        ]) {
          const [mine] = await db.query<{ c: number }>(`SELECT count(*)::int AS c FROM ${table} WHERE username = $1`, [u]);
          const [theirs] = await db.query<{ c: number }>(`SELECT count(*)::int AS c FROM ${table} WHERE username = $1`, [
            other,
          ]);
          assert.equal(mine?.c, 0, `${table} rows left for the deleted user`);
          assert.equal(theirs?.c, 1, `${table} rows of the other user`);
        }

        assert.equal(await st().createAccount(u, []), true);
        assert.deepEqual(await st().getRoster(u), { ver: "0", items: [] });
        assert.equal(await st().countOffline(u), 0);
        assert.equal((await st().getRoster(other)).items.length, 1);
      });
    });

    describe("roster", () => {
      test("a new or unknown user has an empty roster at ver 0", async () => {
        assert.deepEqual(await st().getRoster(await newAccount()), { ver: "0", items: [] });
        assert.deepEqual(await st().getRoster(fresh("ghost")), { ver: "0", items: [] });
        assert.equal(await st().getRosterItem(fresh("ghost"), "x@example.net"), null);
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
        vers.push(await st().setRosterItem(u, full));
        assert.deepEqual(await st().getRosterItem(u, full.jid), full);

        // Replacing drops what the new item lacks.
        const bare: RosterItem = { jid: full.jid, subscription: "both", groups: [] };
        vers.push(await st().setRosterItem(u, bare));
        assert.deepEqual(await st().getRosterItem(u, full.jid), bare);

        const nurse: RosterItem = { jid: "nurse@example.com", name: "", subscription: "none", groups: ["Servants"] };
        vers.push(await st().setRosterItem(u, nurse));
        // Re-setting an identical item is still a change as far as ver goes.
        vers.push(await st().setRosterItem(u, nurse));

        const roster = await st().getRoster(u);
        assert.equal(roster.ver, vers.at(-1));
        assert.deepEqual(roster.items, [nurse, bare]);

        const removed = await st().removeRosterItem(u, nurse.jid);
        assert.ok(removed !== null);
        vers.push(removed);
        assert.equal(await st().removeRosterItem(u, nurse.jid), null);
        assert.equal(await st().removeRosterItem(u, "never@example.com"), null);
        assert.equal((await st().getRoster(u)).ver, removed, "removing nothing does not change ver");
        assert.equal(await st().getRosterItem(u, nurse.jid), null);
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
        assert.deepEqual(await st().getRosterItem(u, item.jid), item);
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
            st().setRosterItem(u, { jid: `c${i}@example.net`, subscription: "none", groups: [`g${i}`] }),
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
    });

    describe("subscription requests", () => {
      test("add, replace, list in arrival order, remove", async () => {
        const u = await newAccount();
        await st().addSubscriptionRequest(u, "a@example.net", "<presence from='a@example.net' type='subscribe'/>");
        await st().addSubscriptionRequest(u, "b@example.net", "<presence from='b@example.net' type='subscribe'/>");
        await st().addSubscriptionRequest(u, "a@example.net", "<presence from='a@example.net' type='subscribe'><status>again &amp; \"again\"</status></presence>");
        assert.deepEqual(await st().listSubscriptionRequests(u), [
          { from: "b@example.net", stanza: "<presence from='b@example.net' type='subscribe'/>" },
          {
            from: "a@example.net",
            stanza: "<presence from='a@example.net' type='subscribe'><status>again &amp; \"again\"</status></presence>",
          },
        ]);
        assert.equal(await st().removeSubscriptionRequest(u, "a@example.net"), true);
        assert.equal(await st().removeSubscriptionRequest(u, "a@example.net"), false);
        assert.deepEqual(
          (await st().listSubscriptionRequests(u)).map((r) => r.from),
          ["b@example.net"],
        );
      });

      test("per user, and only for existing accounts", async () => {
        const u = await newAccount();
        const v = await newAccount();
        await st().addSubscriptionRequest(u, "a@example.net", "<presence/>");
        assert.deepEqual(await st().listSubscriptionRequests(v), []);
        assert.equal(await st().removeSubscriptionRequest(v, "a@example.net"), false);
        assert.equal((await st().listSubscriptionRequests(u)).length, 1);
        await assert.rejects(st().addSubscriptionRequest(fresh("ghost"), "a@example.net", "<presence/>"), UnknownAccountError);
        assert.deepEqual(await st().listSubscriptionRequests(fresh("ghost")), []);
      });
    });

    describe("offline messages", () => {
      test("kept in arrival order with increasing ids", async () => {
        const u = await newAccount();
        const startedAt = Date.now();
        for (let i = 0; i < 5; i++) assert.equal(await st().storeOffline(u, `<message id='m${i}'/>`, 100), true);
        const list = await st().listOffline(u);
        assert.deepEqual(
          list.map((m) => m.stanza),
          Array.from({ length: 5 }, (_, i) => `<message id='m${i}'/>`),
        );
        for (const m of list) {
          assert.match(m.id, /^[0-9]+$/);
          assert.ok(m.storedAt instanceof Date);
          // Generous: database and test clocks are the same machine's, but not the same reading.
          assert.ok(Math.abs(m.storedAt.getTime() - startedAt) < 60_000);
        }
        for (let i = 1; i < list.length; i++) assert.ok(BigInt(list[i]!.id) > BigInt(list[i - 1]!.id));
        assert.equal(await st().countOffline(u), 5);
      });

      test("quota: refused at the limit, accepted again after an ack", async () => {
        const u = await newAccount();
        for (let i = 0; i < 3; i++) assert.equal(await st().storeOffline(u, `<message id='q${i}'/>`, 3), true);
        assert.equal(await st().storeOffline(u, "<message id='over'/>", 3), false);
        assert.equal(await st().countOffline(u), 3);
        // A lower limit than what is stored refuses too, it never deletes.
        assert.equal(await st().storeOffline(u, "<message/>", 1), false);
        assert.equal(await st().storeOffline(u, "<message/>", 0), false);
        const [first] = await st().listOffline(u);
        assert.equal(await st().ackOffline(u, first!.id), 1);
        assert.equal(await st().storeOffline(u, "<message id='q3'/>", 3), true);
        assert.deepEqual(
          (await st().listOffline(u)).map((m) => m.stanza),
          ["<message id='q1'/>", "<message id='q2'/>", "<message id='q3'/>"],
        );
        await assert.rejects(st().storeOffline(u, "<message/>", -1), InvalidArgumentError);
        await assert.rejects(st().storeOffline(u, "<message/>", 1.5), InvalidArgumentError);
      });

      test("ack deletes up to the id, never what arrived after the list", async () => {
        const u = await newAccount();
        for (let i = 0; i < 3; i++) await st().storeOffline(u, `<message id='a${i}'/>`, 100);
        const seen = await st().listOffline(u);
        // Delivered meanwhile, not part of what the client got.
        await st().storeOffline(u, "<message id='late'/>", 100);
        const lowest = BigInt(seen[0]!.id);
        if (lowest > 0n) assert.equal(await st().ackOffline(u, String(lowest - 1n)), 0);
        assert.equal(await st().ackOffline(u, seen[1]!.id), 2);
        assert.equal(await st().ackOffline(u, seen[1]!.id), 0, "acking twice is harmless");
        assert.equal(await st().ackOffline(u, seen.at(-1)!.id), 1);
        assert.deepEqual(
          (await st().listOffline(u)).map((m) => m.stanza),
          ["<message id='late'/>"],
        );
        for (const bad of ["", "abc", "-1", "1.5", "99999999999999999999", " 1"]) {
          await assert.rejects(st().ackOffline(u, bad), InvalidArgumentError, JSON.stringify(bad));
        }
        assert.equal(await st().countOffline(u), 1);
      });

      test("ack compares ids as numbers, not strings", async () => {
        const u = await newAccount();
        // Cross a power of ten, where "10" < "9" as text: learn where the
        // shared id sequence stands, then store just enough to pass it.
        assert.equal(await st().storeOffline(u, "<message id='n0'/>", 100_000), true);
        const start = BigInt((await st().listOffline(u))[0]!.id);
        const needed = Number(10n ** BigInt(String(start).length) - start) + 1;
        for (let done = 0; done < needed; done += 50) {
          const batch = Math.min(50, needed - done);
          const ok = await Promise.all(
            Array.from({ length: batch }, (_, i) => st().storeOffline(u, `<message id='n${done + i + 1}'/>`, 100_000)),
          );
          assert.ok(ok.every(Boolean));
        }
        const list = await st().listOffline(u);
        const short = list.filter((m) => m.id.length === list[0]!.id.length);
        const long = list.filter((m) => m.id.length > list[0]!.id.length);
        assert.ok(short.length > 0 && long.length > 0);
        assert.ok(long[0]!.id < short.at(-1)!.id, "as text the first long id sorts before the last short one");
        // The list itself must be in numeric order too.
        assert.deepEqual(list.map((m) => m.id), [...short, ...long].map((m) => m.id));
        assert.equal(await st().ackOffline(u, short.at(-1)!.id), short.length);
        assert.deepEqual(
          (await st().listOffline(u)).map((m) => m.id),
          long.map((m) => m.id),
        );
        assert.equal(await st().ackOffline(u, long[0]!.id), 1);
      });

      test("acks and lists are per user", async () => {
        const u = await newAccount();
        const v = await newAccount();
        await st().storeOffline(u, "<message to='u'/>", 10);
        await st().storeOffline(v, "<message to='v'/>", 10);
        const [um] = await st().listOffline(u);
        const [vm] = await st().listOffline(v);
        // v's ack with an id above u's message must not reach u's queue.
        const top = BigInt(um!.id) > BigInt(vm!.id) ? um!.id : vm!.id;
        assert.equal(await st().ackOffline(v, top), 1);
        assert.deepEqual((await st().listOffline(u)).map((m) => m.stanza), ["<message to='u'/>"]);
        assert.equal(await st().countOffline(v), 0);
      });

      test("50 concurrent stores are all kept, in id order", async () => {
        const u = await newAccount();
        const results = await Promise.all(
          Array.from({ length: 50 }, (_, i) => st().storeOffline(u, `<message id='c${i}'/>`, 1000)),
        );
        assert.ok(results.every(Boolean));
        const list = await st().listOffline(u);
        assert.equal(list.length, 50);
        assert.equal(await st().countOffline(u), 50);
        assert.equal(new Set(list.map((m) => m.stanza)).size, 50);
        for (let i = 1; i < list.length; i++) assert.ok(BigInt(list[i]!.id) > BigInt(list[i - 1]!.id));
      });

      test("the quota holds under concurrency", async () => {
        const u = await newAccount();
        await st().storeOffline(u, "<message id='already'/>", 10);
        const results = await Promise.all(
          Array.from({ length: 50 }, (_, i) => st().storeOffline(u, `<message id='r${i}'/>`, 10)),
        );
        assert.equal(results.filter(Boolean).length, 9);
        assert.equal(await st().countOffline(u), 10);
      });

      test("stores racing an ack are never lost", async () => {
        const u = await newAccount();
        for (let i = 0; i < 10; i++) await st().storeOffline(u, `<message id='early${i}'/>`, 1000);
        const seen = await st().listOffline(u);
        const [acked, ...stored] = await Promise.all([
          st().ackOffline(u, seen.at(-1)!.id),
          ...Array.from({ length: 20 }, (_, i) => st().storeOffline(u, `<message id='race${i}'/>`, 1000)),
        ]);
        assert.equal(acked, 10);
        assert.ok(stored.every(Boolean));
        const left = await st().listOffline(u);
        assert.equal(left.length, 20);
        assert.ok(left.every((m) => m.stanza.startsWith("<message id='race")));
      });

      test("unknown users can receive nothing", async () => {
        const ghost = fresh("ghost");
        await assert.rejects(st().storeOffline(ghost, "<message/>", 10), UnknownAccountError);
        assert.deepEqual(await st().listOffline(ghost), []);
        assert.equal(await st().countOffline(ghost), 0);
        assert.equal(await st().ackOffline(ghost, "1"), 0);
      });
    });

    describe("vCard and private XML", () => {
      test("vCard round-trips and is replaced", async () => {
        const u = await newAccount();
        assert.equal(await st().getVcard(u), null);
        await st().setVcard(u, TRICKY_XML);
        assert.equal(await st().getVcard(u), TRICKY_XML);
        await st().setVcard(u, "<vCard xmlns='vcard-temp'/>");
        assert.equal(await st().getVcard(u), "<vCard xmlns='vcard-temp'/>");
        await assert.rejects(st().setVcard(fresh("ghost"), TRICKY_XML), UnknownAccountError);
        await assert.rejects(st().setVcard(u, "<a>\u0000</a>"), InvalidArgumentError);
      });

      test("private XML is stored per user and key", async () => {
        const u = await newAccount();
        const v = await newAccount();
        const bookmarks = "storage storage:bookmarks";
        const notes = "storage http://miranda-im.org/storage#notes";
        const xml = `<storage xmlns='storage:bookmarks'><conference name='Ça &amp; "là"' jid='room@conf.example.org'/></storage>`;
        assert.equal(await st().getPrivate(u, bookmarks), null);
        await st().setPrivate(u, bookmarks, xml);
        await st().setPrivate(u, notes, TRICKY_XML);
        assert.equal(await st().getPrivate(u, bookmarks), xml);
        assert.equal(await st().getPrivate(u, notes), TRICKY_XML);
        assert.equal(await st().getPrivate(v, bookmarks), null);
        await st().setPrivate(u, bookmarks, "<storage xmlns='storage:bookmarks'/>");
        assert.equal(await st().getPrivate(u, bookmarks), "<storage xmlns='storage:bookmarks'/>");
        assert.equal(await st().getPrivate(u, notes), TRICKY_XML);
        await assert.rejects(st().setPrivate(fresh("ghost"), bookmarks, xml), UnknownAccountError);
      });
    });

    describe("migrations", () => {
      test("running them again changes nothing", async () => {
        const db = asSql(st()).db;
        assert.deepEqual(await migrate(db), { applied: [], version: latestVersion() });
        const rows = await db.query<{ version: number; name: string }>(
          `SELECT version, name FROM schema_migrations ORDER BY version`,
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
          const rows = await tx.query<{ v: number }>(`SELECT v FROM xdb_suite_probe ORDER BY v`);
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
        const [row] = await db.query<{ t: string | null }>(`SELECT to_regclass('xdb_suite_broken')::text AS t`);
        assert.equal(row?.t, null);
        assert.deepEqual(await migrate(db), { applied: [], version: latestVersion() });
      });

      test("a database newer than the code is refused", async () => {
        await inRolledBackTransaction(asSql(st()).db, async (tx) => {
          await tx.query(`INSERT INTO schema_migrations (version, name) VALUES ($1, 'from the future')`, [
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
        const ver = await st().setRosterItem(u, item);
        await st().addSubscriptionRequest(u, "asker@example.net", "<presence type='subscribe'/>");
        await st().storeOffline(u, "<message>kept</message>", 10);
        await st().setVcard(u, TRICKY_XML);
        await st().setPrivate(u, "k ns", "<k xmlns='ns'/>");
        const offline = await st().listOffline(u);

        await st().close();
        await st().close(); // idempotent
        s = undefined;
        s = await open();

        assert.deepEqual(await st().getCredentials(u), [SHA1]);
        assert.deepEqual(await st().getRoster(u), { ver, items: [item] });
        assert.deepEqual(await st().listSubscriptionRequests(u), [
          { from: "asker@example.net", stanza: "<presence type='subscribe'/>" },
        ]);
        assert.deepEqual(await st().listOffline(u), offline);
        assert.equal(await st().getVcard(u), TRICKY_XML);
        assert.equal(await st().getPrivate(u, "k ns"), "<k xmlns='ns'/>");
        // Counters continue after a restart rather than starting over.
        assert.ok(BigInt(await st().setRosterItem(u, { ...item, groups: [] })) > BigInt(ver));
        await st().storeOffline(u, "<message>later</message>", 10);
        const later = await st().listOffline(u);
        assert.ok(BigInt(later.at(-1)!.id) > BigInt(offline.at(-1)!.id));
      });

      test("opening a database whose schema is newer than the code fails cleanly", async () => {
        // Committed on purpose: this is the last test, cleanup discards the database.
        await asSql(st()).db.query(`INSERT INTO schema_migrations (version, name) VALUES ($1, 'from the future')`, [
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
