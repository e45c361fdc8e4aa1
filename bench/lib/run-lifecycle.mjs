// What the long bench scripts (side-by-side.mjs, scale.mjs) do the same way
// around their measurements: answer --help and --report, stop what they
// started, end on Ctrl-C, SIGTERM or the overall deadline with the partial
// results written, and exit with main's code.
//
// Each script keeps a `running` object: `starting` (a server being started),
// `generator` (the generator's child process, see generator.mjs) and
// `instance` (the server up now), plus whatever else it has to undo.
import { readFileSync } from "node:fs";
import { stopGenerator } from "./generator.mjs";

/**
 * `--help`/`-h` prints `help`; `--report FILE` prints `markdown(FILE's JSON)`.
 * True when it did one of them (the script then exits 0).
 */
export function answerHelpOrReport(argv, { help, markdown }) {
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(help);
    return true;
  }
  if (argv[0] === "--report") {
    process.stdout.write(markdown(JSON.parse(readFileSync(argv[1], "utf8"))));
    return true;
  }
  return false;
}

/**
 * Stops, in this order: a server still being started (once it is up), the
 * generator, the server that is up. Errors stopping the server are logged.
 */
export async function stopGeneratorAndServer(running, log) {
  if (running.starting) {
    const inst = await running.starting.catch(() => undefined);
    if (inst) running.instance = inst;
  }
  await stopGenerator(running.generator);
  running.generator = undefined;
  const inst = running.instance;
  running.instance = undefined;
  if (inst) await inst.stop().catch((e) => log(`stop: ${e.message}`));
}

/**
 * On SIGINT, SIGTERM or after `deadlineS` seconds, once: logs why, awaits
 * `stop(why)` (stop what runs, write partial results) and exits with 130,
 * 143 or 3. `shownDeadline` is the figure the deadline message prints.
 * Returns `haltIfAborted()` (a main loop awaits it after each step: it never
 * resolves once the run is being aborted) and `disarm()` (clears the
 * deadline when the run has finished).
 */
export function abortOnSignalsAndDeadline({ deadlineS, shownDeadline = deadlineS, log, stop }) {
  let aborted = false;
  const abort = async (why, code) => {
    if (aborted) return;
    aborted = true;
    log(`${why}: stopping what runs and writing partial results`);
    await stop(why);
    process.exit(code);
  };
  process.on("SIGINT", () => void abort("interrupted (SIGINT)", 130));
  process.on("SIGTERM", () => void abort("terminated (SIGTERM)", 143));
  const hard = setTimeout(() => void abort(`overall deadline of ${shownDeadline} s reached`, 3), deadlineS * 1000);
  hard.unref();
  return {
    haltIfAborted: async () => {
      if (aborted) await new Promise(() => {});
    },
    disarm: () => clearTimeout(hard),
  };
}

/** Runs `main` and exits with the code it returns; when it throws: logs the stack, `cleanup()`, exit 1. */
export function exitWhenDone(main, { log, cleanup }) {
  main().then((code) => process.exit(code), async (err) => {
    log(`failed: ${err.stack ?? err}`);
    await cleanup();
    process.exit(1);
  });
}
