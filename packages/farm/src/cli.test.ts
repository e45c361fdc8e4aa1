import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const CLI = new URL("./cli.js", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "jf-cli-"));

function run(args: string[], opts: { untilLine?: RegExp; signal?: NodeJS.Signals; env?: Record<string, string>; timeoutMs?: number } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...opts.env } });
    let stdout = "";
    let stderr = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`timed out; stdout=${stdout} stderr=${stderr}`));
    }, opts.timeoutMs ?? 10_000);
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
  assert.match(r.stderr, /router\.components\.sm\.secret: got "short"; a secret of at least 12 characters: make one with `openssl rand -hex 32`/);
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

test("a router with metrics serves /metrics, /healthz and /readyz until it stops", async () => {
  const p = configFile("metrics.yaml", `router:
  port: 0
  metrics: { port: 0 }
  components:
    sm: { secret: a-good-secret, trusted: true }
`);
  let endpoints: { health: number; ready: number; metrics: string } | undefined;
  const child = spawn(process.execPath, [CLI, "router", "--config", p], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no endpoints: ${stdout}`)), 10_000);
    child.stdout.on("data", (d: Buffer) => {
      stdout += d;
      const line = stdout.split("\n").find((l) => l.includes("metrics and health endpoints listening"));
      if (line && stdout.includes("router listening")) {
        clearTimeout(timer);
        const port = (JSON.parse(line) as { port: number }).port;
        void (async () => {
          const base = `http://127.0.0.1:${port}`;
          endpoints = {
            health: (await fetch(`${base}/healthz`)).status,
            ready: (await fetch(`${base}/readyz`)).status,
            metrics: await (await fetch(`${base}/metrics`)).text(),
          };
          resolve();
        })().catch(reject);
      }
    });
  });
  child.kill("SIGTERM");
  assert.equal(await exited, 0);
  assert.equal(endpoints?.health, 200);
  assert.equal(endpoints?.ready, 200);
  assert.match(endpoints?.metrics ?? "", /^jabberfarm_connections\{kind="component",process="router",instance="127\.0\.0\.1:0"\} 0$/m);
  assert.match(endpoints?.metrics ?? "", /^jabberfarm_stanzas_in_total\{kind="message",process="router",instance="127\.0\.0\.1:0"\} 0$/m);
});

test("metrics settings are checked like every other key", async () => {
  const p = configFile("bad-metrics.yaml", `router:
  metrics: { port: "ninety", colour: blue }
  components:
    sm: { secret: a-good-secret }
`);
  const r = await run(["router", "--config", p]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /router\.metrics\.port: got "ninety"/);
  assert.match(r.stderr, /router\.metrics\.colour: unknown key/);
  const r2 = await run(["up", "--config", p, "--metrics-port", "9100"]);
  assert.equal(r2.code, 2);
  assert.match(r2.stderr, /--metrics-port sets up the embedded farm's endpoints/);
  const r3 = await run(["up", "--metrics-port", "65534"]);
  assert.equal(r3.code, 2);
  assert.match(r3.stderr, /--metrics-port: got "65534"/);
});

/** Real secrets for the example files' components, as an operator gives them (environment, *_FILE). */
const SECRETS_ENV = {
  JABBERFARM__ROUTER__COMPONENTS__LOCALHOST__SECRET: "0123456789abcdef-sm",
  JABBERFARM__ROUTER__COMPONENTS__C2S__SECRET: "0123456789abcdef-c2s",
  JABBERFARM__ROUTER__COMPONENTS__XDB__SECRET: "0123456789abcdef-xdb",
  JABBERFARM__ROUTER__COMPONENTS__CLI__SECRET: "0123456789abcdef-cli",
  JABBERFARM__ROUTER__COMPONENTS__CONFERENCE_LOCALHOST__SECRET: "0123456789abcdef-muc",
  JABBERFARM__ROUTER__COMPONENTS__UPLOAD_LOCALHOST__SECRET: "0123456789abcdef-upload",
  JABBERFARM__UPLOAD__URL_SECRET: "0123456789abcdef-upload-urls",
  JABBERFARM__ROUTER__COMPONENTS__S2S__SECRET: "0123456789abcdef-s2s",
  JABBERFARM__S2S__DIALBACK_SECRET: "0123456789abcdef-dialback",
};

test("the example files' placeholder secrets are refused, each named with how to make a real one", async () => {
  for (const file of ["../../../farm.example.yaml", "../../../deploy/farm.docker.yaml"]) {
    const path = new URL(file, import.meta.url).pathname;
    const r = await run(["config", "check", path]);
    assert.equal(r.code, 1, r.stdout);
    for (const key of ["router.components.localhost.secret", "router.components.c2s.secret", "router.components.xdb.secret", "router.components.cli.secret", "c2s.secret", "sm.secret", "xdb.secret"]) {
      assert.match(r.stderr, new RegExp(`${key.replace(/\./g, "\\.")}: got "[^"]+"; a placeholder from the example files, not a secret: make one with \`openssl rand -hex 32\``), `${file}: ${key}`);
    }
  }
  // A process refuses to start with one, too.
  const example = new URL("../../../farm.example.yaml", import.meta.url).pathname;
  const router = await run(["router", "--config", example]);
  assert.equal(router.code, 1);
  assert.match(router.stderr, /router\.components\.c2s\.secret: got "change-me-c2s-secret"; a placeholder/);
  const empty = configFile("empty-secret.yaml", "router:\n  components:\n    c2s: { secret: \"\" }\n");
  assert.match((await run(["config", "check", empty])).stderr, /router\.components\.c2s\.secret: got ""; a secret of at least 12 characters/);
});

test("config check passes the example farm file and names every mistake with its key path", async () => {
  const example = new URL("../../../farm.example.yaml", import.meta.url).pathname;
  const ok = await run(["config", "check", example], { env: SECRETS_ENV });
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /ok \(router, xdb, sm, c2s, muc, upload, s2s\)/);
  // The file the image carries (deploy/) passes too, once the deployment gives its secrets.
  const docker = new URL("../../../deploy/farm.docker.yaml", import.meta.url).pathname;
  const dockerOk = await run(["config", "check", docker], { env: SECRETS_ENV });
  assert.equal(dockerOk.code, 0, dockerOk.stderr);
  assert.match(dockerOk.stdout, /ok \(router, xdb, sm, c2s, muc, upload, s2s\)/);
  const p = configFile("check-bad.yaml", `domain: localhost
router:
  port: 99999
  components:
    localhost: { secret: good-secret-1, trusted: true }
sm:
  offline: { limit: -1 }
c2s:
  listeners: { starttls: { port: "x" } }
colour: blue
`);
  const bad = await run(["config", "check", p]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /colour: unknown key/);
  assert.match(bad.stderr, /router\.port: got 99999/);
  assert.match(bad.stderr, /sm\.offline\.limit: got -1/);
  assert.match(bad.stderr, /c2s\.listeners\.starttls\.port: got "x"/);
  assert.match(bad.stderr, /c2s\.secret: got nothing/, "a secret the router section does not provide is reported");
  const usage = await run(["config", "frob"]);
  assert.equal(usage.code, 2);
});

test("--pretty writes human-readable lines instead of JSON", async () => {
  const p = configFile("pretty.yaml", `router:
  port: 0
  components:
    sm: { secret: a-good-secret, trusted: true }
`);
  const r = await run(["router", "--config", p, "--pretty"], { untilLine: /router listening/, signal: "SIGTERM" });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /router listening for components/);
  assert.throws(() => JSON.parse(r.stdout.trim().split("\n")[0]!), "not JSON lines");
});

test("--help and -h print the usage and exit 0 for every command, without an 'Unknown option'", async () => {
  const commands = [[], ["up"], ["router"], ["xdb"], ["sm"], ["c2s"], ["adduser", "a@localhost"], ["passwd"], ["deluser"], ["migrate"], ["status"], ["sessions"], ["kick"], ["config", "check"]];
  // A few at a time: each is a node process, and the machine is shared.
  const queue = [...commands.map((c) => [...c, "--help"]), ["up", "-h"], ["adduser", "-h"]];
  await Promise.all(Array.from({ length: 2 }, async () => {
    for (let args = queue.shift(); args !== undefined; args = queue.shift()) {
      // Generous: on a shared machine each run is a node process loading every package.
      const r = await run(args, { timeoutMs: 60_000 });
      assert.equal(r.code, 0, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stdout, /^usage: jabberfarm <command>/, args.join(" "));
      assert.doesNotMatch(r.stderr, /Unknown option/i, args.join(" "));
    }
  }));
});
