/**
 * XMPP errors, in one place: stream errors (RFC 6120 §4.9) that end a
 * stream, and stanza errors (RFC 6120 §8.3) that answer one stanza.
 */
import { Element, escapeText, xml } from "./element.js";
import { NS } from "./namespaces.js";

/** Every stream error condition of RFC 6120 §4.9.3: the one list in the farm. */
export const STREAM_ERROR_CONDITIONS = [
  "bad-format", "bad-namespace-prefix", "conflict", "connection-timeout",
  "host-gone", "host-unknown", "improper-addressing", "internal-server-error",
  "invalid-from", "invalid-namespace", "invalid-xml", "not-authorized",
  "not-well-formed", "policy-violation", "remote-connection-failed", "reset",
  "resource-constraint", "restricted-xml", "see-other-host", "system-shutdown",
  "undefined-condition", "unsupported-encoding", "unsupported-feature",
  "unsupported-stanza-type", "unsupported-version",
] as const;

export type StreamErrorCondition = (typeof STREAM_ERROR_CONDITIONS)[number];

/** A condition that ends the stream; thrown by the parser and the protocol layers. */
export class StreamError extends Error {
  readonly condition: StreamErrorCondition;
  readonly text: string | undefined;
  /** Character data of the condition element; only see-other-host uses it (the new host). */
  readonly conditionText: string | undefined;

  constructor(condition: StreamErrorCondition, text?: string, conditionText?: string) {
    super(text ? `${condition}: ${text}` : condition);
    this.name = "StreamError";
    this.condition = condition;
    this.text = text;
    this.conditionText = conditionText;
  }

  /** The `<stream:error/>` element, written with the `stream:` prefix of the stream header. */
  toXml(): string {
    const cond = this.conditionText === undefined
      ? `<${this.condition} xmlns='${NS.STREAM_ERRORS}'/>`
      : `<${this.condition} xmlns='${NS.STREAM_ERRORS}'>${escapeText(this.conditionText)}</${this.condition}>`;
    const text = this.text === undefined ? "" : `<text xmlns='${NS.STREAM_ERRORS}' xml:lang='en'>${escapeText(this.text)}</text>`;
    return `<stream:error>${cond}${text}</stream:error>`;
  }
}

export type StanzaErrorType = "auth" | "cancel" | "continue" | "modify" | "wait";

/** Every stanza error condition of RFC 6120 §8.3.3: the one list in the farm. */
export const STANZA_ERROR_CONDITIONS = [
  "bad-request", "conflict", "feature-not-implemented", "forbidden", "gone",
  "internal-server-error", "item-not-found", "jid-malformed", "not-acceptable",
  "not-allowed", "not-authorized", "policy-violation", "recipient-unavailable",
  "redirect", "registration-required", "remote-server-not-found",
  "remote-server-timeout", "resource-constraint", "service-unavailable",
  "subscription-required", "undefined-condition", "unexpected-request",
] as const;

export type StanzaErrorCondition = (typeof STANZA_ERROR_CONDITIONS)[number];

const STREAM_SET: ReadonlySet<string> = new Set(STREAM_ERROR_CONDITIONS);
const STANZA_SET: ReadonlySet<string> = new Set(STANZA_ERROR_CONDITIONS);

/**
 * A condition that arrived as text (in an envelope, from a peer) as one we
 * may send: an unknown one becomes undefined-condition rather than an
 * element the receiver cannot read.
 */
export function streamCondition(c: string | undefined): StreamErrorCondition {
  return c !== undefined && STREAM_SET.has(c) ? (c as StreamErrorCondition) : "undefined-condition";
}

export function stanzaCondition(c: string | undefined): StanzaErrorCondition {
  return c !== undefined && STANZA_SET.has(c) ? (c as StanzaErrorCondition) : "undefined-condition";
}

/**
 * The condition and text of an error: a stanza's `<error/>` child, or a
 * `<stream:error/>` element itself (the one place errors are read).
 */
export function readError(error: Element | undefined): { condition: string | undefined; text: string | undefined } {
  let condition: string | undefined;
  let text: string | undefined;
  for (const c of error?.getChildren() ?? []) {
    if (c.local === "text") text = c.text();
    else condition ??= c.local;
  }
  return { condition, text };
}

/** The error type RFC 6120 §8.3.3 pairs with each condition. */
const DEFAULT_TYPE: Record<StanzaErrorCondition, StanzaErrorType> = {
  "bad-request": "modify", "conflict": "cancel", "feature-not-implemented": "cancel",
  "forbidden": "auth", "gone": "cancel", "internal-server-error": "cancel",
  "item-not-found": "cancel", "jid-malformed": "modify", "not-acceptable": "modify",
  "not-allowed": "cancel", "not-authorized": "auth", "policy-violation": "modify",
  "recipient-unavailable": "wait", "redirect": "modify", "registration-required": "auth",
  "remote-server-not-found": "cancel", "remote-server-timeout": "wait",
  "resource-constraint": "wait", "service-unavailable": "cancel",
  "subscription-required": "auth", "undefined-condition": "cancel",
  "unexpected-request": "wait",
};

export interface StanzaErrorOptions {
  type?: StanzaErrorType;
  text?: string;
  /** The entity that generates the error (RFC 6120 §8.3.2 `by`). */
  by?: string;
  /**
   * Keep the original payload in the reply (RFC 6120 §8.3.1 allows it).
   * Default: only a small one (ERROR_PAYLOAD_MAX): an error never echoes a
   * large payload, which would make the reply larger than what it answers
   * (and larger than the farm's links take, docs/security.md).
   */
  includePayload?: boolean;
}

/** Largest payload (roughly, in characters) an error reply echoes by default. */
export const ERROR_PAYLOAD_MAX = 4096;

/** Whether the children of `el` (its payload) add up to at most `budget` characters, counted roughly. */
export function payloadWithin(el: Element, budget: number): boolean {
  const walk = (e: Element): boolean => {
    budget -= 2 * e.name.length + 5;
    for (const k in e.attrs) budget -= k.length + e.attrs[k]!.length + 4;
    for (const c of e.children) {
      if (typeof c === "string") budget -= c.length;
      else if (!walk(c)) return false;
      if (budget < 0) return false;
    }
    return budget >= 0;
  };
  for (const c of el.children) {
    if (typeof c === "string") budget -= c.length;
    else if (c.local !== "error" && !walk(c)) return false;
    if (budget < 0) return false;
  }
  return true;
}

/** The `<error/>` child for a condition. */
export function errorElement(condition: StanzaErrorCondition, opts: StanzaErrorOptions = {}): Element {
  return xml("error", { type: opts.type ?? DEFAULT_TYPE[condition], by: opts.by },
    xml(condition, { xmlns: NS.STANZA_ERRORS }),
    opts.text === undefined ? null : xml("text", { xmlns: NS.STANZA_ERRORS, "xml:lang": "en" }, opts.text));
}

/**
 * The error reply to a stanza: same name and id, `from` and `to` swapped,
 * type "error". Callers must not answer an error with an error (RFC 6120
 * §8.3.1); `canBounce` tells.
 */
export function stanzaErrorReply(stanza: Element, condition: StanzaErrorCondition, opts: StanzaErrorOptions = {}): Element {
  const attrs: Attrs = {};
  for (const k in stanza.attrs) if (k !== "to" && k !== "from" && k !== "type") attrs[k] = stanza.attrs[k]!;
  const from = stanza.attrs.to;
  const to = stanza.attrs.from;
  if (from !== undefined) attrs.from = from;
  if (to !== undefined) attrs.to = to;
  attrs.type = "error";
  const reply = new Element(stanza.name, attrs);
  if (opts.includePayload ?? payloadWithin(stanza, ERROR_PAYLOAD_MAX)) {
    for (const c of stanza.children) if (typeof c !== "string" && c.local !== "error") reply.children.push(c);
  }
  reply.children.push(errorElement(condition, opts));
  return reply;
}

type Attrs = Record<string, string>;

/** Whether a stanza may be answered with an error: never an error itself. */
export function canBounce(stanza: Element): boolean {
  return stanza.attrs.type !== "error";
}

/** Reads the condition of a stanza error reply, for tests and logs. */
export function stanzaErrorCondition(stanza: Element): string | undefined {
  return readError(stanza.getChild("error")).condition;
}
