#!/usr/bin/env node
// Summarises V8 .cpuprofile files (from JABBERFARM_PROFILE_DIR or --cpu-prof):
// the functions with the most self time, and the share of time spent under
// chosen subtrees. Usage: node bench/profile-top.mjs FILE.cpuprofile [N]
import { readFileSync } from "node:fs";

const [file, nArg] = process.argv.slice(2);
const N = Number(nArg ?? 25);
const prof = JSON.parse(readFileSync(file, "utf8"));
const byId = new Map(prof.nodes.map((n) => [n.id, n]));
const self = new Map();
const dt = prof.timeDeltas;
let total = 0;
for (let i = 0; i < prof.samples.length; i++) {
  const node = byId.get(prof.samples[i]);
  const t = dt[i] ?? 0;
  total += t;
  const cf = node.callFrame;
  const key = `${cf.functionName || "(anonymous)"} ${cf.url.replace(/^.*\/(packages|node_modules)\//, "$1/")}:${cf.lineNumber + 1}`;
  self.set(key, (self.get(key) ?? 0) + t);
}
const rows = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, N);
console.log(`${file}: ${(total / 1e6).toFixed(2)} s sampled`);
for (const [k, t] of rows) console.log(`${((t / total) * 100).toFixed(1).padStart(5)} %  ${k}`);
