/**
 * What kind of stanza a top-level element is, read from what a process
 * already has in hand: the element's name, or the first bytes of its text.
 * Nothing here parses; a `<route/>` envelope counts as the stanza it carries
 * (found by the first `<` after its start tag, which cannot occur inside an
 * attribute value of well-formed XML), so the message counters of c2s, the
 * router and the sm all move with the users' messages.
 */

export const STANZA_KINDS = ["message", "presence", "iq", "envelope", "other"] as const;
export type StanzaKind = (typeof STANZA_KINDS)[number];

/** Index of a kind in STANZA_KINDS; counters are arrays indexed by it. */
export type KindIndex = 0 | 1 | 2 | 3 | 4;

export const MESSAGE: KindIndex = 0;
export const PRESENCE: KindIndex = 1;
export const IQ: KindIndex = 2;
export const ENVELOPE: KindIndex = 3;
export const OTHER: KindIndex = 4;
// Internal: a route whose payload decides.
const ROUTE = 5;

/**
 * By element name alone. `route`, `session` and `xdb` are the farm's
 * envelopes (docs/envelope.md); a route's payload is unknown here, so
 * callers with its text use `kindOf` instead.
 */
export function kindOfName(name: string): KindIndex {
  switch (name) {
    case "message":
      return MESSAGE;
    case "presence":
      return PRESENCE;
    case "iq":
      return IQ;
    case "route":
    case "session":
    case "xdb":
      return ENVELOPE;
    default:
      return OTHER;
  }
}

/** By name, looking into a route's text or bytes for the stanza it carries. */
export function kindOf(name: string, raw: string | Uint8Array): KindIndex {
  if (name !== "route") return kindOfName(name);
  return typeof raw === "string" ? routedKindText(raw, 0) : routedKindBytes(raw, 0);
}

/** By the first tag of a text about to be written (what an outlet sends). */
export function kindOfText(text: string): KindIndex {
  const lt = text.charCodeAt(0) === 0x3c ? 0 : text.indexOf("<");
  if (lt < 0) return OTHER;
  const k = tagKindText(text, lt);
  return k === ROUTE ? routedKindText(text, lt) : k;
}

/** By the first tag of bytes about to be written or just read. */
export function kindOfBytes(bytes: Uint8Array): KindIndex {
  const lt = bytes[0] === 0x3c ? 0 : bytes.indexOf(0x3c);
  if (lt < 0) return OTHER;
  const k = tagKindBytes(bytes, lt);
  return k === ROUTE ? routedKindBytes(bytes, lt) : k;
}

function routedKindText(text: string, lt: number): KindIndex {
  const inner = text.indexOf("<", lt + 1);
  const k = inner < 0 ? OTHER : tagKindText(text, inner);
  return k === MESSAGE || k === PRESENCE || k === IQ ? k : ENVELOPE;
}

function routedKindBytes(bytes: Uint8Array, lt: number): KindIndex {
  const inner = bytes.indexOf(0x3c, lt + 1);
  const k = inner < 0 ? OTHER : tagKindBytes(bytes, inner);
  return k === MESSAGE || k === PRESENCE || k === IQ ? k : ENVELOPE;
}

// The names worth telling apart, by their first letter; unprefixed only, as
// the farm writes them. Shared tuples: classifying allocates nothing.
type Candidate = readonly [string, KindIndex | typeof ROUTE];
const C_MESSAGE: Candidate = ["message", MESSAGE];
const C_PRESENCE: Candidate = ["presence", PRESENCE];
const C_IQ: Candidate = ["iq", IQ];
const C_ROUTE: Candidate = ["route", ROUTE];
const C_SESSION: Candidate = ["session", ENVELOPE];
const C_XDB: Candidate = ["xdb", ENVELOPE];

function candidate(first: number): Candidate | undefined {
  switch (first) {
    case 0x6d: return C_MESSAGE;
    case 0x70: return C_PRESENCE;
    case 0x69: return C_IQ;
    case 0x72: return C_ROUTE;
    case 0x73: return C_SESSION;
    case 0x78: return C_XDB;
    default: return undefined;
  }
}

function endsName(c: number | undefined): boolean {
  return c === 0x20 || c === 0x3e || c === 0x2f || c === 0x0a || c === 0x09 || c === 0x0d;
}

function tagKindText(text: string, lt: number): KindIndex | typeof ROUTE {
  const c = candidate(text.charCodeAt(lt + 1));
  if (c === undefined) return OTHER;
  const name = c[0];
  return text.startsWith(name, lt + 1) && endsName(text.charCodeAt(lt + 1 + name.length)) ? c[1] : OTHER;
}

function tagKindBytes(bytes: Uint8Array, lt: number): KindIndex | typeof ROUTE {
  const c = candidate(bytes[lt + 1] ?? 0);
  if (c === undefined) return OTHER;
  const name = c[0];
  for (let i = 1; i < name.length; i++) if (bytes[lt + 1 + i] !== name.charCodeAt(i)) return OTHER;
  return endsName(bytes[lt + 1 + name.length]) ? c[1] : OTHER;
}
