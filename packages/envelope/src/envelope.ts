/**
 * The internal envelope (docs/envelope.md): builders that produce the exact
 * text processes send, and readers that validate what they receive.
 */
import { escapeAttr, readError, type Element } from "@jabberfarm/xml";

/** The version is in the namespace; see docs/envelope.md. */
export const ENVELOPE_NS = "urn:jabberfarm:envelope:1";

/**
 * The session control types (docs/envelope.md): the session's life, and
 * stream management (XEP-0198) and client state (XEP-0352), whose state
 * lives with the session in the SM rather than in the c2s.
 */
export const SESSION_TYPES = [
  "start", "started", "end", "kick", "error", "reset",
  "sm-enable", "sm-enabled", "sm-ack", "detach", "resume", "resumed", "csi",
] as const;
export type SessionType = (typeof SESSION_TYPES)[number];
const SESSION_TYPE_SET: ReadonlySet<string> = new Set(SESSION_TYPES);

export interface SessionEnvelope {
  type: SessionType;
  from: string;
  to: string;
  sid: string;
  id?: string | undefined;
  /** The session's full JID (`start`). */
  jid?: string | undefined;
  /** A stream error condition (`kick`), or a stanza error condition (`error`). */
  condition?: string | undefined;
  /** Free text for logs (`end`, `kick`). */
  reason?: string | undefined;
  /** XEP-0198: a handled count (`sm-ack`, `resume`, `resumed`). */
  h?: string | undefined;
  /** XEP-0198: the resumption id (`sm-enabled`, `resume`). */
  previd?: string | undefined;
  /** XEP-0198: resumable (`sm-enable`: "true"), and for how many seconds (`max`). */
  resume?: string | undefined;
  max?: string | undefined;
  /** XEP-0352: `active` or `inactive` (`csi`). */
  state?: string | undefined;
}

export class EnvelopeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "EnvelopeError";
  }
}

function attrs(pairs: Record<string, string | undefined>): string {
  let s = "";
  for (const k in pairs) {
    const v = pairs[k];
    if (v !== undefined) s += ` ${k}='${escapeAttr(v)}'`;
  }
  return s;
}

export function sessionEnvelope(e: SessionEnvelope): string {
  return `<session xmlns='${ENVELOPE_NS}'${attrs({
    type: e.type, id: e.id, from: e.from, to: e.to, sid: e.sid, jid: e.jid, condition: e.condition, reason: e.reason,
    h: e.h, previd: e.previd, resume: e.resume, max: e.max, state: e.state,
  })}/>`;
}

/** Validates a received `<session/>`; throws EnvelopeError naming what is wrong. */
export function readSession(el: Element): SessionEnvelope {
  const a = el.attrs;
  if (el.local !== "session" || el.ns !== ENVELOPE_NS) throw new EnvelopeError(`not a session envelope: <${el.name}/>`);
  if (a.type === undefined || !SESSION_TYPE_SET.has(a.type)) throw new EnvelopeError(`session: bad type '${a.type ?? ""}'`);
  if (!a.from || !a.to) throw new EnvelopeError("session: from and to are required");
  if (!a.sid) throw new EnvelopeError("session: sid is required");
  if (a.type === "start" && !a.jid) throw new EnvelopeError("session start: jid is required");
  let condition = a.condition;
  if (a.type === "error" && condition === undefined) {
    // The router's own bounce carries a stanza <error/> child instead.
    condition = readError(el.getChild("error")).condition;
  }
  if (a.type === "resume" && (!a.previd || a.h === undefined)) throw new EnvelopeError("session resume: previd and h are required");
  return {
    type: a.type as SessionType, from: a.from, to: a.to, sid: a.sid, id: a.id, jid: a.jid, condition, reason: a.reason,
    h: a.h, previd: a.previd, resume: a.resume, max: a.max, state: a.state,
  };
}

/**
 * Wraps one stanza's text for a session. `inner` must be a complete element
 * whose namespace is explicit (see `explicitClientStanza`).
 */
export function routeEnvelope(from: string, to: string, sid: string, inner: string, confirmAttrs = ""): string {
  return `<route xmlns='${ENVELOPE_NS}' from='${escapeAttr(from)}' to='${escapeAttr(to)}' sid='${escapeAttr(sid)}'${confirmAttrs}>${inner}</route>`;
}

/**
 * Wraps a stanza a c2s made itself for one of its sessions (an error it
 * answered locally), sent to the session's SM to be delivered like any
 * other, so that stream management numbers it (docs/stream-management.md).
 */
export function reflectEnvelope(from: string, to: string, sid: string, inner: string, confirmAttrs = ""): string {
  return `<route xmlns='${ENVELOPE_NS}' type='reflect' from='${escapeAttr(from)}' to='${escapeAttr(to)}' sid='${escapeAttr(sid)}'${confirmAttrs}>${inner}</route>`;
}

/**
 * Wraps a stanza between users that an SM hands to the owner of its
 * recipient (a `<route/>` without `sid`), so that it travels confirmed.
 */
export function relayEnvelope(from: string, to: string, inner: string, confirmAttrs = ""): string {
  return `<route xmlns='${ENVELOPE_NS}' from='${escapeAttr(from)}' to='${escapeAttr(to)}'${confirmAttrs}>${inner}</route>`;
}

export interface RouteEnvelope {
  from: string;
  to: string;
  sid: string;
  /** The carried stanza, parsed. */
  stanza: Element;
  /** The carried stanza's text as received, to forward without serialising. */
  stanzaRaw: string;
}

/** Index just past the `>` of the start tag at the beginning of `raw`, minding quoted values. */
export function startTagEnd(raw: string): number {
  let quote = 0;
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (quote !== 0) {
      if (c === quote) quote = 0;
    } else if (c === 0x22 || c === 0x27) {
      quote = c;
    } else if (c === 0x3e) {
      return i + 1;
    }
  }
  return -1;
}

/**
 * The carried stanza's bytes in a `<route/>` read by the splitter (only its
 * tag was read): what follows the start tag, up to the end tag. For the
 * hot path in c2s, which writes those bytes to the client as they are.
 */
export function routedStanzaBytes(raw: Buffer): Buffer {
  let quote = 0;
  let open = -1;
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]!;
    if (quote !== 0) {
      if (c === quote) quote = 0;
    } else if (c === 0x22 || c === 0x27) {
      quote = c;
    } else if (c === 0x3e) {
      open = i + 1;
      break;
    }
  }
  const close = raw.lastIndexOf("</");
  if (open < 0 || close < open || raw[open - 2] === 0x2f) throw new EnvelopeError("route: exactly one stanza expected");
  return raw.subarray(open, close);
}

/** Validates a received `<route/>` and cuts out the carried stanza's text. */
export function readRoute(el: Element, raw: string): RouteEnvelope {
  if (!el.attrs.sid) throw new EnvelopeError("route: from, to and sid are required");
  return readRelay(el, raw) as RouteEnvelope;
}

/** Like `readRoute` for a route between users, which has no `sid`. */
export function readRelay(el: Element, raw: string): Omit<RouteEnvelope, "sid"> & { sid: string | undefined } {
  const a = el.attrs;
  if (el.local !== "route" || el.ns !== ENVELOPE_NS) throw new EnvelopeError(`not a route envelope: <${el.name}/>`);
  if (!a.from || !a.to) throw new EnvelopeError("route: from and to are required");
  const kids = el.getChildren();
  const stanza = kids[0];
  if (kids.length !== 1 || stanza === undefined) throw new EnvelopeError("route: exactly one stanza expected");
  const open = startTagEnd(raw);
  const close = raw.lastIndexOf("</");
  if (open < 0 || close < open) throw new EnvelopeError("route: cannot find the carried stanza");
  return { from: a.from, to: a.to, sid: a.sid, stanza, stanzaRaw: raw.slice(open, close).trim() };
}

/**
 * The text of a client's stanza as it leaves the client stream: `from`
 * stamped with the session's JID and `xmlns='jabber:client'` made explicit,
 * without serialising the rest. `el` is the parsed stanza, `raw` its text.
 * Existing `from` or `xmlns` attributes must have been checked by the caller;
 * they are rewritten here only when missing.
 */
export function explicitClientStanza(el: Element, raw: string, from: string): string {
  const hasFrom = el.attrs.from !== undefined;
  const hasNs = el.attrs.xmlns !== undefined;
  if (hasFrom && hasNs) return raw;
  let insert = "";
  if (!hasNs) insert += " xmlns='jabber:client'";
  if (!hasFrom) insert += ` from='${escapeAttr(from)}'`;
  const at = 1 + el.name.length; // just after "<name"
  return raw.slice(0, at) + insert + raw.slice(at);
}
