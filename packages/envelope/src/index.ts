export {
  ENVELOPE_NS, EnvelopeError, sessionEnvelope, readSession, routeEnvelope, readRoute, routedStanzaBytes, explicitClientStanza, startTagEnd,
  type SessionEnvelope, type SessionType, type RouteEnvelope,
} from "./envelope.js";
export {
  XDB_OPS, isXdbOp, xdbRequest, xdbResult, readXdbRequest, parseXdbParams, parseXdbResult, scramCredentialSchema, rosterItemSchema,
  type XdbOp, type XdbParams, type XdbResult, type XdbRequest,
} from "./xdb.js";
