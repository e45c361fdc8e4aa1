import { createHash, timingSafeEqual } from "node:crypto";

/** XEP-0114 §3: lower-case hex SHA-1 of the stream id followed by the shared secret. */
export function handshakeDigest(streamId: string, secret: string): string {
  return createHash("sha1").update(streamId + secret, "utf8").digest("hex");
}

/** Checks a received handshake in constant time (the length is public: always 40 hex digits). */
export function verifyHandshake(streamId: string, secret: string, received: string): boolean {
  const expected = Buffer.from(handshakeDigest(streamId, secret), "latin1");
  const got = Buffer.from(received.trim().toLowerCase(), "latin1");
  return got.length === expected.length && timingSafeEqual(got, expected);
}
