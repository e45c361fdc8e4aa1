export { Element, xml, serialize, escapeText, escapeAttr, isXmlText, type Attrs, type Node } from "./element.js";
export { NS } from "./namespaces.js";
export {
  StreamError, errorElement, stanzaErrorReply, canBounce, stanzaErrorCondition, payloadWithin, ERROR_PAYLOAD_MAX,
  STREAM_ERROR_CONDITIONS, STANZA_ERROR_CONDITIONS, streamCondition, stanzaCondition, readError,
  type StreamErrorCondition, type StanzaErrorCondition, type StanzaErrorType, type StanzaErrorOptions,
} from "./errors.js";
export {
  StreamParser, DEFAULT_LIMITS, type ParserLimits, type StreamHeader, type StreamParserHandlers, type StreamParserOptions,
} from "./parser.js";
export { parseElement } from "./fragment.js";
export { streamHeader, streamFooter, type StreamHeaderOptions } from "./stream.js";
export { StanzaSplitter, unescapeXml, incompleteUtf8Tail, type SplitterHandlers, type SplitterOptions } from "./splitter.js";
export { canonicalElement } from "./canonical.js";
export { parseTrusted } from "./trusted.js";
