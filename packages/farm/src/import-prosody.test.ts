// Importing what a real prosody exports: Debian's prosody 0.12, accounts
// registered with prosodyctl (so their SCRAM-SHA-1 keys are prosody's own),
// roster, vCard and private XML in its internal storage, exported with
// prosody-migrator to XEP-0227 (one file per user). Skipped, saying why,
// only where prosody is not installed (CI installs it).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { ScramClient, ScramServer } from "@jabberfarm/sasl";
import { SqlStorage, openPostgres } from "@jabberfarm/xdb";
import { parseElement } from "@jabberfarm/xml";
import { importPie } from "./bulk-accounts.js";

const url = process.env["TEST_DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/test";
const MIGRATOR = "/usr/bin/prosody-migrator";
const installed = existsSync("/usr/bin/prosodyctl") && existsSync(MIGRATOR);

function sh(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")}: exit ${r.status}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

test("a file exported by a real prosody (prosody-migrator, xep0227) imports, and its passwords log in", { skip: installed ? false : "prosody is not installed (apt-get install prosody)" }, async () => {
  const dir = mkdtempSync(join(tmpdir(), "jf-prosody-"));
  const data = join(dir, "data");
  const out = join(dir, "out");
  mkdirSync(data);
  mkdirSync(out);
  // Its own config and data: never the system's, and no prosody daemon is started.
  const config = join(dir, "prosody.cfg.lua");
  writeFileSync(config, `prosody_user = "${userInfo().username}"; prosody_group = "${userInfo().username}"
data_path = "${data}"
pidfile = "${dir}/prosody.pid"
certificates = "${dir}"
log = { error = "${dir}/error.log" }
authentication = "internal_hashed"
storage = "internal"
VirtualHost "pie.example"
`);
  sh("prosodyctl", ["--config", config, "register", "alice", "pie.example", "wonder land"]);
  sh("prosodyctl", ["--config", config, "register", "bob", "pie.example", "b0b"]);
  // prosody's internal storage format for what prosodyctl cannot write (what mod_roster, mod_vcard and mod_private write).
  const host = join(data, "pie%2eexample");
  for (const store of ["roster", "vcard", "private"]) mkdirSync(join(host, store), { recursive: true });
  writeFileSync(join(host, "roster", "alice.dat"), `return {
  [false] = { ["version"] = 3; ["pending"] = { ["carol@pie.example"] = true; }; };
  ["bob@pie.example"] = { ["subscription"] = "both"; ["name"] = "Bob"; ["groups"] = { ["Friends"] = true; }; };
  ["dave@elsewhere.example"] = { ["subscription"] = "none"; ["ask"] = "subscribe"; ["groups"] = {}; };
};`);
  writeFileSync(join(host, "vcard", "alice.dat"), "return { [\"name\"] = \"vCard\"; [\"attr\"] = { [\"xmlns\"] = \"vcard-temp\" }; [1] = { [\"name\"] = \"FN\"; [\"attr\"] = {}; [1] = \"Alice Liddell\" }; };");
  writeFileSync(join(host, "private", "alice.dat"), `return { ["storage:storage:bookmarks"] = { ["name"] = "storage"; ["attr"] = { ["xmlns"] = "storage:bookmarks" };
  [1] = { ["name"] = "conference"; ["attr"] = { ["jid"] = "tea@conference.pie.example"; ["autojoin"] = "true" } } }; };`);
  const migratorConfig = join(dir, "migrator.cfg.lua");
  writeFileSync(migratorConfig, `input { type = "internal"; path = "${data}"; hosts = { ["pie.example"] = { "accounts", "roster", "vcard", "private" } } }
output { type = "xep0227"; path = "${out}" }
`);
  // prosody 0.12's xep0227 driver writes to the migrator's built-in data path (/var/lib/prosody),
  // not to the output's `path`: the real migrator script runs with that one line pointed at our directory.
  const script = readFileSync(MIGRATOR, "utf8");
  const lua = /^#!\S*env (\S+)|^#!(\S+)/.exec(script);
  const migrator = join(dir, "prosody-migrator");
  writeFileSync(migrator, script.replace(/^CFG_DATADIR=.*$/m, `CFG_DATADIR='${out}';`));
  // Run as root, the migrator becomes the prosody user: it must be able to read and write our directory.
  if (process.getuid?.() === 0) spawnSync("chown", ["-R", "prosody:prosody", dir]);
  sh(lua?.[1] ?? lua?.[2] ?? "lua5.4", [migrator, "--config", migratorConfig, "input", "output"]);
  assert.deepEqual(readdirSync(out).sort(), ["alice@pie.example.xml", "bob@pie.example.xml"]);

  const schema = `farm_prosody_${process.pid}_${randomBytes(4).toString("hex")}`;
  const storage = await openPostgres(url, { schema, poolSize: 2 });
  try {
    const s = await importPie(storage, out, { out: { write: () => true } });
    assert.deepEqual([s.total, s.created, s.skipped], [2, 2, 0]);
    const creds = await storage.getCredentials("alice@pie.example");
    assert.deepEqual(creds?.map((c) => [c.mechanism, c.iterations]), [["SCRAM-SHA-1", 10000]]);
    // prosody's keys, as they are: alice logs in with the password she gave prosody.
    const server = new ScramServer("SCRAM-SHA-1", async (name) => (await storage.getCredentials(`${name}@pie.example`))?.[0] ?? null);
    const client = new ScramClient("SCRAM-SHA-1", "alice", "wonder land");
    client.verify(server.finish(client.final(await server.start(client.first()))));
    const roster = await storage.getRoster("alice@pie.example");
    assert.deepEqual(roster.items, [
      { jid: "bob@pie.example", name: "Bob", subscription: "both", groups: ["Friends"] },
      { jid: "dave@elsewhere.example", subscription: "none", ask: "subscribe", groups: [] },
    ]);
    const kv = async (store: string, key: string): Promise<string | null> => {
      const r = await storage.storeRead({ kind: "kv.get", user: "alice@pie.example", store, key });
      return "value" in r ? r.value : null;
    };
    assert.equal(await kv("vcard", ""), "<vCard xmlns='vcard-temp'><FN>Alice Liddell</FN></vCard>");
    assert.match(await kv("private", "storage storage:bookmarks") ?? "", /^<storage xmlns='storage:bookmarks'><conference [^>]*jid='tea@conference\.pie\.example'/);
    // prosody writes attributes in its tables' order, which changes from run to run: compare the element, not the text.
    const request = parseElement(await kv("subscription-requests", "carol@pie.example") ?? "<none/>", "jabber:client");
    assert.equal(request.name, "presence");
    assert.deepEqual({ ...request.attrs }, { xmlns: "jabber:client", type: "subscribe", from: "carol@pie.example", to: "alice@pie.example" });
    assert.equal(request.children.length, 0);
  } finally {
    await (storage as SqlStorage).db.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await storage.close();
  }
});
