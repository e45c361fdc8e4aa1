export { startS2s, type S2sProcess, type S2sProcessOptions } from "./process.js";
export { s2sConfigSchema, domainIn, mayFederate, type S2sConfig, type S2sConfigInput } from "./config.js";
export { S2sService } from "./service.js";
export { DomainResolver, NoService, type Target, type Endpoint } from "./resolve.js";
export { dialbackKey, verifyDialbackKey, NS_DIALBACK, NS_DIALBACK_FEATURE } from "./dialback.js";
export { serverHeader } from "./negotiate.js";
