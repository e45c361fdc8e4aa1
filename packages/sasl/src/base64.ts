import { SaslError } from "./errors.js";

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Strict base64: Buffer.from(s, 'base64') silently skips junk and accepts
 * missing padding, which would let two different strings decode to the same
 * bytes. Returns null for anything that is not canonical base64.
 */
export function decodeBase64Strict(s: string): Buffer | null {
  if (!BASE64.test(s)) return null;
  const bytes = Buffer.from(s, "base64");
  // Non-zero trailing bits ("QR==" vs "QQ==") survive the regex; reject them.
  if (bytes.toString("base64") !== s) return null;
  return bytes;
}

/**
 * Decode the base64 text of an XMPP <auth/> or <response/> element. RFC 6120
 * §6.4.2 uses a lone "=" for an empty response; both "=" and "" give an empty
 * buffer here, so a caller that must tell "no initial response" (empty <auth/>)
 * from "empty initial response" (<auth>=</auth>) checks the text itself.
 * Errors are "incorrect-encoding" as §6.5.2 requires.
 */
export function decodeSaslPayload(text: string): Buffer {
  const t = text.replace(/[\t\n\r ]/g, "");
  if (t === "" || t === "=") return Buffer.alloc(0);
  const bytes = decodeBase64Strict(t);
  if (bytes === null) throw new SaslError("incorrect-encoding", "SASL payload is not valid base64");
  return bytes;
}

/** Inverse of decodeSaslPayload: empty data is sent as "=" (RFC 6120 §6.4.2). */
export function encodeSaslPayload(data: Buffer | string): string {
  const bytes = typeof data === "string" ? Buffer.from(data, "utf8") : data;
  return bytes.length === 0 ? "=" : bytes.toString("base64");
}

const UTF8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Decode mechanism data as UTF-8, refusing invalid sequences instead of inserting U+FFFD. */
export function decodeUtf8(data: Buffer | string, what: string): string {
  if (typeof data === "string") return data;
  try {
    return UTF8.decode(data);
  } catch (err) {
    throw new SaslError("malformed-request", `${what} is not valid UTF-8`, { cause: err });
  }
}
