/**
 * Shared helpers for the package's tests (not exported from index.ts).
 */
import { Element } from "./element.js";
import { StreamError } from "./errors.js";
import { NS } from "./namespaces.js";
import { StreamParser, type StreamHeader, type StreamParserOptions } from "./parser.js";

export const HEADER =
  `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='${NS.STREAMS}' ` +
  "to='example.com' version=\"1.0\" xml:lang='en'>";

export type Event =
  | { kind: "start"; header: StreamHeader }
  | { kind: "element"; el: Element; raw: string }
  | { kind: "end" }
  | { kind: "error"; err: StreamError };

export interface Collector {
  parser: StreamParser;
  events: Event[];
  readonly elements: Element[];
  readonly raws: string[];
  readonly errors: StreamError[];
  readonly headers: StreamHeader[];
  readonly ends: number;
}

/** A parser whose handlers record every callback, in order. */
export function collect(opts: StreamParserOptions = {}): Collector {
  const events: Event[] = [];
  const parser = new StreamParser({
    onStreamStart: (header) => events.push({ kind: "start", header }),
    onElement: (el, raw) => events.push({ kind: "element", el, raw }),
    onStreamEnd: () => events.push({ kind: "end" }),
    onError: (err) => events.push({ kind: "error", err }),
  }, opts);
  return {
    parser,
    events,
    get elements() {
      return events.flatMap((e) => (e.kind === "element" ? [e.el] : []));
    },
    get raws() {
      return events.flatMap((e) => (e.kind === "element" ? [e.raw] : []));
    },
    get errors() {
      return events.flatMap((e) => (e.kind === "error" ? [e.err] : []));
    },
    get headers() {
      return events.flatMap((e) => (e.kind === "start" ? [e.header] : []));
    },
    get ends() {
      return events.filter((e) => e.kind === "end").length;
    },
  };
}

/** Feeds `input` in one write and returns the collector. */
export function run(input: string | Uint8Array, opts: StreamParserOptions = {}): Collector {
  const c = collect(opts);
  c.parser.write(input);
  return c;
}

/** The single error of a run, asserting there is exactly one. */
export function onlyError(c: Collector): StreamError {
  const errs = c.errors;
  if (errs.length !== 1) throw new Error(`expected exactly one error, got ${errs.length}: ${errs.map((e) => e.message).join("; ")}`);
  const e = errs[0]!;
  if (!(e instanceof StreamError)) throw new Error("error is not a StreamError");
  return e;
}

/** A plain, comparable view of an element tree (name, resolved ns, attrs, children). */
export interface Plain {
  name: string;
  ns: string;
  attrs: Record<string, string>;
  children: Array<Plain | string>;
}

export function plain(el: Element): Plain {
  return {
    name: el.name,
    ns: el.ns,
    attrs: { ...el.attrs },
    children: el.children.map((c) => (typeof c === "string" ? c : plain(c))),
  };
}

/** A comparable, order-preserving digest of recorded events. */
export function digest(events: Event[]): unknown[] {
  return events.map((e) => {
    switch (e.kind) {
      case "start":
        return { start: { ...e.header, attrs: { ...e.header.attrs } } };
      case "element":
        return { element: plain(e.el), raw: e.raw };
      case "end":
        return { end: true };
      case "error":
        return { error: e.err.condition };
    }
  });
}

/** Feeds `bytes` cut at the given offsets (sorted, within range). */
export function writeSplit(parser: StreamParser, bytes: Uint8Array, cuts: number[]): void {
  let prev = 0;
  for (const cut of [...cuts].sort((a, b) => a - b)) {
    if (cut <= prev || cut >= bytes.length) continue;
    parser.write(bytes.subarray(prev, cut));
    prev = cut;
  }
  parser.write(bytes.subarray(prev));
}

/** A small deterministic PRNG (mulberry32) for reproducible random splits. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
export const byteLength = (s: string): number => Buffer.byteLength(s, "utf8");

/** Every condition RFC 6120 §4.9.3 defines. */
export const STREAM_CONDITIONS = new Set([
  "bad-format", "bad-namespace-prefix", "conflict", "connection-timeout", "host-gone", "host-unknown",
  "improper-addressing", "internal-server-error", "invalid-from", "invalid-namespace", "invalid-xml",
  "not-authorized", "not-well-formed", "policy-violation", "remote-connection-failed", "reset",
  "resource-constraint", "restricted-xml", "see-other-host", "system-shutdown", "undefined-condition",
  "unsupported-encoding", "unsupported-feature", "unsupported-stanza-type", "unsupported-version",
]);
