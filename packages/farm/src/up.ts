/**
 * `jabberfarm up`: the whole farm on one machine, each process a child of
 * this one (router, xdb, sm, c2s), restarted when it dies, stopped in order
 * on Ctrl-C or SIGTERM (c2s first so clients leave before their sessions'
 * owners, the router last so the others can say goodbye through it).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import type { Logger } from "pino";

export type FarmProcess = "router" | "xdb" | "sm" | "c2s" | "muc" | "upload" | "s2s";
export const START_ORDER: readonly FarmProcess[] = ["router", "xdb", "sm", "c2s", "muc", "upload", "s2s"];

/**
 * The ports a child bound, in its "ready" message over the IPC channel: a
 * port 0 in its config is a free port the kernel picked, and only the child
 * knows which.
 */
export interface ChildReport {
  /** The router's component port. */
  router?: number;
  starttls?: number;
  directTls?: number;
  /** The c2s's WebSocket and host-meta port. */
  websocket?: number;
  /** Its metrics and health endpoints. */
  metrics?: number;
  /** The upload service's HTTPS port. */
  upload?: number;
  /** Where the s2s listens for other servers. */
  s2s?: number;
}

/** One child to run: its process kind, its name in logs, and what its environment overrides (docs/operations.md). */
export interface ChildSpec {
  kind: FarmProcess;
  id: string;
  env?: Record<string, string>;
  /** Children (by id) that must have reported ready before this one starts, e.g. the routers, whose ports it needs. */
  after?: string[];
  /** More environment from the reports of the `after` children, e.g. the first c2s's ports for the others. */
  envFrom?: (reports: ReadonlyMap<string, ChildReport>) => Record<string, string>;
}

interface Child extends ChildSpec {
  proc: ChildProcess | undefined;
  restarts: number;
  startedAt: number;
  timer: NodeJS.Timeout | undefined;
  /** Its first report's ports, so that a restarted child binds the same ones: the others and the clients know them. */
  pinned: Record<string, string>;
}

/** The environment that makes a child of `kind` bind the ports it reported. */
export function pinnedPorts(kind: FarmProcess, r: ChildReport): Record<string, string> {
  const env: Record<string, string> = {};
  const K = kind.toUpperCase();
  if (r.router !== undefined) env.JABBERFARM__ROUTER__PORT = String(r.router);
  if (r.starttls !== undefined) env.JABBERFARM__C2S__LISTENERS__STARTTLS__PORT = String(r.starttls);
  if (r.directTls !== undefined) env.JABBERFARM__C2S__LISTENERS__DIRECT_TLS__PORT = String(r.directTls);
  if (r.websocket !== undefined) env.JABBERFARM__C2S__LISTENERS__WEBSOCKET__PORT = String(r.websocket);
  if (r.metrics !== undefined) env[`JABBERFARM__${K}__METRICS__PORT`] = String(r.metrics);
  if (r.upload !== undefined) env.JABBERFARM__UPLOAD__HTTP__PORT = String(r.upload);
  if (r.s2s !== undefined) env.JABBERFARM__S2S__LISTEN__PORT = String(r.s2s);
  return env;
}

export interface SupervisorOptions {
  cliPath: string;
  configPath: string;
  logLevel: string;
  /** Children log for humans (pino-pretty) instead of JSON lines. */
  pretty?: boolean;
  log: Logger;
  /** Called once, when every child has reported that it serves (over the IPC channel), with every child's report. */
  onReady?: (reports: ReadonlyMap<string, ChildReport>) => void;
  /**
   * Called at a child's first report, before the children that wait for it
   * start (the embedded farm writes the routers' ports into the config they read).
   */
  onChildReady?: (id: string, report: ChildReport) => void;
  /** Extra environment for the children. */
  env?: NodeJS.ProcessEnv;
  /** The children in start order (default: one of each kind). */
  children?: ChildSpec[];
}

const STOP_TIMEOUT_MS = 10_000;

export class Supervisor {
  private readonly children: Child[];
  private stopping = false;
  private ready = false;
  /** The first report of each child that has sent one. */
  private readonly reports = new Map<string, ChildReport>();
  private readonly started = new Set<string>();

  constructor(private readonly o: SupervisorOptions) {
    const specs = o.children ?? START_ORDER.map((kind) => ({ kind, id: kind }));
    this.children = specs.map((s) => ({ ...s, proc: undefined, restarts: 0, startedAt: 0, timer: undefined, pinned: {} }));
  }

  /** Starts every child whose `after` children have reported; the others follow as they do. */
  start(): void {
    for (const c of this.children) {
      if (this.started.has(c.id) || !(c.after ?? []).every((id) => this.reports.has(id))) continue;
      this.started.add(c.id);
      this.spawn(c);
    }
  }

  pids(): Record<string, number | undefined> {
    return Object.fromEntries(this.children.map((c) => [c.id, c.proc?.pid]));
  }

  private spawn(c: Child): void {
    if (this.stopping) return;
    // JABBERFARM_PROFILE_DIR: each child writes a V8 CPU profile there when it exits (docs/performance.md).
    const profile = process.env.JABBERFARM_PROFILE_DIR ? ["--cpu-prof", `--cpu-prof-dir=${process.env.JABBERFARM_PROFILE_DIR}`] : [];
    const proc = spawn(process.execPath, [...profile, this.o.cliPath, c.kind, "--config", this.o.configPath, "--log-level", this.o.logLevel, ...(this.o.pretty ? ["--pretty"] : [])], {
      // The IPC channel carries one message per start: { type: "ready" } once the child serves.
      stdio: ["ignore", "pipe", "inherit", "ipc"],
      env: { ...process.env, ...this.o.env, ...c.env, ...c.envFrom?.(this.reports), ...c.pinned },
    });
    c.proc = proc;
    c.startedAt = Date.now();
    this.o.log.info({ child: c.id, childPid: proc.pid }, "child started");
    // Children log JSON lines; pass them through whole lines, never interleaved halves.
    createInterface({ input: proc.stdout! }).on("line", (line) => process.stdout.write(line + "\n"));
    proc.on("message", (m: unknown) => {
      const msg = m as ({ type?: string } & ChildReport) | null;
      if (msg?.type !== "ready") return;
      if (!this.reports.has(c.id)) {
        const report: ChildReport = { router: msg.router, starttls: msg.starttls, directTls: msg.directTls, websocket: msg.websocket, metrics: msg.metrics, upload: msg.upload, s2s: msg.s2s };
        this.reports.set(c.id, report);
        c.pinned = pinnedPorts(c.kind, report);
        this.o.onChildReady?.(c.id, report);
        this.start();
      }
      if (!this.ready && this.reports.size === this.children.length) {
        this.ready = true;
        this.o.onReady?.(this.reports);
      }
    });
    proc.on("exit", (code, signal) => {
      if (c.proc !== proc) return;
      c.proc = undefined;
      if (this.stopping) return;
      // A process that ran a while before dying starts again at once; one that keeps dying backs off.
      if (Date.now() - c.startedAt > 30_000) c.restarts = 0;
      const delay = Math.min(10_000, 250 * 2 ** c.restarts++);
      this.o.log.warn({ child: c.id, code, signal, restartInMs: delay, restarts: c.restarts }, "child exited; restarting");
      c.timer = setTimeout(() => this.spawn(c), delay);
    });
  }

  /** Stops every child in reverse start order; resolves when all have exited. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const c of [...this.children].reverse()) {
      clearTimeout(c.timer);
      const proc = c.proc;
      if (!proc || proc.exitCode !== null) continue;
      await new Promise<void>((resolve) => {
        const kill = setTimeout(() => {
          this.o.log.warn({ child: c.id }, "child did not stop in time; killing it");
          proc.kill("SIGKILL");
        }, STOP_TIMEOUT_MS);
        proc.once("exit", () => {
          clearTimeout(kill);
          resolve();
        });
        proc.kill("SIGTERM");
      });
    }
  }
}

/** The service processes of the embedded farm, after the c2s: `muc-1`..., `upload-1`... (none with a count of 0). */
export function serviceChildren(counts: { muc: number; upload: number }): ChildSpec[] {
  const specs: ChildSpec[] = [];
  for (const kind of ["muc", "upload"] as const) {
    for (let i = 1; i <= counts[kind]; i++) {
      specs.push({ kind, id: counts[kind] === 1 ? kind : `${kind}-${i}`, env: { [`JABBERFARM__${kind.toUpperCase()}__INSTANCE`]: `${kind}-${i}` } });
    }
  }
  return specs;
}
