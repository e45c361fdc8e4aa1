/**
 * Upload URLs that cannot be guessed, reused elsewhere or kept (XEP-0363
 * §4, §8): the PUT URL carries what the slot allows (file id, name, size,
 * content type, owner, expiry) signed with HMAC-SHA-256 under the farm's
 * `urlSecret`, so any upload process can check a PUT without asking
 * anyone. The file id is 128 random bits; it alone names the file for GET.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";

export interface Slot {
  /** The file's id: 22 base64url characters. */
  id: string;
  name: string;
  size: number;
  /** The content type the PUT must carry ("" when the request named none). */
  type: string;
  /** The uploader's bare JID. */
  owner: string;
  /** Unix seconds after which the PUT URL no longer works. */
  expires: number;
}

export const FILE_ID = /^[A-Za-z0-9_-]{22}$/;

export function newFileId(): string {
  return randomBytes(16).toString("base64url");
}

function mac(secret: string, payload: string): Buffer {
  return createHmac("sha256", secret).update(payload).digest();
}

export function signSlot(secret: string, slot: Slot): string {
  const payload = Buffer.from(JSON.stringify([slot.id, slot.name, slot.size, slot.type, slot.owner, slot.expires])).toString("base64url");
  return `${payload}.${mac(secret, payload).toString("base64url")}`;
}

/** The slot a token grants, or a reason it grants nothing. */
export function verifySlot(secret: string, token: string, nowSeconds = Date.now() / 1000): Slot | "invalid" | "expired" {
  const dot = token.indexOf(".");
  if (dot <= 0 || token.length > 4096) return "invalid";
  const payload = token.slice(0, dot);
  const given = Buffer.from(token.slice(dot + 1), "base64url");
  const wanted = mac(secret, payload);
  if (given.length !== wanted.length || !timingSafeEqual(given, wanted)) return "invalid";
  let fields: unknown;
  try {
    fields = JSON.parse(Buffer.from(payload, "base64url").toString("utf8"));
  } catch {
    return "invalid";
  }
  if (!Array.isArray(fields) || fields.length !== 6) return "invalid";
  const [id, name, size, type, owner, expires] = fields as [string, string, number, string, string, number];
  if (expires < nowSeconds) return "expired";
  return { id, name, size, type, owner, expires };
}
