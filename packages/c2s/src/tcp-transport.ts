/**
 * The TCP transport of a client stream (client-transport.ts): an XML stream
 * on a socket (packages/component XmlConnection), plain with STARTTLS or
 * direct TLS (XEP-0368).
 */
import type { Socket } from "node:net";
import { XmlConnection, rawText, type XmlConnectionOptions } from "@jabberfarm/component";
import { NS, type StreamError, streamHeader } from "@jabberfarm/xml";
import type { C2sPeer, ClientTransport, ClientTransportHandlers } from "./client-transport.js";

export class TcpTransport extends XmlConnection implements ClientTransport {
  readonly kind = "tcp" as const;
  readonly remoteAddress: string;
  readonly remotePort: number | undefined;
  headerDue: string | undefined;
  /** Set once the stream runs over TLS (direct, or after STARTTLS). */
  tls: boolean;

  constructor(socket: Socket, handlers: ClientTransportHandlers, opts: XmlConnectionOptions & { directTls: boolean }) {
    super(socket, {
      onStreamStart: (h) => handlers.onStreamStart(h),
      onElement: (el, raw) => handlers.onElement(el, rawText(raw)),
      onClose: (r) => handlers.onClose(r),
    }, opts);
    this.tls = opts.directTls;
    this.remoteAddress = socket.remoteAddress ?? "unknown";
    this.remotePort = socket.remotePort;
    this.count = (chunk: Buffer): void => {
      if (this.isOpen) handlers.onInput(chunk.length);
    };
    this.watch(socket);
  }

  private readonly count: (chunk: Buffer) => void;

  /** Counts what the client sends before the parser sees it, so a flood is cut before it is parsed. */
  private watch(socket: Socket): void {
    socket.prependListener("data", this.count);
  }

  get canStartTls(): boolean {
    return !this.tls;
  }

  /** STARTTLS: the stream goes on over `next`, a TLS socket on the plain one. */
  override upgrade(next: Socket): void {
    super.upgrade(next);
    this.watch(next);
  }

  override close(error?: StreamError): void {
    if (error && this.headerDue !== undefined && this.isOpen) this.send(this.headerDue);
    this.headerDue = undefined;
    super.close(error);
  }

  streamHeader(o: { from: string; id: string; lang: string }): string {
    return streamHeader({ contentNs: NS.CLIENT, from: o.from, id: o.id, version: "1.0", lang: o.lang });
  }

  streamFeatures(inner: string): string {
    return `<stream:features>${inner}</stream:features>`;
  }

  restart(): void {
    this.parser.reset();
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  keepalive(_now: number, due: boolean): void {
    if (due) this.send(" ");
  }

  releaseParser(): void {
    this.parser.release();
  }

  redirectAddress(peer: C2sPeer): string {
    return peer.address;
  }
}
