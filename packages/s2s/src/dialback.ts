/**
 * Server Dialback keys (XEP-0220 §4, the XEP-0185 recipe): HMAC-SHA-256,
 * keyed with the SHA-256 of the secret, over "Receiving Originating
 * StreamID", in lower-case hex. Every s2s of the farm has the same secret,
 * so whichever one a remote server asks verifies a key another one made.
 */
import { createHash, createHmac, timingSafeEqual } from "node:crypto";

export const NS_DIALBACK = "jabber:server:dialback";
export const NS_DIALBACK_FEATURE = "urn:xmpp:features:dialback";
/** XEP-0198 stream management, on server streams: the receiver acknowledges what it handled. */
export const NS_SM = "urn:xmpp:sm:3";

export function dialbackKey(secret: string, receiving: string, originating: string, streamId: string): string {
  const k = createHash("sha256").update(secret, "utf8").digest("hex");
  return createHmac("sha256", k).update(`${receiving} ${originating} ${streamId}`, "utf8").digest("hex");
}

/** Checks a key in constant time (its length, 64 hex digits, is public). */
export function verifyDialbackKey(secret: string, receiving: string, originating: string, streamId: string, key: string): boolean {
  const want = Buffer.from(dialbackKey(secret, receiving, originating, streamId), "latin1");
  const got = Buffer.from(key.trim().toLowerCase(), "latin1");
  return got.length === want.length && timingSafeEqual(got, want);
}
