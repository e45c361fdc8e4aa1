// The load generator (bench/load/xmppload.mjs) as the bench scripts run it:
// one child process per scenario, stopped by force if it outlives its
// deadline, and its result file turned into that scenario's entry.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "./targets.mjs";

export const XMPPLOAD = join(ROOT, "bench/load/xmppload.mjs");

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Runs `node ARGS` (ARGS starting with XMPPLOAD) with its stdout collected;
 * SIGTERM after `killAfterS` seconds, SIGKILL 10 s later. While it runs it
 * is `running.generator`, so that a cleanup can stop it. Resolves with
 * `{ code, signal, stdout }`.
 */
export function runGenerator(args, killAfterS, running) {
  return new Promise((resolve) => {
    // The generator holds one socket per session: the hard open-file limit, as for the servers.
    const g = spawn("bash", ["-c", 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@"', "gen", process.execPath, ...args], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    running.generator = g;
    let out = "";
    g.stdout.setEncoding("utf8").on("data", (d) => { out += d; });
    const t1 = setTimeout(() => g.kill("SIGTERM"), killAfterS * 1000);
    const t2 = setTimeout(() => g.kill("SIGKILL"), (killAfterS + 10) * 1000);
    g.on("exit", (code, signal) => {
      clearTimeout(t1);
      clearTimeout(t2);
      running.generator = undefined;
      resolve({ code, signal, stdout: out });
    });
  });
}

/** Stops a generator that is still running: SIGTERM (it then writes what it has), SIGKILL half a second later. */
export async function stopGenerator(g) {
  if (g && g.exitCode === null && g.signalCode === null) {
    g.kill("SIGTERM");
    await sleep(500);
    if (g.exitCode === null && g.signalCode === null) g.kill("SIGKILL");
  }
}

/**
 * The entry of `scenario` in the generator's result file `out`, or an error
 * entry when it wrote none; `exit` is what runGenerator resolved with.
 * `annotate(entry, run)`, if given, adds the caller's fields from the whole
 * result before the generator's own error is copied in.
 */
export function scenarioEntry({ out, scenario, exit, annotate }) {
  let entry;
  try {
    const run = JSON.parse(readFileSync(out, "utf8"));
    entry = run.scenarios[scenario] ?? { scenario, error: "no result for the scenario" };
    annotate?.(entry, run);
    if (run.error) entry.generator_error = run.error;
  } catch (err) {
    entry = { scenario, error: `generator wrote no result (exit ${exit.code ?? exit.signal}): ${err.message}` };
  }
  if (exit.code !== 0) entry.generator_exit = exit.code ?? exit.signal;
  return entry;
}
