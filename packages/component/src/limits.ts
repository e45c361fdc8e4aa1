/**
 * The size of elements on links between farm processes. A router closes a
 * link that brings it anything larger, with every session that link
 * carries; so every process checks what it builds against this size before
 * sending (docs/security.md, "Internal size limits"), and one request that
 * would be too large fails on its own.
 */

/** Default largest element on a farm-internal link: routes carry client stanzas (256 KiB) with room for escaping and envelopes. */
export const FARM_LINK_MAX_BYTES = 1024 * 1024;

/**
 * Room a stanza carried from outside (a client's, an external component's)
 * must leave below the link size for the envelopes and stamps the farm
 * adds around it on its way (route attributes, a delay element), so that
 * once accepted at the edge it fits every internal hop.
 */
export const ENVELOPE_ROOM = 2048;

/** Thrown by `Component.send` for an element larger than the links take; the caller fails that one request. */
export class OversizeError extends Error {
  constructor(readonly bytes: number, readonly max: number) {
    super(`element of ${bytes} bytes is larger than the ${max} bytes a farm link takes`);
    this.name = "OversizeError";
  }
}

/** Byte length of `text` when it is over `max` (else 0): the exact count only when the length alone cannot tell. */
export function oversize(text: string | Buffer, max: number): number {
  if (typeof text !== "string") return text.length > max ? text.length : 0;
  // A UTF-16 unit is at most 3 bytes of UTF-8.
  if (text.length * 3 <= max) return 0;
  const bytes = Buffer.byteLength(text);
  return bytes > max ? bytes : 0;
}
