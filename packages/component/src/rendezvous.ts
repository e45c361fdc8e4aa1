/**
 * Rendezvous (highest-random-weight) hashing: every candidate scores the key
 * and the highest score wins. When a candidate joins or leaves, only the keys
 * it wins or won move, and every router computes the same answer from the
 * same candidate identities without talking to each other.
 */

/** FNV-1a over a string's UTF-16 code units, continuing from `h`. */
function fnv1a(s: string, h: number): number {
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h;
}

/** MurmurHash3's finaliser: spreads FNV's weak low bits over the whole word. */
function mix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

const FNV_OFFSET = 0x811c9dc5;

/** The seed a candidate contributes; compute once per candidate and keep it. */
export function rendezvousSeed(candidateId: string): number {
  return fnv1a(candidateId + "\u0000", FNV_OFFSET);
}

export function rendezvousScore(seed: number, key: string): number {
  return mix(fnv1a(key, seed));
}

/** A well-spread 32-bit hash of `s` (FNV-1a and the same finaliser), for names derived from keys. */
export function stringHash(s: string): number {
  return mix(fnv1a(s, FNV_OFFSET));
}

export interface RendezvousCandidate {
  readonly rendezvousId: string;
  readonly rendezvousSeed: number;
}

/** The winner for `key`; ties (vanishingly rare) go to the smaller id so every router agrees. */
export function rendezvousPick<T extends RendezvousCandidate>(candidates: readonly T[], key: string): T | undefined {
  let best: T | undefined;
  let bestScore = -1;
  for (const c of candidates) {
    const score = rendezvousScore(c.rendezvousSeed, key);
    if (score > bestScore || (score === bestScore && best !== undefined && c.rendezvousId < best.rendezvousId)) {
      best = c;
      bestScore = score;
    }
  }
  return best;
}
