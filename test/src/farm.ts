/**
 * The end-to-end tests' farm: `jabberfarm up` started as an admin would, as
 * a separate OS process with its own children, in a fresh data directory;
 * accounts made with `jabberfarm adduser`.
 *
 * Ports: every farm process binds port 0 and reports the port the kernel
 * gave it; `up` writes them to DATA/farm.ports.json, which `start()` reads.
 * Picking a free port in the test and handing it over (bind, close, let
 * the farm bind it) lets two test files running at once pick the same one.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";

export const ROOT = new URL("../..", import.meta.url).pathname;
export const CLI = join(ROOT, "packages/farm/dist/cli.js");
export const PG_ADMIN_URL = process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

/**
 * A free port for a server that cannot bind port 0 and report its own
 * (redis-server, PostgreSQL). Another process may bind it before the server
 * does: the server then fails to start, and its starter tries another
 * (`startOnFreePort`).
 */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** Starts a server on a free port, with another port when the first was taken meanwhile. */
export async function startOnFreePort<T>(start: (port: number) => Promise<T>, attempts = 5): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await start(await freePort());
    } catch (err) {
      if (i >= attempts) throw err;
    }
  }
}

/** What `jabberfarm up` wrote to DATA/farm.ports.json once every process served (packages/farm up-command.ts). */
export interface FarmPorts {
  routers: Array<{ id: string; host: string; port: number }>;
  c2s: Array<{ id: string; host: string; starttls?: number; directTls?: number; websocket?: number }>;
  /** The upload services' HTTPS ports. */
  upload?: Array<{ id: string; port: number }>;
  /** Where each s2s listens for other servers. */
  s2s?: Array<{ id: string; host: string; port: number }>;
  metrics: Record<string, number>;
}

/** A fresh Postgres database for one test file; dropped by `drop()`. */
export async function freshDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `jf_e2e_${randomBytes(5).toString("hex")}`;
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = PG_ADMIN_URL.replace(/\/[^/]*$/, `/${name}`);
  return {
    url,
    async drop() {
      const c = new pg.Client({ connectionString: PG_ADMIN_URL });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

export interface FarmOptions {
  dataDir?: string;
  databaseUrl?: string;
  registration?: boolean;
  /** Extra arguments for `jabberfarm up` (e.g. --routers 2 --sm 2 --c2s 2). */
  upArgs?: string[];
  /** Metrics and health endpoints for every process (`--metrics-port 0`); `metricsPort(id)` says where. */
  metrics?: boolean;
  /** How long `start()` waits for the banner (default 120 s: a loaded machine may need that). */
  upTimeoutMs?: number;
  /** Extra environment for `jabberfarm up`: `JABBERFARM__...` settings (docs/operations.md). */
  env?: Record<string, string>;
  /**
   * Run the group chat and upload processes `up` starts by default (the
   * upload service on a free port, `uploadPort`). Off unless asked: the
   * other test files keep the four processes they were written for.
   */
  services?: boolean;
  /**
   * Run this many s2s (federation) processes, on free ports (`s2sPorts`).
   * Off unless asked (`--s2s 0`): the other test files need no federation
   * and start faster without it.
   */
  s2s?: number;
}

/** Polls `check` until it returns a value other than undefined/false, or throws after `ms` naming `what`. */
export async function waitUntil<T>(what: string, ms: number, check: () => T | undefined | false | Promise<T | undefined | false>, everyMs = 50): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export class Farm {
  readonly dataDir: string;
  /** The ports of this run, from farm.ports.json (the first router's, the first c2s's). */
  ports: { c2s: number; tls: number; router: number; websocket: number } = { c2s: 0, tls: 0, router: 0, websocket: 0 };
  /** Every port of this run, as `up` reported them. */
  farmPorts: FarmPorts | undefined;

  /** The WebSocket (and host-meta) port of c2s `i` (0-based), given by the OS. */
  websocketPort(i = 0): number {
    const p = this.farmPorts?.c2s[i]?.websocket;
    if (p === undefined) throw new Error(`no WebSocket port for c2s ${i + 1}`);
    return p;
  }

  /** The (first) upload service's HTTPS port, with `services`. */
  get uploadPort(): number {
    return this.farmPorts?.upload?.[0]?.port ?? 0;
  }
  /** Every JSON log line the farm and its children printed. */
  readonly logs: Array<Record<string, unknown>> = [];
  stderr = "";
  private proc: ChildProcess | undefined;
  private exited: Promise<number | null> | undefined;

  private constructor(readonly options: FarmOptions) {
    this.dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), "jf-e2e-"));
  }

  static async start(options: FarmOptions = {}): Promise<Farm> {
    const farm = new Farm(options);
    await farm.up(options.upTimeoutMs);
    return farm;
  }

  /** `jabberfarm up` started, not waited for: for tests of what happens while it starts. */
  static launch(options: FarmOptions = {}): Farm {
    const farm = new Farm(options);
    farm.spawnUp();
    return farm;
  }

  /** What admin commands need to find this farm (they read the config `up` wrote there). */
  private args(): string[] {
    const a = ["--data", this.dataDir];
    if (this.options.databaseUrl) a.push("--database-url", this.options.databaseUrl);
    return a;
  }

  private upArgs(): string[] {
    const a = [...this.args(), "--port", "0", "--tls-port", "0", "--ws-port", "0", "--router-port", "0"];
    if (this.options.registration) a.push("--registration");
    if (this.options.metrics) a.push("--metrics-port", "0");
    a.push(...(this.options.services ? ["--upload-port", "0"] : ["--muc", "0", "--upload", "0"]));
    a.push(...(this.options.s2s ? ["--s2s", String(this.options.s2s), "--s2s-port", "0"] : ["--s2s", "0"]));
    return [...a, ...(this.options.upArgs ?? [])];
  }

  /** The metrics and health port of child `id` ("router", "c2s-2"...); needs `metrics: true`. */
  metricsPort(id: string): number {
    const p = this.farmPorts?.metrics[id];
    if (p === undefined) throw new Error(`no metrics port for ${id} (start the farm with metrics: true)`);
    return p;
  }

  private readPorts(): void {
    const p = JSON.parse(readFileSync(join(this.dataDir, "farm.ports.json"), "utf8")) as FarmPorts;
    this.farmPorts = p;
    this.ports = { c2s: p.c2s[0]?.starttls ?? 0, tls: p.c2s[0]?.directTls ?? 0, router: p.routers[0]?.port ?? 0, websocket: p.c2s[0]?.websocket ?? 0 };
  }

  private spawnUp(): ChildProcess {
    this.stderr = "";
    const proc = spawn(process.execPath, [CLI, "up", ...this.upArgs()], {
      stdio: ["ignore", "pipe", "pipe"],
      env: {
        ...process.env, DATABASE_URL: "",
        // @xmpp/client enables stream management, so a client that vanishes is
        // held for resumption (docs/stream-management.md): 2 s here, not 5 min,
        // so that its contacts see it go within the tests' patience.
        JABBERFARM__SM__STREAM_MANAGEMENT__RESUME_TIMEOUT_SECONDS: "2",
        ...this.options.env,
      },
    });
    this.proc = proc;
    this.exited = new Promise((resolve) => proc.once("exit", (code) => resolve(code)));
    let buf = "";
    proc.stdout!.setEncoding("utf8").on("data", (d: string) => {
      buf += d;
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          this.logs.push(JSON.parse(line) as Record<string, unknown>);
        } catch {
          // not a log line
        }
      }
    });
    proc.stderr!.setEncoding("utf8").on("data", (d: string) => (this.stderr += d));
    return proc;
  }

  /** Starts (or starts again) the farm, on new ports; resolves when it says clients may connect. */
  async up(timeoutMs = 120_000): Promise<void> {
    const proc = this.spawnUp();
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        // Stop what did start: a farm left running would keep the test file from ever ending.
        proc.kill("SIGTERM");
        const seen = this.logs.filter((l) => l.msg === "child started" || /serving|listening/.test(String(l.msg)))
          .map((l) => `${String(l.process)}${l.child ? `/${String(l.child)}` : ""}: ${String(l.msg)}`);
        reject(new Error(`farm not up within ${timeoutMs} ms:\n${this.stderr}\nseen:\n${seen.join("\n")}`));
      }, timeoutMs);
      proc.stderr!.on("data", () => {
        if (this.stderr.includes("jabberfarm is up")) {
          clearTimeout(timer);
          resolve();
        }
      });
      proc.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`farm exited with ${code} before it was up:\n${this.stderr}`));
      });
    });
    this.readPorts();
  }

  /** SIGTERM, as Ctrl-C would; resolves with the exit code. */
  async stop(): Promise<number | null> {
    if (!this.proc || this.proc.exitCode !== null) return this.proc?.exitCode ?? null;
    this.proc.kill("SIGTERM");
    return this.exited!;
  }

  /** The pid of a child by its supervisor id ("router-1", "sm-2"...), from the supervisor's log. */
  childPidById(id: string): number | undefined {
    for (let i = this.logs.length - 1; i >= 0; i--) {
      const l = this.logs[i]!;
      if (l.msg === "child started" && l.child === id && typeof l.childPid === "number") return l.childPid;
    }
    return undefined;
  }

  /**
   * Waits until the supervisor has started child `id` again with a pid other
   * than `oldPid` (after it died or was stopped); resolves with the new pid.
   */
  async restarted(id: string, oldPid: number, ms = 20_000): Promise<number> {
    return waitUntil(`${id} restarted by the supervisor`, ms, () => {
      const pid = this.childPidById(id);
      return pid !== undefined && pid !== oldPid ? pid : undefined;
    });
  }

  /** Waits for a log line matching `pred` among those logged from index `from` on; resolves with it. */
  async waitLog(what: string, pred: (l: Record<string, unknown>) => boolean, ms: number, from = 0): Promise<Record<string, unknown>> {
    return waitUntil(`log line: ${what}`, ms, () => {
      for (let i = from; i < this.logs.length; i++) if (pred(this.logs[i]!)) return this.logs[i];
      return undefined;
    });
  }

  /** The pids of the farm's children, from their log lines. */
  childPid(name: string): number | undefined {
    for (let i = this.logs.length - 1; i >= 0; i--) {
      const l = this.logs[i]!;
      if (l.process === name && typeof l.pid === "number") return l.pid;
    }
    return undefined;
  }

  /** Runs a `jabberfarm` admin or operator command against this farm's data directory. */
  async admin(args: string[], stdin = ""): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const proc = spawn(process.execPath, [CLI, ...args, ...this.args()], { stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    proc.stdout!.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    proc.stderr!.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    proc.stdin!.end(stdin);
    const code = await new Promise<number | null>((resolve) => proc.once("close", resolve));
    return { code, stdout, stderr };
  }

  async addUser(user: string, password: string): Promise<void> {
    const r = await this.admin(["adduser", user], password + "\n");
    if (r.code !== 0) throw new Error(`adduser ${user} failed (${r.code}): ${r.stderr}`);
  }
}
