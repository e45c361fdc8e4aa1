import type { Logger } from "pino";

/**
 * The lifecycle every process shares: once started, SIGTERM or SIGINT runs
 * `stop` (stop accepting, finish in-flight work, close) and exits 0; a
 * second signal, or a stop that takes too long, exits 1 at once.
 */
export function stopOnSignals(log: Logger, stop: () => Promise<void>, graceMs = 10_000): void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) {
      log.warn({ signal }, "second signal; exiting now");
      process.exit(1);
    }
    stopping = true;
    log.info({ signal }, "stopping");
    const timer = setTimeout(() => {
      log.error({ graceMs }, "stop took too long; exiting");
      process.exit(1);
    }, graceMs);
    timer.unref();
    stop().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, "error while stopping");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
}
