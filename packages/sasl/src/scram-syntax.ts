// Pieces of the RFC 5802 §7 grammar shared by the server and the test client.
import { SaslError } from "./errors.js";

/** c-nonce / s-nonce: printable ASCII except ','. */
const NONCE = /^[\x21-\x2b\x2d-\x7e]+$/;
/** saslname: '=' may only appear as =2C or =3D (ABNF literals are case-insensitive). */
const SASLNAME = /^(?:[^=,\0]|=2[Cc]|=3[Dd])+$/;
/** attr-val of an extension: one letter, '=', a non-empty value without ',' or NUL. */
const EXTENSION = /^[A-Za-z]=[^,\0]+$/;

export function malformed(message: string): SaslError {
  return new SaslError("malformed-request", message);
}

export function isNonce(s: string): boolean {
  return NONCE.test(s);
}

export function decodeSaslname(raw: string, what: string): string {
  if (!SASLNAME.test(raw)) throw malformed(`${what} is empty or has a bad '=' escape`);
  return raw.replace(/=2C|=3D/gi, (esc) => (esc[1] === "2" ? "," : "="));
}

export function encodeSaslname(s: string): string {
  // '=' first, or the '=' of a freshly made =2C would be escaped again.
  return s.replace(/=/g, "=3D").replace(/,/g, "=2C");
}

/** The value of `part` if it is the attribute `name`, else a malformed-request. */
export function attribute(part: string | undefined, name: string, where: string): string {
  if (part === undefined || !part.startsWith(`${name}=`)) throw malformed(`${where}: expected '${name}=' attribute`);
  return part.slice(name.length + 1);
}

/**
 * Optional extensions are ignored, as RFC 5802 allows, but 'm=' is the
 * reserved "mandatory extension" that §5.1 says must make authentication fail
 * when it is not understood -- and we understand none.
 */
export function rejectMandatoryExtension(parts: readonly string[], where: string): void {
  if (parts.some((p) => p.startsWith("m="))) throw malformed(`${where}: mandatory extension 'm=' is not supported`);
}

export function checkExtensions(parts: readonly string[], where: string): void {
  rejectMandatoryExtension(parts, where);
  for (const p of parts) if (!EXTENSION.test(p)) throw malformed(`${where}: malformed attribute`);
}
