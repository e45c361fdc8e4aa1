import saslprepLib from "@mongodb-js/saslprep";
import { SaslError } from "./errors.js";

export interface SaslprepOptions {
  /**
   * RFC 3454 §7: unassigned code points are allowed in "queries" (a name or
   * password presented for comparison) but not in "stored strings" (anything
   * about to be stored, e.g. when deriving a credential). Default: false.
   */
  allowUnassigned?: boolean;
  /** What the string is, for the error message ("username", "password", ...). */
  what?: string;
}

// Lone surrogates cannot be encoded as UTF-8, so they never reach the wire
// legitimately; the library would pass them through untouched.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

// RFC 3454 table B.1 minus U+200B, which the library maps to a space
// (RFC 4013 lists it under both mappings; space wins there).
// eslint-disable-next-line no-misleading-character-class -- lone combining marks and joiners, each mapped on its own
const MAPPED_TO_NOTHING = /[\u00AD\u034F\u1806\u180B-\u180D\u200C\u200D\u2060\uFE00-\uFE0F\uFEFF]/g;

/**
 * SASLprep (RFC 4013) for usernames and passwords. Any rejection (prohibited
 * character, bidi rule, unassigned code point in a stored string, lone
 * surrogate) becomes a SaslError "malformed-request". The offending value is
 * deliberately left out of the message since it may be a password.
 */
export function saslprep(s: string, opts: SaslprepOptions = {}): string {
  const what = opts.what ?? "string";
  if (typeof s !== "string") throw new SaslError("malformed-request", `${what} is not a string`);
  if (LONE_SURROGATE.test(s)) throw new SaslError("malformed-request", `${what} contains an unpaired surrogate`);
  // The library crashes (TypeError on an undefined character) when mapping
  // leaves nothing; NFKC never turns a non-empty string into an empty one,
  // so this is the only way to end up empty.
  if (s.replace(MAPPED_TO_NOTHING, "") === "") return "";
  try {
    return saslprepLib(s, { allowUnassigned: opts.allowUnassigned === true });
  } catch (err) {
    const detail = err instanceof Error ? err.message : String(err);
    throw new SaslError("malformed-request", `${what} rejected by SASLprep: ${detail}`, { cause: err });
  }
}
