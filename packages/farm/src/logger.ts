import { pino, type Logger, type LevelWithSilent } from "pino";
import sonicBoom from "sonic-boom";

// A CommonJS module whose types declare a named class it does not export
// at run time: the default import is that class.
const SonicBoom = sonicBoom as unknown as typeof import("sonic-boom").SonicBoom;
type SonicBoom = InstanceType<typeof SonicBoom>;

/**
 * Standard output as pino's destination, written synchronously as pino's
 * own default is, with two differences. It is sonic-boom 5: the 4.x that
 * pino brings retried a failed write for ever in its exit-time flush when
 * the error was not EAGAIN, so a process whose standard output had broken
 * (its `jabberfarm up` killed) never exited on SIGTERM. And once the
 * reader is gone (EPIPE) the lines go nowhere: the process goes on serving
 * and still stops when told to (test: logger.test.ts).
 */
function stdoutDestination(): SonicBoom {
  const dest = new SonicBoom({ fd: 1, sync: true });
  dest.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code !== "EPIPE") return;
    dest.write = () => true;
    dest.flush = (cb?: (err?: Error) => unknown) => void cb?.();
    dest.flushSync = () => {};
  });
  return dest;
}

/**
 * One JSON line per event, with the process name on every line; `pretty`
 * formats them for a human at a terminal instead (pino-pretty).
 *
 * SIGUSR2 switches the level to debug and back, so an operator can look
 * closer at a running process without restarting it.
 */
export function createLogger(processName: string, level: LevelWithSilent = "info", pretty = false): Logger {
  const options = { level, base: { process: processName, pid: process.pid } };
  if (pretty) {
    return pino({ ...options, transport: { target: "pino-pretty", options: { colorize: process.stdout.isTTY === true, ignore: "pid,hostname" } } });
  }
  return pino(options, stdoutDestination());
}

/** Installs the SIGUSR2 toggle between the configured level and debug. */
export function toggleDebugOnSignal(log: Logger): void {
  const configured = log.level;
  process.on("SIGUSR2", () => {
    log.level = log.level === "debug" ? configured : "debug";
    log.warn({ level: log.level }, "log level changed (SIGUSR2)");
  });
}
