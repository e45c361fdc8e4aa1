/**
 * What a client stream (client-stream.ts) needs from the connection under
 * it, so that one session path serves every listener: the TCP ones
 * (STARTTLS, direct TLS; tcp-transport.ts) and WebSocket (RFC 7395;
 * websocket-transport.ts). A transport turns what arrives into stream
 * starts, elements and an end, and frames what goes out: a `<stream:stream>`
 * header or an `<open/>`, whitespace keepalives or WebSocket pings, a
 * stream error or a `<close/>`.
 */
import type { CloseReason } from "@jabberfarm/component";
import type { Element, StreamError, StreamHeader } from "@jabberfarm/xml";

export interface ClientTransportHandlers {
  onStreamStart(header: StreamHeader): void;
  onElement(el: Element, raw: string): void;
  onClose(reason: CloseReason): void;
  /** Bytes the client sent, counted before they are parsed (the byte rate limit). */
  onInput(bytes: number): void;
}

/** Another c2s of the farm, as the load board knows it: where each kind of client reaches it. */
export interface C2sPeer {
  /** host:port of its STARTTLS listener (RFC 6120 see-other-host). */
  address: string;
  /** Its WebSocket URL (RFC 7395 §3.6.1), when it has that listener. */
  websocket?: string | undefined;
}

export type TransportKind = "tcp" | "websocket";

export interface ClientTransport {
  readonly id: string;
  readonly kind: TransportKind;
  readonly remoteAddress: string;
  readonly remotePort: number | undefined;
  /** The stream is up: not closing, not closed. */
  readonly isOpen: boolean;
  /** The client reads slower than we write. */
  readonly congested: boolean;
  /** Bytes written but not yet sent. */
  readonly queuedBytes: number;
  /** STARTTLS can be offered (TCP without TLS yet); never over WebSocket (RFC 7395: TLS is the WebSocket's, wss). */
  readonly canStartTls: boolean;
  /**
   * Our header for the current stream while the client's has not been
   * answered: a stream error must follow a header of ours (RFC 6120 §4.9.1.1).
   */
  headerDue: string | undefined;
  /** Our side's stream opening: `<stream:stream ...>`, or `<open/>`. */
  streamHeader(o: { from: string; id: string; lang: string }): string;
  /** `<stream:features>` as this framing writes it. */
  streamFeatures(inner: string): string;
  /** One stanza or nonza (over WebSocket, one message). */
  send(data: string | Buffer): void;
  /** Ends the stream, with a stream error (see-other-host included) or without. */
  close(error?: StreamError): void;
  /** Drops the connection without a word. */
  destroy(): void;
  /** The client opens a new stream next (after SASL success). */
  restart(): void;
  pause(): void;
  resume(): void;
  /**
   * Called on every timer tick; `due` when nothing was written for the
   * keepalive interval. TCP writes whitespace then; WebSocket pings on its
   * own schedule (RFC 7395 §3.7 has no whitespace) and ends a connection
   * whose pong never came.
   */
  keepalive(now: number, due: boolean): void;
  /** The client has been quiet for a while: free the parser's working memory until data comes (StreamParser.release). */
  releaseParser(): void;
  /** Where to send this client to reach `peer`, in this transport's terms; undefined when the peer cannot take it. */
  redirectAddress(peer: C2sPeer): string | undefined;
}
