/**
 * Running an interop scenario written with Debian's slixmpp
 * (test/interop/*.py): the script prints "ok: <step>" for each step it got
 * through and exits 0 when all went well.
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { ROOT } from "./farm.js";

/** Debian's python3, where python3-slixmpp is installed (the one on PATH may be another). */
export const PYTHON = "/usr/bin/python3";

/** Runs `test/interop/<script>` with `args`; resolves with its exit code, everything it printed and its "ok: " steps. */
export async function runInterop(script: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number | null; out: string; steps: string[] }> {
  const proc = spawn(PYTHON, [join(ROOT, "test/interop", script), ...args], { env, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  proc.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
  proc.stderr.setEncoding("utf8").on("data", (d: string) => (out += d));
  const code = await new Promise<number | null>((resolve) => proc.once("close", resolve));
  return { code, out, steps: out.split("\n").filter((l) => l.startsWith("ok: ")) };
}
