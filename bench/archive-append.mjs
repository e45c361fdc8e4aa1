#!/usr/bin/env node
// The message archive's writes on PGlite (not a test): what one archived
// copy costs the xdb in `archive.appendMany` batches of 1, 10 and 150 items
// (the sm's ArchiveWriter sends one batch at a time, so a quiet farm writes
// batches of one and a busy one batches of a hundred and more). Items as
// mam.ts writes them: an id, a correspondent, a ~400-byte stanza, and the
// limit on each item's size as the only quota.
// Opens a fresh PGlite data directory through the xdb's own storage.
//
//   node bench/archive-append.mjs        # ITEMS=6000 USERS=200 ROUNDS=2
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openPglite } from "../packages/xdb/dist/backends/pglite.js";

const ITEMS = Number(process.env.ITEMS ?? 6000);
const USERS = Number(process.env.USERS ?? 200);
const ROUNDS = Number(process.env.ROUNDS ?? 2);
const SIZES = (process.env.SIZES ?? "1,10,150").split(",").map(Number);
const cred = { mechanism: "SCRAM-SHA-1", salt: "c2FsdA==", iterations: 4096, storedKey: "k", serverKey: "k" };
const dir = await mkdtemp(join(tmpdir(), "bench-archive-append-"));
const s = await openPglite(dir);
await s.importAccounts(Array.from({ length: USERS }, (_, i) => ({ user: `u${i}@bench.test`, credentials: [cred] })));
const body = "x".repeat(250);
const item = (n) => {
  const user = `u${n % USERS}@bench.test`;
  const peer = `u${(n + 1) % USERS}@bench.test`;
  return {
    user, id: randomBytes(16).toString("base64url"), with: peer,
    value: `<message xmlns='jabber:client' from='${peer}/r' to='${user}' type='chat' id='m${n}'><body>${body}</body></message>`,
  };
};

let n = 0;
async function measure(round, size) {
  const batches = Math.ceil(ITEMS / size);
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (let b = 0; b < batches; b++) {
    const r = await s.storeWrite({ kind: "archive.appendMany", store: "mam", items: Array.from({ length: size }, () => item(n++)), quota: { maxItemBytes: 65536 } });
    if (!r.ok) throw new Error(JSON.stringify(r));
  }
  const c = process.cpuUsage(c0);
  const wall = performance.now() - t0;
  const per = batches * size;
  console.log(`round ${round}: batches of ${String(size).padStart(3)}: ${(wall * 1000 / per).toFixed(0).padStart(5)} µs wall, ${((c.user + c.system) / per).toFixed(0).padStart(5)} µs CPU per item`);
}

for (let round = 1; round <= ROUNDS; round++) for (const size of SIZES) await measure(round, size);
await s.close();
await rm(dir, { recursive: true, force: true });
