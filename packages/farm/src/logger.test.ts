/**
 * A process whose standard output's reader is gone (its `jabberfarm up`
 * was killed) must still stop on SIGTERM. With pino's own destination
 * (sonic-boom 4) the exit-time flush retried the failed write for ever.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

test("a process whose log reader went away still stops on SIGTERM", { timeout: 20_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), "jf-logger-"));
  try {
    const script = join(dir, "child.mjs");
    writeFileSync(script, [
      `import { createLogger } from ${JSON.stringify(new URL("./logger.js", import.meta.url).href)};`,
      `import { stopOnSignals } from ${JSON.stringify(new URL("./lifecycle.js", import.meta.url).href)};`,
      "const log = createLogger('test');",
      "stopOnSignals(log, async () => { log.info('stopped'); }, 2000);",
      "log.info('ready');",
      "setInterval(() => {}, 1000);",
    ].join("\n"));
    const child = spawn(process.execPath, [script], { stdio: ["ignore", "pipe", "inherit"] });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
    await new Promise((resolve) => child.stdout.once("data", resolve));
    // The reader goes away; the next line the child writes fails with EPIPE.
    child.stdout.destroy();
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 8000);
    const { code, signal } = await exited;
    clearTimeout(timer);
    assert.deepEqual({ code, signal }, { code: 0, signal: null }, "stopped by itself, not killed after 8 s");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
