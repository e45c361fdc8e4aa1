/**
 * AWS Signature Version 4 for S3 requests (the header form), written here
 * rather than pulling in an SDK: the upload service needs five requests
 * (PUT, GET, HEAD, DELETE an object; list a prefix). Bodies are sent with
 * `UNSIGNED-PAYLOAD`, which S3 allows over TLS, so a file streams through
 * without being hashed first.
 */
import { createHash, createHmac } from "node:crypto";

export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
}

const sha256 = (s: string): string => createHash("sha256").update(s).digest("hex");
const hmac = (key: Buffer | string, s: string): Buffer => createHmac("sha256", key).update(s).digest();

/** RFC 3986 encoding as SigV4 wants it: everything but unreserved characters. */
export function uriEncode(s: string, keepSlash = false): string {
  let out = "";
  for (const ch of Buffer.from(s, "utf8")) {
    const c = String.fromCharCode(ch);
    if (/[A-Za-z0-9\-._~]/.test(c) || (keepSlash && c === "/")) out += c;
    else out += "%" + ch.toString(16).toUpperCase().padStart(2, "0");
  }
  return out;
}

/**
 * The headers to add to a request: `x-amz-date`, `x-amz-content-sha256`
 * and `authorization`. `path` is the URL path already encoded; `headers`
 * are those that will be sent (host included), lower-case names.
 */
export function signRequest(
  creds: Credentials, method: string, path: string, query: Record<string, string>, headers: Record<string, string>, now = new Date(),
): Record<string, string> {
  const amzDate = now.toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
  const day = amzDate.slice(0, 8);
  const all: Record<string, string> = { ...headers, "x-amz-date": amzDate, "x-amz-content-sha256": "UNSIGNED-PAYLOAD" };
  const names = Object.keys(all).map((k) => k.toLowerCase()).sort();
  const lower: Record<string, string> = {};
  for (const [k, v] of Object.entries(all)) lower[k.toLowerCase()] = v.trim().replace(/\s+/g, " ");
  const canonicalQuery = Object.keys(query).sort().map((k) => `${uriEncode(k)}=${uriEncode(query[k]!)}`).join("&");
  const canonical = [method, path, canonicalQuery, names.map((n) => `${n}:${lower[n]}\n`).join(""), names.join(";"), "UNSIGNED-PAYLOAD"].join("\n");
  const scope = `${day}/${creds.region}/s3/aws4_request`;
  const toSign = ["AWS4-HMAC-SHA256", amzDate, scope, sha256(canonical)].join("\n");
  const key = hmac(hmac(hmac(hmac(`AWS4${creds.secretAccessKey}`, day), creds.region), "s3"), "aws4_request");
  const signature = createHmac("sha256", key).update(toSign).digest("hex");
  return {
    "x-amz-date": amzDate,
    "x-amz-content-sha256": "UNSIGNED-PAYLOAD",
    authorization: `AWS4-HMAC-SHA256 Credential=${creds.accessKeyId}/${scope}, SignedHeaders=${names.join(";")}, Signature=${signature}`,
  };
}
