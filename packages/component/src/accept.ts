/**
 * The accepting side of the component protocol (XEP-0114), as the router
 * runs it: read the header, answer with a stream id, check the handshake,
 * then hand every stanza to the owner.
 */
import { randomBytes } from "node:crypto";
import type { Socket } from "node:net";
import { NS, StreamError, streamHeader, type Element, type StreamHeader } from "@jabberfarm/xml";
import { XmlConnection, type CloseReason, type XmlConnectionOptions } from "./connection.js";
import { verifyHandshake } from "./handshake.js";
import { INSTANCE_ATTR_LOCAL, FARM_COMPONENT_NS, MAX_ELEMENT_ATTR_LOCAL, farmHeaderAttr } from "./link.js";

export interface AcceptOptions extends XmlConnectionOptions {
  /** The secret for a component name, or undefined when the name is unknown. */
  secretFor(name: string): string | undefined;
  /** Time allowed from connect to a successful handshake. */
  handshakeTimeoutMs?: number;
  /**
   * Names whose streams are read with the splitter (farm processes, trusted
   * to send well-formed XML): stanzas then arrive as bytes. Others are parsed.
   */
  splitterFor?: (name: string) => boolean;
  /**
   * Largest element read from a stream that uses the splitter (a farm
   * process), announced to it in our stream header; other streams keep
   * `maxStanzaBytes`.
   */
  maxTrustedStanzaBytes?: number;
}

export interface AcceptedHandlers {
  onAuthenticated(conn: AcceptedComponent): void;
  onStanza(conn: AcceptedComponent, el: Element, raw: string | Buffer): void;
  /** Called once, whether or not the component ever authenticated. */
  onClose(conn: AcceptedComponent, reason: CloseReason): void;
  /** A failed handshake or a protocol error before authentication, for the operator's log. */
  onRejected?(conn: AcceptedComponent, error: StreamError): void;
}

type State = "header" | "handshake" | "ready" | "closed";

export class AcceptedComponent {
  readonly conn: XmlConnection;
  readonly streamId: string;
  /** The name the component asked for in the header's `to`. */
  name = "";
  /**
   * A stable identity of the process behind the connection, announced in the
   * header (see link.ts); used by the routing rule so that every router picks
   * the same instance. Falls back to the connection id.
   */
  instance = "";
  private state: State = "header";
  private readonly timer: NodeJS.Timeout;

  constructor(socket: Socket, private readonly opts: AcceptOptions, private readonly handlers: AcceptedHandlers) {
    this.streamId = randomBytes(12).toString("hex");
    this.conn = new XmlConnection(socket, {
      onStreamStart: (h) => this.onHeader(h),
      onElement: (el, raw) => this.onElement(el, raw),
      onClose: (reason) => {
        clearTimeout(this.timer);
        const was = this.state;
        this.state = "closed";
        if (reason.error && !reason.remote && was !== "ready") this.handlers.onRejected?.(this, reason.error);
        this.handlers.onClose(this, reason);
      },
    }, { ...opts, shallow: opts.shallow ?? true });
    this.timer = setTimeout(() => this.fail(new StreamError("connection-timeout", "no handshake in time")), opts.handshakeTimeoutMs ?? 10_000);
    this.timer.unref();
  }

  get id(): string {
    return this.conn.id;
  }

  get ready(): boolean {
    return this.state === "ready";
  }

  send(data: string | Buffer): void {
    this.conn.send(data);
  }

  close(error?: StreamError): void {
    this.conn.close(error);
  }

  private fail(error: StreamError): void {
    if (this.state === "header") {
      // RFC 6120 §4.9.1.1: open a stream of our own before the error, so the peer can parse it.
      this.conn.send(streamHeader({ contentNs: NS.COMPONENT, id: this.streamId }));
    }
    this.conn.close(error);
  }

  private onHeader(h: StreamHeader): void {
    if (this.state !== "header") return;
    const to = h.attrs.to;
    if (h.contentNs !== NS.COMPONENT) {
      this.fail(new StreamError("invalid-namespace", `expected ${NS.COMPONENT}`));
      return;
    }
    if (!to) {
      this.fail(new StreamError("improper-addressing", "the stream header needs a 'to' naming the component"));
      return;
    }
    this.name = to.toLowerCase();
    this.instance = farmHeaderAttr(h.attrs, INSTANCE_ATTR_LOCAL) ?? this.conn.id;
    const trusted = this.opts.splitterFor?.(this.name) === true;
    let header = streamHeader({ contentNs: NS.COMPONENT, from: this.name, id: this.streamId });
    const max = this.opts.maxTrustedStanzaBytes;
    if (trusted && max !== undefined) {
      // A farm process checks what it sends against this, so one oversized
      // element fails alone rather than closing the link (docs/security.md).
      header = header.slice(0, -1) + ` xmlns:farm='${FARM_COMPONENT_NS}' farm:${MAX_ELEMENT_ATTR_LOCAL}='${max}'>`;
    }
    this.conn.send(header);
    if (this.opts.secretFor(this.name) === undefined) {
      this.conn.close(new StreamError("host-unknown", `no component is configured as '${this.name}'`));
      return;
    }
    this.state = "handshake";
    // The component waits for our header before it sends anything more, so
    // the parser holds nothing yet: a clean point to change readers.
    if (trusted) this.conn.useSplitter(NS.COMPONENT, this.opts.maxTrustedStanzaBytes);
  }

  private onElement(el: Element, raw: string | Buffer): void {
    if (this.state === "ready") {
      this.handlers.onStanza(this, el, raw);
      return;
    }
    if (this.state !== "handshake") return;
    if (el.name !== "handshake" || el.ns !== NS.COMPONENT) {
      this.conn.close(new StreamError("not-authorized", "the handshake must come first"));
      return;
    }
    // Shallow parsing still keeps the top-level element's own text.
    const digest = el.text();
    const secret = this.opts.secretFor(this.name);
    if (secret === undefined || !verifyHandshake(this.streamId, secret, digest)) {
      this.conn.close(new StreamError("not-authorized", "wrong handshake"));
      return;
    }
    clearTimeout(this.timer);
    this.state = "ready";
    this.conn.send("<handshake/>");
    this.handlers.onAuthenticated(this);
  }
}
