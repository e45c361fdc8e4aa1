export { ConfigError, readConfigFile, validateSection, applyEnvOverrides, ENV_PREFIX } from "./config-file.js";
export { sectionFor, TOP_LEVEL_KEYS, type Doc } from "./farm-config.js";
export { createLogger } from "./logger.js";
export { stopOnSignals } from "./lifecycle.js";
