export { Router, type RouterOptions } from "./router.js";
export { routerConfigSchema, type RouterConfig, type RouterConfigInput } from "./config.js";
export { RoutingTable, Route, rendezvousRule, type RoutingRule } from "./routing-table.js";
