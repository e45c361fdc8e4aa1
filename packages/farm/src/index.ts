export { ConfigError, configSection, readConfigFile } from "./config-file.js";
export { createLogger } from "./logger.js";
export { stopOnSignals } from "./lifecycle.js";
