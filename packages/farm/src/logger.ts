import { pino, type Logger, type LevelWithSilent } from "pino";

/**
 * One JSON line per event, with the process name on every line; `pretty`
 * formats them for a human at a terminal instead (pino-pretty).
 *
 * SIGUSR2 switches the level to debug and back, so an operator can look
 * closer at a running process without restarting it.
 */
export function createLogger(processName: string, level: LevelWithSilent = "info", pretty = false): Logger {
  const log = pino({
    level,
    base: { process: processName, pid: process.pid },
    ...(pretty ? { transport: { target: "pino-pretty", options: { colorize: process.stdout.isTTY === true, ignore: "pid,hostname" } } } : {}),
  });
  return log;
}

/** Installs the SIGUSR2 toggle between the configured level and debug. */
export function toggleDebugOnSignal(log: Logger): void {
  const configured = log.level;
  process.on("SIGUSR2", () => {
    log.level = log.level === "debug" ? configured : "debug";
    log.warn({ level: log.level }, "log level changed (SIGUSR2)");
  });
}
