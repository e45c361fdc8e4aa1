export { startC2s, type C2sProcess, type C2sProcessOptions } from "./process.js";
export { c2sConfigSchema, type C2sConfig, type C2sConfigInput, type ListenerConfig } from "./config.js";
export { C2sServer, type C2sServerDeps, type C2sPorts } from "./server.js";
export { ClientStream, type ClientContext, type Outlet, type BoundSession, NS_SESSION, NS_REGISTER, NS_REGISTER_FEATURE } from "./client.js";
export { SaslExchange, MECHANISMS, accountFor, type Mechanism, type SaslOptions, type SaslStep } from "./auth.js";
export { TokenBucket, SlidingWindow, AuthThrottle, type AuthThrottleOptions, type SlidingWindowOptions } from "./limits.js";
export { loadTlsMaterial, type TlsMaterial, type TlsSettings } from "./tls.js";
export { REDIRECT_SLACK } from "./load-board.js";
