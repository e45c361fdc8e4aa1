export { handshakeDigest, verifyHandshake } from "./handshake.js";
export { XmlConnection, rawText, type XmlConnectionHandlers, type XmlConnectionOptions, type CloseReason } from "./connection.js";
export { AcceptedComponent, type AcceptOptions, type AcceptedHandlers } from "./accept.js";
export { RouterLink, FARM_COMPONENT_NS, type RouterAddress, type LinkOptions, type LinkHandlers } from "./link.js";
export { Component, backoffDelay, resendWhenOneLeaves, type ComponentOptions, type BackoffOptions, type ComponentEvents } from "./pool.js";
export { componentLinkFields, routerAddressSchema, logLinkEvents } from "./config.js";
export { rendezvousPick, rendezvousScore, rendezvousSeed, type RendezvousCandidate } from "./rendezvous.js";
export { FARM_ROUTER_NS, LEAVING_NOTICE, membersElement, readMembers } from "./members.js";
export { secretSchema, secretProblem, MIN_SECRET_LENGTH, MAKE_A_SECRET } from "./secret.js";
