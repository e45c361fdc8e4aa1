export { Jid } from "./jid.js";
export { JidError, type JidErrorCode, type JidPart } from "./error.js";
export { escapeLocal, unescapeLocal } from "./escape.js";
export { prepLocalpart, prepDomainpart, prepResourcepart, MAX_PART_BYTES } from "./parts.js";
