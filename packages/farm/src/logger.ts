import { pino, type Logger, type LevelWithSilent } from "pino";

/** One JSON line per event, with the process name on every line. */
export function createLogger(processName: string, level: LevelWithSilent = "info"): Logger {
  return pino({ level, base: { process: processName, pid: process.pid } });
}
