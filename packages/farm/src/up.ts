/**
 * `jabberfarm up`: the whole farm on one machine, each process a child of
 * this one (router, xdb, sm, c2s), restarted when it dies, stopped in order
 * on Ctrl-C or SIGTERM (c2s first so clients leave before their sessions'
 * owners, the router last so the others can say goodbye through it).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import type { Logger } from "pino";

export type FarmProcess = "router" | "xdb" | "sm" | "c2s" | "muc" | "upload";
export const START_ORDER: readonly FarmProcess[] = ["router", "xdb", "sm", "c2s", "muc", "upload"];

/** One child to run: its process kind, its name in logs, and what its environment overrides (docs/operations.md). */
export interface ChildSpec {
  kind: FarmProcess;
  id: string;
  env?: Record<string, string>;
}

interface Child extends ChildSpec {
  proc: ChildProcess | undefined;
  restarts: number;
  startedAt: number;
  timer: NodeJS.Timeout | undefined;
}

export interface SupervisorOptions {
  cliPath: string;
  configPath: string;
  logLevel: string;
  /** Children log for humans (pino-pretty) instead of JSON lines. */
  pretty?: boolean;
  log: Logger;
  /** Called once, when every child has reported that it serves (over the IPC channel). */
  onReady?: () => void;
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
  private readonly serving = new Set<string>();

  constructor(private readonly o: SupervisorOptions) {
    const specs = o.children ?? START_ORDER.map((kind) => ({ kind, id: kind }));
    this.children = specs.map((s) => ({ ...s, proc: undefined, restarts: 0, startedAt: 0, timer: undefined }));
  }

  start(): void {
    for (const c of this.children) this.spawn(c);
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
      env: { ...process.env, ...this.o.env, ...c.env },
    });
    c.proc = proc;
    c.startedAt = Date.now();
    this.o.log.info({ child: c.id, childPid: proc.pid }, "child started");
    // Children log JSON lines; pass them through whole lines, never interleaved halves.
    createInterface({ input: proc.stdout! }).on("line", (line) => process.stdout.write(line + "\n"));
    proc.on("message", (m: unknown) => {
      if ((m as { type?: string } | null)?.type !== "ready") return;
      this.serving.add(c.id);
      if (!this.ready && this.serving.size === this.children.length) {
        this.ready = true;
        this.o.onReady?.();
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
