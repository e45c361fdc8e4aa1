#!/usr/bin/env node
/**
 * `jabberfarm`: one binary for every farm process and admin task.
 *   jabberfarm router --config FILE [--log-level LEVEL]
 */
import { parseArgs } from "node:util";
import { Router, routerConfigSchema } from "@jabberfarm/router";
import { ConfigError, configSection, readConfigFile } from "./config-file.js";
import { createLogger } from "./logger.js";
import { stopOnSignals } from "./lifecycle.js";

const USAGE = `usage: jabberfarm <command> [options]

commands:
  router --config FILE    run a router (section 'router' of FILE)

options:
  --config FILE           farm config file (YAML or JSON)
  --log-level LEVEL       trace, debug, info (default), warn, error, silent
`;

const LEVELS = ["trace", "debug", "info", "warn", "error", "fatal", "silent"] as const;
type Level = (typeof LEVELS)[number];

async function runRouter(configPath: string, level: Level): Promise<void> {
  const config = configSection(readConfigFile(configPath), "router", routerConfigSchema);
  const log = createLogger("router", level);
  const router = new Router(config, { logger: log });
  await router.start();
  stopOnSignals(log, () => router.stop());
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === "help" || command === "--help" || command === "-h") {
    process.stdout.write(USAGE);
    return command === undefined ? 2 : 0;
  }
  const { values } = parseArgs({
    args: rest,
    options: {
      config: { type: "string", short: "c" },
      "log-level": { type: "string", default: "info" },
    },
    strict: true,
  });
  const level = values["log-level"] as Level;
  if (!LEVELS.includes(level)) {
    process.stderr.write(`--log-level: got "${level}"; expected one of ${LEVELS.join(", ")}\n`);
    return 2;
  }
  switch (command) {
    case "router":
      if (!values.config) {
        process.stderr.write("jabberfarm router: --config FILE is required\n");
        return 2;
      }
      await runRouter(values.config, level);
      return -1; // keeps running until a signal
    default:
      process.stderr.write(`jabberfarm: unknown command '${command}'\n\n${USAGE}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof ConfigError) {
      process.stderr.write(`config error:\n  ${err.problems.join("\n  ")}\n`);
    } else if (err instanceof Error && (err as NodeJS.ErrnoException).code?.startsWith("ERR_PARSE_ARGS")) {
      process.stderr.write(`${err.message}\n\n${USAGE}`);
      process.exitCode = 2;
      return;
    } else {
      process.stderr.write(`jabberfarm: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    }
    process.exitCode = 1;
  },
);
