/**
 * Conditions that arrive as text (in envelopes from an SM or the router)
 * and leave as errors to a client: an unknown one becomes
 * undefined-condition rather than an element a client cannot read.
 */
import type { StanzaErrorCondition, StreamErrorCondition } from "@jabberfarm/xml";

const STREAM_CONDITIONS: ReadonlySet<string> = new Set<StreamErrorCondition>([
  "bad-format", "bad-namespace-prefix", "conflict", "connection-timeout", "host-gone", "host-unknown",
  "improper-addressing", "internal-server-error", "invalid-from", "invalid-namespace", "invalid-xml",
  "not-authorized", "not-well-formed", "policy-violation", "remote-connection-failed", "reset",
  "resource-constraint", "restricted-xml", "see-other-host", "system-shutdown", "undefined-condition",
  "unsupported-encoding", "unsupported-feature", "unsupported-stanza-type", "unsupported-version",
]);

const STANZA_CONDITIONS: ReadonlySet<string> = new Set<StanzaErrorCondition>([
  "bad-request", "conflict", "feature-not-implemented", "forbidden", "gone", "internal-server-error",
  "item-not-found", "jid-malformed", "not-acceptable", "not-allowed", "not-authorized", "policy-violation",
  "recipient-unavailable", "redirect", "registration-required", "remote-server-not-found",
  "remote-server-timeout", "resource-constraint", "service-unavailable", "subscription-required",
  "undefined-condition", "unexpected-request",
]);

export function streamCondition(c: string | undefined): StreamErrorCondition {
  return c !== undefined && STREAM_CONDITIONS.has(c) ? (c as StreamErrorCondition) : "undefined-condition";
}

export function stanzaCondition(c: string | undefined): StanzaErrorCondition {
  return c !== undefined && STANZA_CONDITIONS.has(c) ? (c as StanzaErrorCondition) : "undefined-condition";
}
