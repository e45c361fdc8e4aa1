export { Metrics, KindCounter, type MetricsOptions } from "./metrics.js";
export type { Counter, Gauge, Histogram, Registry } from "prom-client";
export {
  STANZA_KINDS, MESSAGE, PRESENCE, IQ, ENVELOPE, OTHER,
  kindOf, kindOfName, kindOfText, kindOfBytes, type StanzaKind, type KindIndex,
} from "./kinds.js";
export { startHealthServer, type HealthServer, type HealthServerOptions } from "./health.js";
export { watchRouterLinks, linkCloseLabel, cachedProbe, countedSend, type RouterLinkSource, type LinkCloseReason, type ProbeOptions } from "./links.js";
export { metricsEndpointSchema, type MetricsEndpoint } from "./config.js";
