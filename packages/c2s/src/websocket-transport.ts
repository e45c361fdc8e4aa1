/**
 * The WebSocket transport of a client stream (RFC 7395): every message is
 * one whole XML element, `<open/>` and `<close/>` (urn:ietf:params:xml:ns:
 * xmpp-framing) stand for the stream's start and end, and whatever we send
 * is one element per message with its namespaces declared.
 *
 * The messages are read by the same restricted, canonicalising parser as
 * the TCP streams (packages/xml StreamParser): it is opened once on a
 * stream header of our own making, and each message is fed to it whole; a
 * message that is not exactly one complete element ends the stream.
 */
import type { CloseReason } from "@jabberfarm/component";
import {
  NS, StreamError, StreamParser, escapeAttr, readError, streamCondition, type Element, type StreamHeader,
} from "@jabberfarm/xml";
import type { WebSocket } from "ws";
import type { C2sPeer, ClientTransport, ClientTransportHandlers } from "./client-transport.js";

export const NS_FRAMING = "urn:ietf:params:xml:ns:xmpp-framing";

/** WebSocket close codes (RFC 6455 §7.4.1). */
export const WS_CLOSE = { normal: 1000, going: 1001, unsupportedData: 1003, policy: 1008, tooBig: 1009 } as const;

// How long a closing stream waits for the client's <close/> before the WebSocket is closed anyway.
const CLOSE_GRACE_MS = 2000;
// No default namespace: a message must declare its own (RFC 7395 §3.3.3), as a TCP stream's header does once for all.
const PARSER_ROOT = `<stream:stream xmlns:stream='${NS.STREAMS}'>`;

let nextId = 1;

export interface WebSocketTransportOptions {
  remoteAddress: string;
  remotePort: number | undefined;
  maxStanzaBytes: number;
  /** Bytes queued for the client above which `congested` turns true. */
  highWaterMark: number;
  /** Pings sent on a quiet connection; one unanswered by the next ends it. */
  pingIntervalMs: number;
}

export class WebSocketTransport implements ClientTransport {
  readonly id = `w${(nextId++).toString(36)}`;
  readonly kind = "websocket" as const;
  readonly canStartTls = false;
  readonly remoteAddress: string;
  readonly remotePort: number | undefined;
  headerDue: string | undefined;

  private readonly parser: StreamParser;
  /** Until the client's `<open/>`: at the start and after SASL success. */
  private awaitingOpen = true;
  private elementsInMessage = 0;
  /** The message's element, handled once the message proved to be exactly it. */
  private pending: [Element, string] | undefined;
  private closing = false;
  private closed = false;
  private readonly reason: CloseReason = {};
  private pingSentAt = 0;
  private lastPingCheck = Date.now();

  constructor(private readonly ws: WebSocket, private readonly handlers: ClientTransportHandlers, private readonly o: WebSocketTransportOptions) {
    this.remoteAddress = o.remoteAddress;
    this.remotePort = o.remotePort;
    this.parser = new StreamParser({
      onStreamStart: () => {},
      onElement: (el, raw) => {
        if (++this.elementsInMessage === 1) this.pending = [el, raw];
      },
      onStreamEnd: () => this.close(new StreamError("not-well-formed", "the stream's end is a <close/> message (RFC 7395 §3.6)")),
      onError: (err) => this.close(err),
    }, { maxStanzaBytes: o.maxStanzaBytes, canonical: true });
    this.parser.write(PARSER_ROOT);
    ws.on("message", (data, isBinary) => this.onMessage(data as Buffer, isBinary));
    ws.on("pong", () => {
      this.pingSentAt = 0;
      // An answering client is not idle, even when it has nothing to say.
      handlers.onInput(0);
    });
    ws.on("error", (err) => {
      this.reason.socketError ??= err.message;
    });
    ws.on("close", (code) => {
      if (!this.closing) this.reason.socketError ??= `WebSocket closed (${code})`;
      this.finish();
    });
  }

  releaseParser(): void {
    this.parser.release();
  }

  private onMessage(data: Buffer, isBinary: boolean): void {
    if (this.closing || this.closed) return;
    this.handlers.onInput(data.length);
    if (this.closing) return;
    if (isBinary) {
      // RFC 7395 §3.2: XMPP travels in text messages only.
      this.fail(WS_CLOSE.unsupportedData, "binary messages are not XMPP (RFC 7395 §3.2)");
      return;
    }
    this.elementsInMessage = 0;
    this.pending = undefined;
    this.parser.write(data);
    if (this.closing || this.closed) return;
    const pending = this.pending;
    this.pending = undefined;
    if (this.elementsInMessage !== 1 || !this.parser.betweenElements || pending === undefined) {
      this.close(new StreamError("not-well-formed", "each WebSocket message must be one complete XML element (RFC 7395 §3.3.3)"));
      return;
    }
    this.onElement(pending[0], pending[1]);
  }

  private onElement(el: Element, raw: string): void {
    if (el.ns === NS_FRAMING) {
      if (el.local === "open") return this.onOpen(el);
      if (el.local === "close") {
        this.reason.clean = true;
        this.close();
        return;
      }
    }
    if (el.ns === NS.STREAMS && el.local === "error") {
      const { condition, text } = readError(el);
      this.reason.error ??= new StreamError(streamCondition(condition), text);
      this.reason.remote = true;
      this.close();
      return;
    }
    if (el.ns === "") {
      // Each message is a document of its own: there is no stream header to lend it jabber:client.
      this.close(new StreamError("invalid-namespace", "each message declares its namespace, e.g. xmlns='jabber:client' (RFC 7395 §3.3.3)"));
      return;
    }
    if (this.awaitingOpen) {
      this.close(new StreamError("not-authorized", "open the stream first (<open/>, RFC 7395 §3.4)"));
      return;
    }
    this.handlers.onElement(el, raw);
  }

  private onOpen(el: Element): void {
    if (!this.awaitingOpen) {
      this.close(new StreamError("conflict", "<open/> on an open stream"));
      return;
    }
    this.awaitingOpen = false;
    // What a TCP client's <stream:stream> header says, as the client stream checks it.
    const header: StreamHeader = { name: "stream:stream", uri: NS.STREAMS, contentNs: NS.CLIENT, attrs: { ...el.attrs } };
    delete header.attrs.xmlns;
    this.handlers.onStreamStart(header);
  }

  get isOpen(): boolean {
    return !this.closing && !this.closed;
  }

  get congested(): boolean {
    return this.ws.bufferedAmount > this.o.highWaterMark;
  }

  get queuedBytes(): number {
    return this.ws.bufferedAmount;
  }

  streamHeader(o: { from: string; id: string; lang: string }): string {
    return `<open xmlns='${NS_FRAMING}' from='${escapeAttr(o.from)}' id='${escapeAttr(o.id)}' version='1.0' xml:lang='${escapeAttr(o.lang)}'/>`;
  }

  streamFeatures(inner: string): string {
    return `<stream:features xmlns:stream='${NS.STREAMS}'>${inner}</stream:features>`;
  }

  send(data: string | Buffer): void {
    if (this.closing || this.closed) return;
    this.write(data);
  }

  private write(data: string | Buffer): void {
    if (this.ws.readyState !== this.ws.OPEN) return;
    this.ws.send(standalone(data), { binary: false });
  }

  /**
   * RFC 7395 §3.6: a stream error, then `<close/>`; a client sent elsewhere
   * gets `<close see-other-host='URL'/>` instead (§3.6.1). The WebSocket
   * closes once the client answered with its `<close/>`, or after a grace period.
   */
  close(error?: StreamError): void {
    if (this.closing || this.closed) return;
    this.closing = true;
    if (error) this.reason.error ??= error;
    if (error && this.headerDue !== undefined) this.write(this.headerDue);
    this.headerDue = undefined;
    if (error?.condition === "see-other-host" && error.conditionText !== undefined) {
      this.write(`<close xmlns='${NS_FRAMING}' see-other-host='${escapeAttr(error.conditionText)}'/>`);
    } else {
      if (error) this.write(error.toXml());
      this.write(`<close xmlns='${NS_FRAMING}'/>`);
    }
    if (this.reason.clean) this.ws.close(WS_CLOSE.normal);
    else {
      const ws = this.ws;
      setTimeout(() => ws.close(WS_CLOSE.normal), error ? 0 : CLOSE_GRACE_MS).unref();
      setTimeout(() => ws.terminate(), CLOSE_GRACE_MS * 2).unref();
    }
    this.finish();
  }

  /** Ends the WebSocket with `code` and no XMPP goodbye (bad framing at the WebSocket level). */
  private fail(code: number, text: string): void {
    this.closing = true;
    this.reason.error ??= new StreamError("policy-violation", text);
    this.ws.close(code, text);
    setTimeout(() => this.ws.terminate(), CLOSE_GRACE_MS).unref();
    this.finish();
  }

  destroy(): void {
    this.ws.terminate();
    this.finish();
  }

  restart(): void {
    this.awaitingOpen = true;
  }

  pause(): void {
    this.ws.pause();
  }

  resume(): void {
    this.ws.resume();
  }

  /** A ping on a quiet connection (RFC 7395 §3.7: no whitespace keepalives); a client that never answered one is gone. */
  keepalive(now: number): void {
    if (this.pingSentAt !== 0 && now - this.pingSentAt > this.o.pingIntervalMs) {
      this.reason.socketError ??= "no pong";
      this.destroy();
      return;
    }
    if (this.pingSentAt === 0 && now - this.lastPingCheck >= this.o.pingIntervalMs) {
      this.lastPingCheck = now;
      this.pingSentAt = now;
      this.ws.ping();
    }
  }

  redirectAddress(peer: C2sPeer): string | undefined {
    return peer.websocket;
  }

  private finish(): void {
    if (this.closed) return;
    this.closed = true;
    this.closing = true;
    this.handlers.onClose(this.reason);
  }
}

const STREAM_PREFIX = Buffer.from("<stream:");

/**
 * One element as a document of its own (RFC 7395 §3.3.3): `<stream:...>`
 * declares its prefix, and an element without a default namespace gets
 * jabber:client's (what a TCP stream's header declared once for all).
 * Routed stanzas already carry it and pass untouched.
 */
export function standalone(data: string | Buffer): string | Buffer {
  if (typeof data !== "string") {
    const end = data.indexOf(0x3e /* > */);
    if (data.subarray(0, STREAM_PREFIX.length).equals(STREAM_PREFIX) || data.subarray(0, end < 0 ? data.length : end).indexOf("xmlns=") < 0) {
      return standalone(data.toString("utf8"));
    }
    return data;
  }
  let nameEnd = 1;
  while (nameEnd < data.length && !" \t\r\n/>".includes(data[nameEnd]!)) nameEnd++;
  const tagEnd = startTagEndOf(data);
  const tag = data.slice(0, tagEnd);
  if (data.startsWith("<stream:")) {
    return tag.includes("xmlns:stream=") ? data : `${data.slice(0, nameEnd)} xmlns:stream='${NS.STREAMS}'${data.slice(nameEnd)}`;
  }
  if (/\sxmlns=/.test(tag)) return data;
  return `${data.slice(0, nameEnd)} xmlns='${NS.CLIENT}'${data.slice(nameEnd)}`;
}

function startTagEndOf(s: string): number {
  let quote = "";
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (quote !== "") {
      if (c === quote) quote = "";
    } else if (c === "'" || c === '"') quote = c;
    else if (c === ">") return i + 1;
  }
  return s.length;
}
