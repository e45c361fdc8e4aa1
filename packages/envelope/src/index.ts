export {
  ENVELOPE_NS, EnvelopeError, SESSION_TYPES, sessionEnvelope, readSession, routeEnvelope, relayEnvelope, reflectEnvelope, readRoute, readRelay, routedStanzaBytes, explicitClientStanza, startTagEnd,
  type SessionEnvelope, type SessionType, type RouteEnvelope,
} from "./envelope.js";
export {
  XDB_OPS, isXdbOp, xdbRequest, xdbResult, readXdbRequest, parseXdbParams, parseXdbResult, xdbParamsFromArgs, xdbArgsFromParams,
  type XdbOp, type XdbParams, type XdbResult, type XdbRequest, type XdbMethods,
} from "./xdb.js";
export {
  scramCredentialSchema, rosterItemSchema, accountRecordSchema, accountsImportSchema, accountsExportSchema, MAX_ACCOUNTS_PER_REQUEST,
  type AccountRecord, type AccountsExport,
} from "./xdb-accounts.js";
export {
  storeReadSchema, storeWriteSchema, storeReadResultSchema, storeWriteResultSchema, keyedQuotaSchema, archiveQuotaSchema, storeNameSchema,
  MAX_PAGE_ITEMS, MAX_PAGE_BYTES, DEFAULT_PAGE_ITEMS, DEFAULT_PAGE_BYTES, MAX_APPEND_ITEMS,
  type StoreRead, type StoreReadKind, type StoreWrite, type StoreReadResult, type StoreWriteResult, type KeyedQuota, type ArchiveQuota,
  type QuotaLimit, type ArchiveItem, type AppendedItem,
} from "./xdb-store.js";
export {
  ConfirmedSender, ConfirmedReceiver, ackEnvelope, readAck,
  type ConfirmedSenderOptions, type Receipt, type Ticket,
} from "./confirm.js";
export {
  ADMIN_OPS, ROUTER_ADDRESS, AdminFailure, adminRequest, adminResult, adminError, readAdminRequest, readAdminReply, answerAdmin, processFacts,
  processStatusSchema, sessionInfoSchema, componentConnectionSchema,
  type AdminOp, type AdminParams, type AdminResult, type AdminRequest, type AdminReply, type AdminHandlers, type ProcessStatus, type SessionInfo,
} from "./admin.js";
