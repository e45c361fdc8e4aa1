#!/usr/bin/env node
// Runs every compiled test file of the workspace with node's own test runner.
// Node 20's runner takes no recursive globs, so the files are listed here.
// Extra arguments go to `node --test` (e.g. --test-name-pattern=router).
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";

const root = new URL("..", import.meta.url).pathname;

function testsUnder(dir, out) {
  let entries;
  try {
    entries = readdirSync(dir);
  } catch {
    return out;
  }
  for (const name of entries) {
    if (name === "node_modules") continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) testsUnder(p, out);
    else if (name.endsWith(".test.js")) out.push(p);
  }
  return out;
}

const files = [];
for (const pkg of readdirSync(join(root, "packages"))) testsUnder(join(root, "packages", pkg, "dist"), files);
testsUnder(join(root, "test", "dist"), files);
files.sort();
if (files.length === 0) {
  console.error("no test files found: did the build run?");
  process.exit(1);
}
const args = ["--test", "--test-concurrency=3", ...process.argv.slice(2), ...files];
const r = spawnSync(process.execPath, args, { stdio: "inherit", cwd: root });
process.exit(r.status ?? 1);
