// CPU and memory of the server under test (from /proc, by PID), of this
// generator (process.cpuUsage) and of the whole box (/proc/stat), over a
// measured interval. Every CPU figure is a percentage of ONE core.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { cpus } from "node:os";
import { performance } from "node:perf_hooks";

let clkTck = 100;
try {
  clkTck = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
} catch { /* Linux default */ }
export const CORES = cpus().length;

const round = (x, d = 1) => (Number.isFinite(x) ? Math.round(x * 10 ** d) / 10 ** d : null);

/**
 * Parses "--pids" text: "123,456" or "c2s:123,sm:456" (also spaces). Names
 * default to the process's comm (node children are named by their role
 * argument when it follows a script path, e.g. "node cli.js c2s ..." -> "c2s").
 * @returns {{name: string, pid: number}[]}
 */
export function parsePids(text) {
  if (!text) return [];
  return String(text).split(/[\s,]+/).filter(Boolean).map((item) => {
    const m = /^(?:(.+)[:=])?(\d+)$/.exec(item);
    if (!m) throw new Error(`--pids: "${item}" is not PID or NAME:PID`);
    const pid = Number(m[2]);
    return { name: m[1] ?? processName(pid), pid };
  });
}

export function processName(pid) {
  let comm = `pid${pid}`;
  try {
    const st = readFileSync(`/proc/${pid}/stat`, "utf8");
    comm = st.slice(st.indexOf("(") + 1, st.lastIndexOf(")"));
    if (comm === "node" || comm.startsWith("node")) {
      const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
      const script = argv.findIndex((a, i) => i > 0 && /\.(c|m)?js$/.test(a));
      const role = script > 0 ? argv[script + 1] : undefined;
      if (role && /^[a-z][\w-]*$/.test(role)) return role;
    }
  } catch { /* gone */ }
  return comm;
}

/** utime+stime ticks and VmRSS (kB) of one process; null if it is gone. */
export function readProc(pid) {
  try {
    const st = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = st.slice(st.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(f[11]) + Number(f[12]);
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const m = /VmRSS:\s+(\d+) kB/.exec(status);
    return { ticks, rssKb: m ? Number(m[1]) : 0 };
  } catch {
    return null;
  }
}

/** Summed and per-process RSS of the server processes, in kB. */
export function rssSnapshot(procs) {
  const by = {};
  let total = 0;
  const gone = [];
  for (const { name, pid } of procs) {
    const r = readProc(pid);
    if (r === null) {
      gone.push(`${name}:${pid}`);
      continue;
    }
    by[`${name}:${pid}`] = r.rssKb;
    total += r.rssKb;
  }
  return { total_kb: total, by_process_kb: by, ...(gone.length ? { gone } : {}) };
}

function boxTicks() {
  const l = readFileSync("/proc/stat", "utf8").slice(0, 200).split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
  const idle = l[3] + (l[4] || 0);
  const total = l.slice(0, 8).reduce((a, b) => a + b, 0);
  return { idle, total };
}

export class CpuMeter {
  constructor(procs) {
    this.procs = procs;
  }

  start() {
    this.t0 = performance.now();
    this.g0 = process.cpuUsage();
    this.b0 = boxTicks();
    this.p0 = new Map(this.procs.map(({ pid }) => [pid, readProc(pid)]));
    return this;
  }

  /** Figures for the interval since start(). */
  stop() {
    const wall = (performance.now() - this.t0) / 1000;
    const g = process.cpuUsage(this.g0);
    const b1 = boxTicks();
    const by = {};
    let server = 0;
    const gone = [];
    for (const { name, pid } of this.procs) {
      const a = this.p0.get(pid);
      const z = readProc(pid);
      if (a === null || z === null) {
        gone.push(`${name}:${pid}`);
        continue;
      }
      const s = (z.ticks - a.ticks) / clkTck;
      server += s;
      by[`${name}:${pid}`] = round((s / wall) * 100);
    }
    const gen = (g.user + g.system) / 1e6;
    const dt = b1.total - this.b0.total;
    const busyShare = dt > 0 ? 1 - (b1.idle - this.b0.idle) / dt : 0;
    const boxPctOneCore = busyShare * CORES * 100;
    return {
      wall_s: round(wall, 2),
      generator_cpu_pct: round((gen / wall) * 100),
      server_cpu_pct: this.procs.length ? round((server / wall) * 100) : null,
      server_cpu_pct_by_process: by,
      box_busy_pct_all_cores: round(busyShare * 100),
      // What the box did besides generator and server (other processes on a shared machine), % of one core.
      other_cpu_pct: this.procs.length ? round(boxPctOneCore - ((gen + server) / wall) * 100) : null,
      ...(gone.length ? { processes_gone: gone } : {}),
    };
  }
}
