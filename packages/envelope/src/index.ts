export {
  ENVELOPE_NS, EnvelopeError, sessionEnvelope, readSession, routeEnvelope, relayEnvelope, readRoute, readRelay, routedStanzaBytes, explicitClientStanza, startTagEnd,
  type SessionEnvelope, type SessionType, type RouteEnvelope,
} from "./envelope.js";
export {
  XDB_OPS, isXdbOp, xdbRequest, xdbResult, readXdbRequest, parseXdbParams, parseXdbResult, scramCredentialSchema, rosterItemSchema,
  type XdbOp, type XdbParams, type XdbResult, type XdbRequest,
} from "./xdb.js";
export {
  ConfirmedSender, ConfirmedReceiver, ackEnvelope, readAck,
  type ConfirmedSenderOptions, type Receipt, type Ticket,
} from "./confirm.js";
export {
  ADMIN_OPS, ROUTER_ADDRESS, AdminFailure, adminRequest, adminResult, adminError, readAdminRequest, readAdminReply, answerAdmin, processFacts,
  processStatusSchema, sessionInfoSchema, componentConnectionSchema,
  type AdminOp, type AdminParams, type AdminResult, type AdminRequest, type AdminReply, type AdminHandlers, type ProcessStatus, type SessionInfo,
} from "./admin.js";
