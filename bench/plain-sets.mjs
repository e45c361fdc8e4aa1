#!/usr/bin/env node
// Plain key-value sets on PGlite (not a test): what a set costs the xdb
// one at a time, and what SETS sets issued at once cost (the last-activity
// writes when a c2s dies and its SM ends every session), with the sets of
// one turn written together (packages/xdb plain-sets.ts) and without.
// Opens a fresh PGlite data directory through the xdb's own storage.
//
//   node bench/plain-sets.mjs            # SETS=3000 ROUNDS=2
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openPglite } from "../packages/xdb/dist/backends/pglite.js";

const SETS = Number(process.env.SETS ?? 3000);
const ROUNDS = Number(process.env.ROUNDS ?? 2);
const cred = { mechanism: "SCRAM-SHA-1", salt: "c2FsdA==", iterations: 4096, storedKey: "k", serverKey: "k" };
const dir = await mkdtemp(join(tmpdir(), "bench-plain-sets-"));
const s = await openPglite(dir);
for (let k = 0; k < SETS; k += 1000) {
  await s.importAccounts(Array.from({ length: Math.min(1000, SETS - k) }, (_, i) => ({ user: `u${k + i}@bench.test`, credentials: [cred] })));
}
const batcher = s.plainSets;
const set = (i) => s.storeWrite({ kind: "kv.set", user: `u${i}@bench.test`, store: "last", entries: [{ key: "logout", value: String(Date.now()) }] });

async function measure(label, batched, run) {
  s.plainSets = batched ? batcher : undefined;
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await run();
  const c = process.cpuUsage(c0);
  const wall = performance.now() - t0;
  console.log(`${label.padEnd(44)} ${batched ? "together" : "one each"}: ${(wall * 1000 / SETS).toFixed(0).padStart(5)} µs wall, ${((c.user + c.system) / SETS).toFixed(0).padStart(5)} µs CPU per set (${Math.round(wall)} ms in all)`);
}

for (let round = 1; round <= ROUNDS; round++) {
  for (const batched of [true, false]) {
    await measure(`round ${round}: ${SETS} sets one after another`, batched, async () => {
      for (let i = 0; i < SETS; i++) await set(i);
    });
    await measure(`round ${round}: ${SETS} sets issued at once`, batched, () => Promise.all(Array.from({ length: SETS }, (_, i) => set(i))));
  }
}
await s.close();
await rm(dir, { recursive: true, force: true });
