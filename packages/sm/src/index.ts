export { SessionManager, type ModuleApi, type SmModule, type StanzaOutlet, type Identity } from "./sm.js";
export { smConfigSchema, type SmConfig, type SmConfigInput } from "./config.js";
export { startSm, type SmProcess, type SmProcessOptions } from "./process.js";
export { BUILTIN_MODULES, loadModules } from "./modules/index.js";
export { Session } from "./session.js";
export { SessionRegistry } from "./sessions.js";
export { RosterManager, rosterItemElement, NS_ROSTER } from "./roster-manager.js";
export type { SmEvents, OutboundEvent, InboundEvent, HostIqEvent, SessionEvent } from "./hooks.js";
