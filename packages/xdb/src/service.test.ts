// XdbClient and XdbService against each other and a real database: both
// sides come from the envelope's operation table, so every storage method
// must arrive with its arguments where the table says. The router between
// them is replaced by a function that does what a link does to an element
// (serialise, refuse one larger than FARM_LINK_MAX_BYTES with OversizeError,
// parse at the other end); routers are tested in packages/router.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import pg from "pg";
import { pino } from "pino";
import { FARM_LINK_MAX_BYTES, OversizeError } from "@jabberfarm/component";
import { parseElement } from "@jabberfarm/xml";
import { openPostgres } from "./backends/postgres.js";
import { XdbClient, XdbRequestError, addressFor } from "./client.js";
import { ENVELOPE_NS } from "@jabberfarm/envelope";
import { XdbService } from "./service.js";
import type { ScramCredential, Storage } from "./storage.js";

const url = process.env["XDB_TEST_DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/test";
const CRED: ScramCredential = { mechanism: "SCRAM-SHA-1", salt: "c2FsdA==", iterations: 4096, storedKey: "a2V5", serverKey: "a2V5" };

/** Delivers an element's text to `to` as a link would, a moment later. */
function link(to: (el: ReturnType<typeof parseElement>) => void): (text: string) => boolean {
  return (text) => {
    const bytes = Buffer.byteLength(text);
    if (bytes > FARM_LINK_MAX_BYTES) throw new OversizeError(bytes, FARM_LINK_MAX_BYTES);
    const el = parseElement(text, undefined, { maxStanzaBytes: FARM_LINK_MAX_BYTES });
    setImmediate(() => to(el));
    return true;
  };
}

describe("xdb: client and service, derived from one table", () => {
  const schema = `xdb_service_${process.pid}_${randomBytes(4).toString("hex")}`;
  let storage: Storage;
  let client: XdbClient;

  before(async () => {
    storage = await openPostgres(url, { schema, poolSize: 4 });
    let service: XdbService | undefined = undefined;
    client = new XdbClient(link((el) => service!.handle(el)), "localhost/sm-test");
    service = new XdbService(storage, link((el) => client.handleResponse(el)), "xdb/xdb-test", pino({ level: "silent" }));
  });
  after(async () => {
    await client.close();
    await storage.close();
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await c.end();
  });

  test("every method arrives with its arguments and answers what the storage answered", async () => {
    const u = "amy@example.org";
    assert.equal(await client.createAccount(u, [CRED]), true);
    assert.equal(await client.createAccount(u, [CRED]), false);
    assert.equal(await client.accountExists(u), true);
    assert.deepEqual(await client.getCredentials(u), [CRED]);
    assert.equal(await client.setCredentials(u, [{ ...CRED, iterations: 5000 }]), true);
    assert.equal((await client.getCredentials(u))?.[0]?.iterations, 5000);
    const first = await client.setRosterItem(u, { jid: "b@example.org", subscription: "none", groups: ["g"] });
    assert.deepEqual(first, { ok: true, ver: "1" });
    // The optional last argument travels too.
    assert.deepEqual(await client.setRosterItem(u, { jid: "c@example.org", subscription: "none", groups: [] }, { maxItems: 1 }),
      { ok: false, reason: "quota", limit: "maxItems" });
    assert.deepEqual(await client.getRoster(u), { ver: "1", items: [{ jid: "b@example.org", subscription: "none", groups: ["g"] }] });
    assert.equal(await client.removeRosterItem(u, "b@example.org"), "2");
    assert.equal(await client.removeRosterItem(u, "b@example.org"), null);
    assert.deepEqual(await client.storeWrite({ kind: "kv.set", user: u, store: "vcard", entries: [{ key: "", value: "<vCard xmlns='vcard-temp'/>" }] }),
      { ok: true, deleted: 0 });
    assert.deepEqual(await client.storeRead({ kind: "kv.get", user: u, store: "vcard", key: "" }), { value: "<vCard xmlns='vcard-temp'/>" });
    assert.equal(await client.deleteAccount(u), true);
    assert.equal(await client.accountExists(u), false);
  });

  test("refusals come back as the conditions the asker maps", async () => {
    await assert.rejects(client.storeWrite({ kind: "archive.append", user: "ghost@example.org", store: "offline", value: "x" }),
      (e: unknown) => e instanceof XdbRequestError && e.condition === "item-not-found");
    await client.createAccount("bea@example.org", [CRED]);
    await assert.rejects(client.storeRead({ kind: "archive.query", user: "bea@example.org", store: "offline", after: "nope" }),
      (e: unknown) => e instanceof XdbRequestError && e.condition === "item-not-found");
    await assert.rejects(client.storeRead({ kind: "kv.list", user: "bea@example.org", store: "Not A Name" }),
      (e: unknown) => e instanceof XdbRequestError && e.condition === "bad-request");
    // An operation nothing calls any more, and one sent with the wrong type, are bad requests.
    for (const [type, op] of [["get", "offline.list"], ["get", "store.write"]] as const) {
      const answer = new Promise<ReturnType<typeof parseElement>>((resolve) => {
        const service = new XdbService(storage, link(resolve), "xdb/xdb-test", pino({ level: "silent" }));
        service.handle(parseElement(`<xdb xmlns='urn:jabberfarm:envelope:1' type='${type}' id='q1' op='${op}' from='localhost/sm-test' to='xdb'>{"user":"bea@example.org"}</xdb>`));
      });
      const el = await answer;
      assert.equal(el.attrs.type, "error");
      assert.ok(el.getChild("error")?.getChild("bad-request"), el.toString());
    }
  });

  test("a page whose values escape past the link size is cut in half and read on, until all of it came", async () => {
    const u = "cat@example.org";
    await client.createAccount(u, [CRED]);
    // 5,000 '<' escape to 20 KB each: the 500 KB budget of raw bytes would be 2 MB on the link.
    const value = (i: number) => `${i}:${"<".repeat(5000)}`;
    for (let i = 0; i < 100; i++) await client.storeWrite({ kind: "archive.append", user: u, store: "log", id: `i${i}`, value: value(i) });
    const seen: string[] = [];
    let after: string | undefined;
    let pages = 0;
    for (;;) {
      const page = await client.storeRead({ kind: "archive.query", user: u, store: "log", limit: 1000, maxBytes: 512 * 1024, ...(after ? { after } : {}) });
      assert.ok("items" in page && "complete" in page);
      const items = page.items as Array<{ id: string; value: string }>;
      pages++;
      for (const it of items) seen.push(it.value);
      if (page.complete) break;
      assert.ok(items.length > 0);
      after = items[items.length - 1]!.id;
    }
    // The raw budget alone takes all 100 in one page; only the halving makes it more.
    assert.ok(pages >= 2, `${pages} pages`);
    assert.deepEqual(seen, Array.from({ length: 100 }, (_, i) => value(i)));
  });
});

describe("xdb client: where requests go, and reads sent again when an xdb leaves", () => {
  test("a request about a user is addressed to that user's key at xdb; others to the asking process's", () => {
    const sent: string[] = [];
    const client = new XdbClient((t) => sent.push(t) > 0, "localhost/sm-1", { timeoutMs: 60_000 });
    void client.accountExists("alice@example.org").catch(() => {});
    void client.accountExists("alice@example.org").catch(() => {});
    void client.accountExists("bob@example.org").catch(() => {});
    void client.storeWrite({ kind: "archive.appendMany", store: "mam", items: [] }).catch(() => {});
    const to = sent.map((t) => parseElement(t).attrs.to);
    assert.match(to[0]!, /^u[0-9a-z]+@xdb$/);
    assert.equal(to[1], to[0], "one user, one address");
    assert.notEqual(to[2], to[0]);
    assert.equal(to[3], addressFor("xdb", "localhost/sm-1"), "a batch about many users: keyed by the process");
    assert.equal(addressFor("xdb", "alice@example.org"), to[0]);
    void client.close();
  });

  test("resendReads sends the reads in flight again, not the writes; the first answer settles each", async () => {
    const sent: string[] = [];
    const client = new XdbClient((t) => sent.push(t) > 0, "localhost/sm-1", { timeoutMs: 60_000 });
    const read = client.accountExists("alice@example.org");
    const write = client.createAccount("bob@example.org", [CRED]).catch((e: unknown) => e);
    assert.equal(sent.length, 2);
    assert.equal(client.resendReads(), 1);
    assert.equal(sent.length, 3);
    assert.equal(sent[2], sent[0], "the read, as it was sent");
    const id = parseElement(sent[0]!).attrs.id!;
    const answer = (text: string): boolean => client.handleResponse(parseElement(text));
    assert.equal(answer(`<xdb xmlns='${ENVELOPE_NS}' type='result' id='${id}' op='account.exists' from='xdb/xdb-2' to='localhost/sm-1'>true</xdb>`), true);
    assert.equal(await read, true);
    assert.equal(answer(`<xdb xmlns='${ENVELOPE_NS}' type='result' id='${id}' op='account.exists' from='xdb/xdb-1' to='localhost/sm-1'>true</xdb>`), false, "a second answer is ignored");
    assert.equal(client.inFlight, 1, "the write still waits");
    await client.close();
    assert.ok(await write instanceof XdbRequestError);
  });
});
