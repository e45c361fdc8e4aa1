import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AccountRecord } from "@jabberfarm/envelope";
import { openPglite } from "./backends/pglite.js";
import { openPostgres } from "./backends/postgres.js";
import { InvalidArgumentError } from "./errors.js";
import { SqlStorage } from "./sql-storage.js";
import type { Storage } from "./storage.js";

// The local test server (see .ci/run); override to point elsewhere.
const url = process.env["XDB_TEST_DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/test";

const cred = (m: "SCRAM-SHA-1" | "SCRAM-SHA-256", k: string) => ({ mechanism: m, salt: "c2FsdA==", iterations: 4096, storedKey: k, serverKey: k });

function account(user: string, extra: Partial<AccountRecord> = {}): AccountRecord {
  return {
    user,
    credentials: [cred("SCRAM-SHA-256", `${user}-256`), cred("SCRAM-SHA-1", `${user}-1`)],
    roster: [{ jid: "friend@x.example", name: "Friend", subscription: "both", groups: ["A", "B"] }, { jid: "other@y.example", subscription: "none", ask: "subscribe", groups: [] }],
    kv: [{ store: "vcard", key: "", value: `<vCard xmlns='vcard-temp'><FN>${user}</FN></vCard>` }],
    archive: [
      { store: "offline", id: "m1", when: "2020-01-01T00:00:00.000Z", with: "friend@x.example", value: "<message xmlns='jabber:client'><body>1</body></message>" },
      { store: "offline", id: "m2", when: "2020-01-02T00:00:00.000Z", value: "<message xmlns='jabber:client'><body>2</body></message>" },
    ],
    ...extra,
  };
}

const stores = { kvStores: ["vcard"], archiveStores: ["offline"] };

function bulkSuite(name: string, open: () => Promise<Storage>, cleanup: (s: Storage) => Promise<void> = async () => {}): void {
  describe(`${name}: accounts in bulk`, () => {
    let storage: Storage | undefined;
    const s = async (): Promise<Storage> => (storage ??= await open());
    after(async () => {
      if (storage) {
        await cleanup(storage);
        await storage.close();
      }
    });

    test("an import creates each account with all its data in one go; an account there already is left alone", async () => {
      const st = await s();
      assert.equal(await st.createAccount("there@a.example", [cred("SCRAM-SHA-1", "old")]), true);
      const outcome = await st.importAccounts([account("one@a.example"), account("there@a.example"), account("two@a.example"), account("one@a.example")]);
      assert.deepEqual(outcome, ["created", "exists", "created", "exists"]);
      assert.deepEqual((await st.getCredentials("there@a.example"))?.map((c) => c.storedKey), ["old"]);
      assert.deepEqual((await st.getRoster("there@a.example")).items, []);
      const roster = await st.getRoster("one@a.example");
      assert.equal(roster.ver, "1");
      assert.deepEqual(roster.items, account("x").roster);
      assert.deepEqual((await st.getCredentials("two@a.example"))?.map((c) => c.storedKey), ["two@a.example-1", "two@a.example-256"]);
      const card = await st.storeRead({ kind: "kv.get", user: "one@a.example", store: "vcard", key: "" });
      assert.deepEqual(card, { value: "<vCard xmlns='vcard-temp'><FN>one@a.example</FN></vCard>" });
      const offline = await st.storeRead({ kind: "archive.query", user: "one@a.example", store: "offline" });
      assert.ok("items" in offline);
      assert.deepEqual((offline.items as Array<{ id: string; when: string; with: string | null }>).map((i) => [i.id, i.when, i.with]), [["m1", "2020-01-01T00:00:00.000Z", "friend@x.example"], ["m2", "2020-01-02T00:00:00.000Z", null]]);
    });

    test("a bad account refuses the whole request: nothing of it is written", async () => {
      const st = await s();
      const bad = account("bad@b.example", { credentials: [{ ...cred("SCRAM-SHA-1", "k"), iterations: 10 }] });
      await assert.rejects(st.importAccounts([account("good@b.example"), bad]), (err: unknown) => err instanceof InvalidArgumentError && /iterations/.test(err.message));
      assert.equal(await st.accountExists("good@b.example"), false);
    });

    test("an export pages through the accounts by domain then name, with everything imported", async () => {
      const st = await s();
      const names = ["b@c.example", "a@d.example", "c@c.example", "a@c.example"];
      await st.importAccounts(names.map((n) => account(n)));
      const seen: string[] = [];
      let after: string | undefined;
      for (let pages = 0; ; pages++) {
        assert.ok(pages < 10);
        const page = await st.exportAccounts({ ...(after === undefined ? {} : { after }), limit: 2, ...stores });
        seen.push(...page.accounts.map((a) => a.user));
        after = page.accounts[page.accounts.length - 1]?.user;
        if (page.complete) break;
      }
      const mine = seen.filter((u) => u.endsWith("@c.example") || u.endsWith("@d.example"));
      assert.deepEqual(mine, ["a@c.example", "b@c.example", "c@c.example", "a@d.example"]);
      const one = await st.exportAccounts({ domain: "d.example", ...stores });
      assert.equal(one.complete, true);
      const { credentials, ...rest } = account("a@d.example");
      assert.deepEqual(one.accounts, [{ ...rest, credentials: [credentials[1], credentials[0]] }]);
    });
  });
}

const schemas: string[] = [];
bulkSuite("postgres", async () => {
  const schema = `xdb_bulk_${process.pid}_${randomBytes(4).toString("hex")}`;
  schemas.push(schema);
  return openPostgres(url, { schema, poolSize: 4 });
}, async (s) => {
  for (const schema of schemas) await (s as SqlStorage).db.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
});

let dir: string | undefined;
bulkSuite("pglite", async () => openPglite((dir = await mkdtemp(join(tmpdir(), "xdb-bulk-")))), async () => {});
after(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("PGlite: what an import writes is served from memory at once", () => {
  test("the credentials and the stores of imported accounts are known to the running xdb", async () => {
    const d = await mkdtemp(join(tmpdir(), "xdb-bulk-mem-"));
    const s = await openPglite(d);
    try {
      assert.equal(await s.getCredentials("new@e.example"), null);
      assert.deepEqual(await s.importAccounts([account("new@e.example")]), ["created"]);
      assert.deepEqual((await s.getCredentials("new@e.example"))?.map((c) => c.mechanism), ["SCRAM-SHA-1", "SCRAM-SHA-256"]);
      const offline = await s.storeRead({ kind: "archive.count", user: "new@e.example", store: "offline" });
      assert.ok("count" in offline);
      assert.equal(offline.count, 2);
    } finally {
      await s.close();
      await rm(d, { recursive: true, force: true });
    }
  });
});
