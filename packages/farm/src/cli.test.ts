import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const CLI = new URL("./cli.js", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "jf-cli-"));

function run(args: string[], opts: { untilLine?: RegExp; signal?: NodeJS.Signals } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`timed out; stdout=${stdout} stderr=${stderr}`));
    }, 10_000);
    child.stdout.on("data", (d: Buffer) => {
      stdout += d;
      if (opts.untilLine?.test(stdout) && opts.signal) {
        opts.untilLine = undefined;
        child.kill(opts.signal);
      }
    });
    child.stderr.on("data", (d: Buffer) => (stderr += d));
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function configFile(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

test("a bad router config exits non-zero naming the key, the value and what was expected", async () => {
  const p = configFile("bad.yaml", `router:
  port: "fifty"
  components:
    sm: { secret: short }
  colour: blue
`);
  const r = await run(["router", "--config", p]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /router\.port: got "fifty"; .*number/i);
  assert.match(r.stderr, /router\.components\.sm\.secret: got "short"; a secret of at least 8 characters/);
  assert.match(r.stderr, /router\.colour: unknown key/);
});

test("a missing file and a missing --config are reported plainly", async () => {
  const r1 = await run(["router", "--config", join(dir, "nope.yaml")]);
  assert.equal(r1.code, 1);
  assert.match(r1.stderr, /cannot read config file/);
  const r2 = await run(["router"]);
  assert.equal(r2.code, 2);
  assert.match(r2.stderr, /--config FILE is required/);
  const r3 = await run(["frobnicate"]);
  assert.equal(r3.code, 2);
  assert.match(r3.stderr, /unknown command 'frobnicate'/);
});

test("the router starts, logs pino JSON lines, and exits 0 on SIGTERM", async () => {
  const p = configFile("good.yaml", `router:
  port: 0
  components:
    sm: { secret: a-good-secret, trusted: true }
`);
  const r = await run(["router", "--config", p], { untilLine: /router listening/, signal: "SIGTERM" });
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
  const listening = lines.find((l) => l.msg === "router listening for components");
  assert.ok(listening);
  assert.equal(listening.process, "router");
  assert.equal(listening.host, "127.0.0.1");
  assert.equal(typeof listening.port, "number");
  assert.ok(lines.some((l) => l.msg === "router stopped"));
});
