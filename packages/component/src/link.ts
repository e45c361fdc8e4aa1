/**
 * The connecting side of the component protocol, for one router: connect,
 * open the stream, answer the stream id with the handshake, then exchange
 * stanzas. Reconnecting is the pool's job (pool.ts).
 */
import { connect, type Socket } from "node:net";
import { NS, StreamError, escapeAttr, streamHeader, type Element } from "@jabberfarm/xml";
import { XmlConnection, type CloseReason, type XmlConnectionOptions } from "./connection.js";
import { handshakeDigest } from "./handshake.js";
import { FARM_LINK_MAX_BYTES } from "./limits.js";

/** Namespace of the farm's own stream-header attribute that names a process instance. */
export const FARM_COMPONENT_NS = "urn:jabberfarm:component:0";
export const INSTANCE_ATTR_LOCAL = "instance";
/** The router's stream-header attribute (same namespace) giving the largest element it takes from this process. */
export const MAX_ELEMENT_ATTR_LOCAL = "max-element";

/** A farm attribute of a stream header (`prefix:local` with the prefix bound to FARM_COMPONENT_NS). */
export function farmHeaderAttr(attrs: Record<string, string>, local: string): string | undefined {
  for (const k in attrs) {
    const colon = k.indexOf(":");
    if (colon < 0 || k.slice(colon + 1) !== local) continue;
    if (attrs["xmlns:" + k.slice(0, colon)] === FARM_COMPONENT_NS) return attrs[k];
  }
  return undefined;
}

export interface RouterAddress {
  host: string;
  port: number;
}

export interface LinkOptions extends XmlConnectionOptions {
  name: string;
  secret: string;
  /** Stable id of this process, so every router's routing rule agrees (see accept.ts). */
  instance?: string;
  /** Time allowed from connect to the router's `<handshake/>`. */
  handshakeTimeoutMs?: number;
  /**
   * Read the router's stream with the splitter once the handshake is done:
   * stanzas then arrive as bytes with only their top-level tag read. For a
   * process that forwards what it receives (c2s), not one that needs trees.
   */
  splitter?: boolean;
}

export interface LinkHandlers {
  onReady(link: RouterLink): void;
  onStanza(link: RouterLink, el: Element, raw: string | Buffer): void;
  /** The link is gone (never came up, refused, or dropped). */
  onDown(link: RouterLink, reason: CloseReason): void;
}

export class RouterLink {
  readonly router: RouterAddress;
  private conn: XmlConnection | undefined;
  private ready = false;
  private down = false;
  private timer: NodeJS.Timeout | undefined;
  /** The largest element this link may carry to its router: what the router announced, else what we read ourselves. */
  maxElementBytes: number;

  constructor(router: RouterAddress, private readonly opts: LinkOptions, private readonly handlers: LinkHandlers) {
    this.router = router;
    this.maxElementBytes = opts.maxStanzaBytes ?? FARM_LINK_MAX_BYTES;
  }

  get isReady(): boolean {
    return this.ready;
  }

  get label(): string {
    return `${this.router.host}:${this.router.port}`;
  }

  get congested(): boolean {
    return this.conn?.congested ?? false;
  }

  get queuedBytes(): number {
    return this.conn?.queuedBytes ?? 0;
  }

  open(): void {
    const socket: Socket = connect({ host: this.router.host, port: this.router.port });
    this.timer = setTimeout(() => {
      this.conn?.close(new StreamError("connection-timeout", "no handshake answer in time"));
      socket.destroy();
      this.goDown({ socketError: "handshake timeout" });
    }, this.opts.handshakeTimeoutMs ?? 10_000);
    this.timer.unref();
    this.conn = new XmlConnection(socket, {
      onStreamStart: (h) => {
        const id = h.attrs.id;
        const max = Number(farmHeaderAttr(h.attrs, MAX_ELEMENT_ATTR_LOCAL));
        if (Number.isSafeInteger(max) && max > 0) this.maxElementBytes = max;
        if (!id) {
          this.conn?.close(new StreamError("invalid-xml", "the router's stream header has no id"));
          return;
        }
        this.conn?.send(`<handshake>${handshakeDigest(id, this.opts.secret)}</handshake>`);
      },
      onElement: (el, raw) => {
        if (this.ready) {
          this.handlers.onStanza(this, el, raw);
        } else if (el.name === "handshake" && el.ns === NS.COMPONENT) {
          clearTimeout(this.timer);
          if (this.opts.splitter) this.conn?.useSplitter(NS.COMPONENT);
          this.ready = true;
          this.handlers.onReady(this);
        } else {
          this.conn?.close(new StreamError("not-authorized", "stanza before the handshake was accepted"));
        }
      },
      onClose: (reason) => this.goDown(reason),
    }, { ...this.opts, maxStanzaBytes: this.opts.maxStanzaBytes ?? FARM_LINK_MAX_BYTES });
    socket.once("connect", () => {
      let header = streamHeader({ contentNs: NS.COMPONENT, to: this.opts.name });
      if (this.opts.instance !== undefined) {
        header = header.slice(0, -1) +
          ` xmlns:farm='${FARM_COMPONENT_NS}' farm:${INSTANCE_ATTR_LOCAL}='${escapeAttr(this.opts.instance)}'>`;
      }
      this.conn?.send(header);
    });
  }

  send(data: string | Buffer): void {
    if (this.ready) this.conn?.send(data);
  }

  onceDrained(fn: () => void): void {
    if (this.conn) this.conn.onceDrained(fn);
    else fn();
  }

  close(): void {
    this.conn?.close();
  }

  /** Drop the socket without closing the stream: for tests of crash paths. */
  destroy(): void {
    this.conn?.destroy();
  }

  private goDown(reason: CloseReason): void {
    clearTimeout(this.timer);
    if (this.down) return;
    this.down = true;
    this.ready = false;
    this.handlers.onDown(this, reason);
  }
}
