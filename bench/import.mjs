#!/usr/bin/env node
// Bulk accounts benchmark (not a test): how long `jabberfarm import`,
// `export` and `adduser --from` take for ACCOUNTS accounts, each command as
// an operator runs it (a process of its own, the storage opened directly:
// a fresh PGlite data directory, or PostgreSQL with DATABASE_URL).
//
// The XEP-0227 file comes in two kinds: with SCRAM keys (what prosody
// 0.12's prosody-migrator and `jabberfarm export` write: no PBKDF2 on
// import), and with plaintext passwords (what ejabberd's export_piefxis
// writes for plain-stored passwords: two PBKDF2 runs per account, SHA-256
// and SHA-1 at 4096 iterations, on libuv's thread pool).
// Each account has a roster of ROSTER items and a vCard.
//
//   node bench/import.mjs                      # 10,000 accounts, both kinds, PGlite
//   ACCOUNTS=1000 node bench/import.mjs
//   DATABASE_URL=postgres://postgres@127.0.0.1/bench node bench/import.mjs
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { deriveCredentials } from "../packages/sasl/dist/index.js";

const root = new URL("..", import.meta.url).pathname;
const ACCOUNTS = Number(process.env.ACCOUNTS ?? 10_000);
const ROSTER = Number(process.env.ROSTER ?? 5);
const DOMAIN = "bench.example";
const dir = mkdtempSync(join(tmpdir(), "jf-import-"));

function pieFile(name, userAttrs, inner = "") {
  const parts = ["<?xml version='1.0' encoding='UTF-8'?>\n<server-data xmlns='urn:xmpp:pie:0'>\n", `<host jid='${DOMAIN}'>\n`];
  for (let i = 0; i < ACCOUNTS; i++) {
    const items = [];
    for (let k = 1; k <= ROSTER; k++) items.push(`<item jid='u${(i + k) % ACCOUNTS}@${DOMAIN}' subscription='both'><group>Team</group></item>`);
    parts.push(`<user name='u${i}'${userAttrs(i)}>${inner}<query xmlns='jabber:iq:roster'>${items.join("")}</query>` +
      `<vCard xmlns='vcard-temp'><FN>User ${i}</FN><NICKNAME>u${i}</NICKNAME></vCard></user>\n`);
  }
  parts.push("</host>\n</server-data>\n");
  const file = join(dir, name);
  writeFileSync(file, parts.join(""));
  return file;
}

// One set of keys for every account: the import does not care whose keys they are.
const scram = deriveCredentials("bench-password").map((c) =>
  `<scram-credentials xmlns='urn:xmpp:pie:0#scram' mechanism='${c.mechanism}'><server-key>${c.serverKey}</server-key>` +
  `<stored-key>${c.storedKey}</stored-key><iter-count>${c.iterations}</iter-count><salt>${c.salt}</salt></scram-credentials>`).join("");
const withKeys = pieFile("scram.xml", () => "", scram);
const withPasswords = pieFile("passwords.xml", (i) => ` password='pw-${i}'`);
const lines = join(dir, "users.txt");
writeFileSync(lines, Array.from({ length: ACCOUNTS }, (_, i) => `u${i} pw-${i}`).join("\n") + "\n");

function storageArgs(name) {
  if (process.env.DATABASE_URL) {
    // A database of its own per run, so every import starts from no accounts.
    const url = new URL(process.env.DATABASE_URL);
    const db = `${url.pathname.slice(1) || "jf_bench"}_${name}`;
    const admin = new URL(url);
    admin.pathname = "/postgres";
    spawnSync("psql", [admin.href, "-qc", `DROP DATABASE IF EXISTS ${db}`, "-c", `CREATE DATABASE ${db}`], { stdio: "ignore" });
    url.pathname = `/${db}`;
    return ["--database-url", url.href];
  }
  return ["--data", join(dir, `data-${name}`)];
}

function jabberfarm(args, storage) {
  const t = process.hrtime.bigint();
  const r = spawnSync(process.execPath, [join(root, "packages/farm/dist/cli.js"), ...args, ...storage, "--domain", DOMAIN], { encoding: "utf8" });
  const s = Number(process.hrtime.bigint() - t) / 1e9;
  if (r.status !== 0) throw new Error(`jabberfarm ${args.join(" ")}: exit ${r.status}\n${r.stderr}`);
  return { s, said: r.stderr.trim().split("\n").pop() };
}

const rows = [];
const run = (what, args, storage) => {
  const { s, said } = jabberfarm(args, storage);
  rows.push({ what, s, said });
  process.stderr.write(`${what}: ${s.toFixed(2)} s  (${said})\n`);
};

process.stderr.write(`${ACCOUNTS} accounts, ${ROSTER} roster items and a vCard each; ${cpus().length} cores, load ${loadavg()[0].toFixed(1)}; ` +
  `storage ${process.env.DATABASE_URL ? "PostgreSQL" : "PGlite"}\n`);
const keys = storageArgs("keys");
run("import, SCRAM keys", ["import", withKeys], keys);
run("import again (all there)", ["import", withKeys], keys);
run("export", ["export", join(dir, "export.xml")], keys);
run("import, passwords", ["import", withPasswords], storageArgs("passwords"));
run("adduser --from", ["adduser", "--from", lines], storageArgs("lines"));

process.stdout.write(`\n| ${ACCOUNTS.toLocaleString("en")} accounts | wall s, command included | accounts/s |\n|---|---:|---:|\n`);
for (const r of rows) process.stdout.write(`| ${r.what} | ${r.s.toFixed(1)} | ${Math.round(ACCOUNTS / r.s).toLocaleString("en")} |\n`);
rmSync(dir, { recursive: true, force: true });
