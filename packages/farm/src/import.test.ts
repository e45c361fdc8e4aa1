import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ScramClient, ScramServer, deriveCredentials } from "@jabberfarm/sasl";
import { SqlStorage, openPostgres, type Storage } from "@jabberfarm/xdb";
import { exportPie, importPie, importUserLines, readUserLines } from "./bulk-accounts.js";
import { PieError } from "./pie-read.js";
import { ProgressBar } from "./progress.js";

// The local test server (see .ci/run); override to point elsewhere.
const url = process.env["TEST_DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/test";
const CLI = new URL("./cli.js", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "jf-import-"));
const file = (name: string, text: string): string => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};
const quiet = { out: { write: () => true } };

const ALICE = `    <user name='alice' password='wonder land'>
      <query xmlns='jabber:iq:roster'>
        <item jid='bob@rt.example' name='Bob' subscription='both'><group>Friends</group><group>Work</group></item>
        <item jid='dave@elsewhere.example' subscription='none' ask='subscribe'/>
      </query>
      <vCard xmlns='vcard-temp'><FN>Alice</FN><NICKNAME>al &amp; co</NICKNAME></vCard>
      <query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'><conference jid='tea@conference.rt.example' autojoin='true'/></storage></query>
      <offline-messages>
        <message xmlns='jabber:client' from='bob@rt.example/phone' to='alice@rt.example' type='chat' id='m1'><body>are you there?</body><delay xmlns='urn:xmpp:delay' stamp='2024-05-01T10:00:00Z'/></message>
        <message from='carol@rt.example' to='alice@rt.example'><body>no namespace of its own</body></message>
      </offline-messages>
      <presence xmlns='jabber:client' from='carol@rt.example/x' type='subscribe'/>
    </user>
`;
const pie = (host: string, users: string): string => `<?xml version='1.0' encoding='UTF-8'?>
<server-data xmlns='urn:xmpp:pie:0'>
  <host jid='${host}'>
${users}  </host>
</server-data>
`;

/** A SCRAM login of `user` against what the storage holds, as the c2s does it. */
async function scramLogin(storage: Storage, user: string, password: string, mechanism: "SCRAM-SHA-1" | "SCRAM-SHA-256"): Promise<void> {
  const [local, domain] = user.split("@") as [string, string];
  const server = new ScramServer(mechanism, async (name, m) => {
    const creds = await storage.getCredentials(`${name}@${domain}`);
    return creds?.find((c) => c.mechanism === m) ?? null;
  });
  const client = new ScramClient(mechanism, local, password);
  client.verify(server.finish(client.final(await server.start(client.first()))));
}

function run(args: string[], opts: { onSpawn?: (pid: number) => void } = {}): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args, "--data", dir], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d));
    opts.onSpawn?.(child.pid!);
    child.on("exit", (code, signal) => resolve({ code, signal, stderr }));
  });
}

describe("jabberfarm import and export (XEP-0227)", () => {
  const schemas: string[] = [];
  const opened: Storage[] = [];
  const fresh = async (): Promise<Storage> => {
    const schema = `farm_import_${process.pid}_${randomBytes(4).toString("hex")}`;
    schemas.push(schema);
    const s = await openPostgres(url, { schema, poolSize: 4 });
    opened.push(s);
    return s;
  };
  let storage: Storage;
  before(async () => {
    storage = await fresh();
  });
  after(async () => {
    for (const schema of schemas) await (opened[0] as SqlStorage).db.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    for (const s of opened) await s.close();
  });

  test("round trip: import, export, import elsewhere and export again give the same file", async () => {
    const keys = deriveCredentials("b0b's password").map((c) =>
      `<scram-credentials xmlns='urn:xmpp:pie:0#scram' mechanism='${c.mechanism}'><server-key>${c.serverKey}</server-key>` +
      `<stored-key>${c.storedKey}</stored-key><iter-count>${c.iterations}</iter-count><salt>${c.salt}</salt></scram-credentials>`).join("");
    const source = file("rt.xml", pie("rt.example", `${ALICE}    <user name='bob'>${keys}</user>\n`));
    const first = await importPie(storage, source, quiet);
    assert.deepEqual([first.total, first.created, first.existed, first.skipped], [2, 2, 0, 0]);
    const out1 = join(dir, "rt-1.xml");
    assert.equal((await exportPie(storage, out1, { ...quiet, domain: "rt.example" })).accounts, 2);
    const elsewhere = await fresh();
    assert.equal((await importPie(elsewhere, out1, quiet)).created, 2);
    const out2 = join(dir, "rt-2.xml");
    await exportPie(elsewhere, out2, quiet);
    const text = readFileSync(out1, "utf8");
    assert.equal(readFileSync(out2, "utf8"), text);
    // Everything of the source is in the export, in the farm's own words.
    assert.doesNotMatch(text, /password=/);
    assert.match(text, /<item jid='bob@rt.example' name='Bob' subscription='both'><group>Friends<\/group><group>Work<\/group><\/item>/);
    assert.match(text, /<item jid='dave@elsewhere.example' subscription='none' ask='subscribe'\/>/);
    assert.match(text, /<vCard xmlns='vcard-temp'><FN>Alice<\/FN><NICKNAME>al &amp; co<\/NICKNAME><\/vCard>/);
    assert.match(text, /<query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'><conference jid='tea@conference.rt.example' autojoin='true'\/><\/storage><\/query>/);
    assert.match(text, /<message xmlns='jabber:client' from='bob@rt.example\/phone' [^>]*><body>are you there\?<\/body>/);
    assert.match(text, /<message xmlns='jabber:client' from='carol@rt.example' to='alice@rt.example'><body>no namespace of its own<\/body><\/message>/);
    assert.match(text, /<presence xmlns='jabber:client' from='carol@rt.example' type='subscribe' to='alice@rt.example'\/>/);
    const offline = await elsewhere.storeRead({ kind: "archive.query", user: "alice@rt.example", store: "offline" });
    assert.ok("items" in offline);
    const items = offline.items as Array<{ with: string | null; when: string }>;
    assert.deepEqual(items.map((i) => i.with), ["bob@rt.example", "carol@rt.example"]);
    assert.equal(items[0]!.when, "2024-05-01T10:00:00.000Z");
    // The keys went across as they were: bob's password still logs in, over either mechanism.
    await scramLogin(elsewhere, "bob@rt.example", "b0b's password", "SCRAM-SHA-1");
    await scramLogin(elsewhere, "bob@rt.example", "b0b's password", "SCRAM-SHA-256");
  });

  test("a password from the file logs in over SCRAM-SHA-1 and SCRAM-SHA-256; a wrong one does not", async () => {
    // alice came with a plaintext password in the round trip above
    await scramLogin(storage, "alice@rt.example", "wonder land", "SCRAM-SHA-256");
    await scramLogin(storage, "alice@rt.example", "wonder land", "SCRAM-SHA-1");
    await assert.rejects(scramLogin(storage, "alice@rt.example", "wonderland", "SCRAM-SHA-256"));
  });

  test("a bad file is refused with its line, before anything is written", async () => {
    const many = Array.from({ length: 50 }, (_, i) => `    <user name='u${i}' password='p'/>\n`).join("");
    const cases: Array<[string, string, RegExp, object?]> = [
      ["not XML", "alice secret\nbob hunter2\n", /notxml\.xml:\d+:\d+: text data outside of root node\. \(not well-formed XML\)/],
      ["wrong namespace", "<server-data xmlns='urn:xmpp:pie:1'><host jid='bad.example'/></server-data>", /:1: expected <server-data xmlns='urn:xmpp:pie:0'> \(XEP-0227\), found <server-data xmlns='urn:xmpp:pie:1'>/],
      ["user without name", pie("bad.example", `${many}    <user password='x'/>\n`), /:54: <user> without a name in <host jid='bad.example'>/],
      ["invalid JID", pie("bad.example", `${many}    <user name='a b' password='x'/>\n`), /:54: <user name='a b'>: 'a b@bad.example' is not a valid account JID/],
      ["host not a domain", pie("u@bad.example", many), /:3: <host> needs a jid that is a domain, got 'u@bad.example'/],
      ["bad roster item", pie("bad.example", `${many}    <user name='z' password='x'><query xmlns='jabber:iq:roster'><item jid='@@'/></query></user>\n`), /:54: roster item of z@bad.example with jid '@@', not a JID/],
      ["twice", pie("bad.example", `${many}    <user name='U0' password='x'/>\n`), /:54: u0@bad.example again \(first at .*:4\)/],
      ["cut off", pie("bad.example", many).slice(0, -30), /\(not well-formed XML\)/],
      ["one account too large", pie("bad.example", `${many}    <user name='big' password='x'><vCard xmlns='vcard-temp'><DESC>${"x".repeat(5000)}</DESC></vCard></user>\n`),
        /:54: <user> larger than 4000 characters/, { limits: { maxUserChars: 4000, maxDepth: 64 } }],
      ["too deep", pie("bad.example", `${many}    <user name='deep' password='x'><vCard xmlns='vcard-temp'>${"<a>".repeat(10)}${"</a>".repeat(10)}</vCard></user>\n`),
        /:54: elements nested deeper than 8/, { limits: { maxUserChars: 1e6, maxDepth: 8 } }],
    ];
    for (const [name, text, expected, opts] of cases) {
      const p = file(name === "not XML" ? "notxml.xml" : `${name.replace(/ /g, "-")}.xml`, text);
      await assert.rejects(importPie(storage, p, { ...quiet, ...opts }), (err: unknown) => err instanceof PieError && expected.test(err.message), name);
      const left = await storage.exportAccounts({ domain: "bad.example" });
      assert.deepEqual(left.accounts.map((a) => a.user), [], `${name}: nothing written`);
    }
    const r = await run(["import", join(dir, "notxml.xml")]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^jabberfarm: .*notxml\.xml:\d+:\d+: .*not well-formed XML/);
  });

  test("accounts the farm cannot hold are skipped with their reason; the others are imported", async () => {
    const scram = (mechanism: string, iterations: number): string =>
      `<scram-credentials xmlns='urn:xmpp:pie:0#scram' mechanism='${mechanism}'><server-key>AAAA</server-key><stored-key>AAAA</stored-key><iter-count>${iterations}</iter-count><salt>c2FsdA==</salt></scram-credentials>`;
    const p = file("skips.xml", pie("skip.example", `    <user name='sha512'>${scram("SCRAM-SHA-512", 10000)}</user>
    <user name='weak'>${scram("SCRAM-SHA-1", 100)}</user>
    <user name='nothing'/>
    <user name='fine' password='ok'><pubsub xmlns='http://jabber.org/protocol/pubsub'/></user>
`));
    const said: string[] = [];
    const s = await importPie(storage, p, { out: { write: (line: string) => said.push(line) } });
    assert.deepEqual([s.created, s.skipped], [1, 3]);
    assert.equal(s.ignored.get("pubsub xmlns='http://jabber.org/protocol/pubsub'"), 1);
    assert.match(said.join(""), /skipped sha512@skip\.example \(.*skips\.xml:4\): SCRAM credentials the farm cannot use: SCRAM-SHA-512 \(the farm holds SCRAM-SHA-1 and SCRAM-SHA-256\)/);
    assert.match(said.join(""), /skipped weak@skip\.example .*SCRAM-SHA-1 with 100 iterations \(the farm needs at least 4096\)/);
    assert.match(said.join(""), /skipped nothing@skip\.example .*neither a password nor SCRAM credentials/);
  });

  test("adduser --from: one account per 'user password' line, comments and blank lines skipped", async () => {
    const p = file("users.txt", "# staff\nann  first pass\n\n  ben@lines.example   b3n\r\n# end\n");
    const accounts = readUserLines(p, "lines.example");
    assert.deepEqual(accounts.map((a) => [a.record.user, a.password, a.where.replace(/.*:/, "")]), [["ann@lines.example", "first pass", "2"], ["ben@lines.example", "b3n", "4"]]);
    const s = await importUserLines(storage, accounts, quiet);
    assert.deepEqual([s.created, s.existed], [2, 0]);
    await scramLogin(storage, "ann@lines.example", "first pass", "SCRAM-SHA-256");
    assert.equal((await importUserLines(storage, accounts, quiet)).existed, 2);
    assert.throws(() => readUserLines(file("nopw.txt", "ann first\nbob\n"), "lines.example"), /nopw\.txt:2: expected 'USER PASSWORD', got 'bob' \(no password\)/);
    assert.throws(() => readUserLines(file("badjid.txt", "a/b@x pw\n"), "lines.example"), /badjid\.txt:1: 'a\/b@x' is not an account JID/);
  });

  test("an import killed half way, run again, makes every account exactly once", async () => {
    const db = `jf_import_${process.pid}_${randomBytes(3).toString("hex")}`;
    await (storage as SqlStorage).db.query(`CREATE DATABASE ${db}`);
    const dbUrl = new URL(url);
    dbUrl.pathname = `/${db}`;
    const target = await openPostgres(dbUrl.href);
    try {
      const N = 3000;
      const key = deriveCredentials("k").find((c) => c.mechanism === "SCRAM-SHA-1");
      const creds = `<scram-credentials xmlns='urn:xmpp:pie:0#scram' mechanism='SCRAM-SHA-1'><server-key>${key!.serverKey}</server-key><stored-key>${key!.storedKey}</stored-key><iter-count>4096</iter-count><salt>${key!.salt}</salt></scram-credentials>`;
      const users = Array.from({ length: N }, (_, i) => `<user name='c${i}'>${creds}<query xmlns='jabber:iq:roster'><item jid='c${(i + 1) % N}@crash.example' subscription='both'/></query>` +
        `<offline-messages><message xmlns='jabber:client' from='x@y.example'><body>${i}</body></message></offline-messages></user>\n`).join("");
      const p = file("crash.xml", pie("crash.example", users));
      const count = async (table: string): Promise<number> => (await (target as SqlStorage).db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`))[0]!.n;
      let poll: NodeJS.Timeout | undefined;
      let polling = false;
      const first = await run(["import", p, "--database-url", dbUrl.href, "--batch", "25"], {
        onSpawn: (pid) => {
          poll = setInterval(() => {
            if (polling) return;
            polling = true;
            void count("accounts").then((n) => {
              polling = false;
              if (n > 0 && poll) {
                clearInterval(poll);
                poll = undefined;
                process.kill(pid, "SIGKILL");
              }
            });
          }, 5);
        },
      });
      clearInterval(poll);
      assert.equal(first.signal, "SIGKILL", `not killed mid-way: ${first.stderr}`);
      const before = await count("accounts");
      assert.ok(before > 0 && before < N, `killed with ${before} of ${N} accounts`);
      const second = await run(["import", p, "--database-url", dbUrl.href]);
      assert.equal(second.code, 0, second.stderr);
      assert.match(second.stderr, new RegExp(`import: ${N} accounts in .*: ${N - before} created, ${before} already there`));
      for (const table of ["accounts", "credentials", "roster_items", "archive_store"]) assert.equal(await count(table), N, table);
    } finally {
      await target.close();
      await (storage as SqlStorage).db.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
    }
  });
});

test("the progress bar draws on a terminal only; elsewhere, lines alone", () => {
  const tty: string[] = [];
  const bar = new ProgressBar("import", 10, { isTTY: true, write: (s: string) => tty.push(s) });
  bar.advance(10);
  bar.say("skipped x");
  bar.finish();
  assert.match(tty[0]!, /^\rimport \[#{30}\] 10\/10 100% /);
  assert.match(tty.join(""), /skipped x\n/);
  const plain: string[] = [];
  const quietBar = new ProgressBar("import", 10, { isTTY: false, write: (s: string) => plain.push(s) });
  quietBar.advance(5);
  quietBar.say("skipped y");
  quietBar.finish();
  assert.deepEqual(plain, ["skipped y\n"]);
});
