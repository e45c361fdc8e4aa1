/**
 * Machine-readable reasons a JID (or one of its parts) was rejected.
 *
 * - `not-a-string`       the value handed to the parser was not a string
 * - `empty-localpart`    an '@' was present but nothing came before it
 * - `localpart-too-long` the localpart is longer than 1023 UTF-8 bytes after normalisation
 * - `empty-domain`       no domainpart (e.g. "juliet@", "/foo", ".")
 * - `domain-too-long`    the domainpart is longer than 1023 UTF-8 bytes
 * - `bad-domain`         the domainpart is not a valid IDNA2008 domain name or IP literal
 * - `empty-resource`     a '/' was present but nothing came after it
 * - `resource-too-long`  the resourcepart is longer than 1023 UTF-8 bytes after normalisation
 * - `forbidden-char`     the localpart or resourcepart contains a code point its profile disallows
 * - `escape-edge-space`  XEP-0106: a localpart to be escaped starts or ends with a space
 */
export type JidErrorCode =
  | "not-a-string"
  | "empty-localpart"
  | "localpart-too-long"
  | "empty-domain"
  | "domain-too-long"
  | "bad-domain"
  | "empty-resource"
  | "resource-too-long"
  | "forbidden-char"
  | "escape-edge-space";

/** Which part of the address an error is about (absent when it concerns the whole string). */
export type JidPart = "localpart" | "domainpart" | "resourcepart";

const MAX_QUOTED = 200;

/** JSON-quote a value for an error message, escaping control characters and cutting very long input. */
function quote(input: unknown): string {
  if (typeof input !== "string") return String(input);
  const shown = input.length > MAX_QUOTED ? input.slice(0, MAX_QUOTED) + "…" : input;
  return JSON.stringify(shown);
}

/** The error thrown for every invalid JID. `input` holds the complete offending value. */
export class JidError extends Error {
  override readonly name = "JidError";
  readonly code: JidErrorCode;
  readonly input: string;
  readonly part: JidPart | undefined;

  constructor(code: JidErrorCode, input: unknown, detail: string, part?: JidPart) {
    super(`invalid JID ${quote(input)}: ${detail}`);
    this.code = code;
    this.input = typeof input === "string" ? input : String(input);
    this.part = part;
  }
}
