import { decodeUtf8 } from "./base64.js";
import { SaslError } from "./errors.js";
import { saslprep } from "./saslprep.js";

export interface PlainMessage {
  /** Absent when the client left it empty. Not SASLprepped: in XMPP it is a JID. */
  authzid?: string;
  /** SASLprepped authentication identity (the username). */
  authcid: string;
  /** SASLprepped password, ready for verifyPlain(). */
  password: string;
}

/**
 * Parse a PLAIN message (RFC 4616 §2): [authzid] NUL authcid NUL passwd,
 * given as the base64-decoded bytes (or their UTF-8 text). Throws SaslError
 * "malformed-request" on a wrong number of NULs, an empty authcid or password
 * (also when SASLprep maps them to nothing), invalid UTF-8, or a string
 * SASLprep rejects.
 */
export function parsePlain(message: Buffer | string): PlainMessage {
  const text = decodeUtf8(message, "PLAIN message");
  const fields = text.split("\0");
  if (fields.length !== 3) throw new SaslError("malformed-request", "PLAIN message must have exactly two NUL separators");
  const [authzid, rawAuthcid, rawPassword] = fields as [string, string, string];
  if (rawAuthcid === "") throw new SaslError("malformed-request", "PLAIN authcid is empty");
  if (rawPassword === "") throw new SaslError("malformed-request", "PLAIN password is empty");
  // Both are compared against stored values, so they are prepared as queries.
  const authcid = saslprep(rawAuthcid, { allowUnassigned: true, what: "username" });
  const password = saslprep(rawPassword, { allowUnassigned: true, what: "password" });
  if (authcid === "") throw new SaslError("malformed-request", "PLAIN authcid is empty after SASLprep");
  if (password === "") throw new SaslError("malformed-request", "PLAIN password is empty after SASLprep");
  return authzid === "" ? { authcid, password } : { authzid, authcid, password };
}
