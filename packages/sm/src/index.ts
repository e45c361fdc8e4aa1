export { SessionManager, type RouterOutlet } from "./session-manager.js";
export type { ModuleApi, SmModule, Identity } from "./module-api.js";
export { smConfigSchema, type SmConfig, type SmConfigInput } from "./config.js";
export { startSm, type SmProcess, type SmProcessOptions } from "./process.js";
export { BUILTIN_MODULES, loadModules } from "./modules/index.js";
export { Session, type SessionValue } from "./session.js";
export { SessionRegistry } from "./session-registry.js";
export { RosterManager, rosterItemElement, NS_ROSTER } from "./roster-manager.js";
export type {
  SmEvents, OutboundEvent, EgressEvent, InboundEvent, DeliverEvent, HostIqEvent, SessionEvent, UserEvent, StanzaKind,
} from "./events.js";
