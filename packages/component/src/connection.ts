/**
 * One XML stream over one socket: parsing in, batched writing out, and an
 * orderly close with a stream error. Both sides of the component protocol,
 * and later c2s, are built on it.
 */
import type { Socket } from "node:net";
import {
  StanzaSplitter, StreamError, StreamParser, incompleteUtf8Tail, readError, streamCondition, streamFooter,
  type Element, type StreamHeader, type StreamParserOptions,
} from "@jabberfarm/xml";

export interface XmlConnectionHandlers {
  onStreamStart(header: StreamHeader): void;
  /** `raw` is text from the full parser, bytes from the splitter (see `useSplitter`). */
  onElement(el: Element, raw: string | Buffer): void;
  /** The stream ended: closed by the peer, by us, by an error, or the socket died. */
  onClose(reason: CloseReason): void;
}

/** A stanza's text whichever reader produced it (the splitter gives bytes). */
export function rawText(raw: string | Buffer): string {
  return typeof raw === "string" ? raw : raw.toString("utf8");
}

export interface CloseReason {
  /** A stream error we sent, or one the peer sent us. */
  error?: StreamError | undefined;
  /** True when the error came from the peer. */
  remote?: boolean;
  /** A socket-level error message (ECONNRESET...). */
  socketError?: string;
  /** The peer ended its stream (`</stream:stream>`): a goodbye, not a lost connection. */
  clean?: boolean;
}

export interface XmlConnectionOptions extends StreamParserOptions {
  /** Bytes queued for the socket above which `congested` turns true. */
  highWaterMark?: number;
}

const DEFAULT_HWM = 1024 * 1024;
// How long a closing stream waits for the peer's </stream:stream> before the socket is destroyed.
const CLOSE_GRACE_MS = 2000;

let nextId = 1;

export class XmlConnection {
  readonly id: string;
  socket: Socket;
  readonly parser: StreamParser;
  private readonly handlers: XmlConnectionHandlers;
  private readonly hwm: number;
  private out = "";
  /** Queued bytes; once there are any, text is queued here too so order holds. */
  private outBytes: Buffer[] = [];
  private outBytesLength = 0;
  private splitter: StanzaSplitter | undefined;
  private lastChunk: Buffer | undefined;
  private readonly maxStanzaBytes: number | undefined;
  private flushScheduled = false;
  private closing = false;
  private closed = false;
  private closeReason: CloseReason = {};
  /**
   * `performance.now()` when the current read began: a stanza handled now
   * arrived then, which is where a router's routing time starts.
   */
  readAt = 0;

  constructor(socket: Socket, handlers: XmlConnectionHandlers, opts: XmlConnectionOptions = {}) {
    this.id = (nextId++).toString(36);
    this.socket = socket;
    this.handlers = handlers;
    this.hwm = opts.highWaterMark ?? DEFAULT_HWM;
    this.maxStanzaBytes = opts.maxStanzaBytes;
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 10_000);
    this.parser = new StreamParser({
      onStreamStart: (h) => handlers.onStreamStart(h),
      onElement: (el, raw) => {
        if (el.local === "error" && el.ns === "http://etherx.jabber.org/streams") {
          this.peerError(el);
          return;
        }
        handlers.onElement(el, raw);
      },
      onStreamEnd: () => this.peerEnded(),
      onError: (err) => this.close(err),
    }, opts);
    this.attach(socket);
  }

  private readonly onData = (chunk: Buffer): void => {
    if (this.closed) return;
    this.readAt = performance.now();
    if (this.splitter) {
      this.splitter.write(chunk);
      return;
    }
    this.lastChunk = chunk;
    this.parser.write(chunk);
    this.lastChunk = undefined;
  };

  private readonly onEnd = (): void => {
    if (this.splitter) this.splitter.end();
    else this.parser.end();
    this.finish();
  };

  /**
   * From now on read this stream with the splitter (packages/xml): for a peer
   * trusted to send well-formed XML, stanzas arrive as bytes with only their
   * top-level tag read. Call it once the peer is known (after the header or
   * the handshake), from a handler or between reads.
   */
  useSplitter(contentNs: string, maxStanzaBytes: number | undefined = this.maxStanzaBytes): void {
    if (this.splitter) return;
    const splitter = new StanzaSplitter({
      onElement: (el, raw) => {
        if (el.local === "error" && el.uri === "http://etherx.jabber.org/streams") {
          this.peerError(el);
          return;
        }
        this.handlers.onElement(el, raw);
      },
      onStreamEnd: () => this.peerEnded(),
      onError: (err) => this.close(err),
    }, { contentNs, ...(maxStanzaBytes === undefined ? {} : { maxStanzaBytes }) });
    this.parser.handOff((rest) => {
      this.splitter = splitter;
      // What the parser had decoded, plus any bytes of a character it was still waiting for.
      const tail = this.lastChunk ? incompleteUtf8Tail(this.lastChunk) : new Uint8Array(0);
      if (rest.length > 0 || tail.length > 0) splitter.write(Buffer.concat([Buffer.from(rest, "utf8"), tail]));
    });
  }

  private readonly onSocketError = (e: Error): void => {
    this.closeReason.socketError ??= e.message;
    this.finish();
  };

  private readonly onSocketClose = (): void => this.finish();

  private attach(socket: Socket): void {
    socket.on("data", this.onData);
    socket.on("end", this.onEnd);
    socket.on("error", this.onSocketError);
    socket.on("close", this.onSocketClose);
  }

  private detach(socket: Socket): void {
    socket.off("data", this.onData);
    socket.off("end", this.onEnd);
    socket.off("error", this.onSocketError);
    socket.off("close", this.onSocketClose);
  }

  /**
   * Moves the stream onto a new socket layered over the current one (STARTTLS,
   * RFC 6120 §5.4.3.3): the caller has written `<proceed/>` with `sendNow`,
   * wraps `socket` in a TLSSocket and hands it over. The parser expects a new
   * stream header, as after any stream restart.
   */
  upgrade(next: Socket): void {
    this.detach(this.socket);
    this.socket = next;
    this.attach(next);
    this.parser.reset();
  }

  /** Writes at once, bypassing the per-tick batch (before a socket upgrade). */
  sendNow(text: string): void {
    this.flush();
    if (!this.socket.destroyed) this.socket.write(text);
  }

  get isOpen(): boolean {
    return !this.closing && !this.closed;
  }

  /** True when the peer reads slower than we write; the caller should stop feeding it. */
  get congested(): boolean {
    return this.socket.writableLength + this.out.length + this.outBytesLength > this.hwm;
  }

  /** Bytes written but not yet sent: the socket's buffer and this turn's batch (text counted by length). */
  get queuedBytes(): number {
    return this.socket.writableLength + this.out.length + this.outBytesLength;
  }

  /** Callbacks of this turn's batch (see `send`). */
  private writtenWaiters: Array<() => void> = [];

  /**
   * Queue text for the socket. Everything queued during one turn of the event
   * loop leaves in one write: a burst of stanzas from one socket read becomes
   * one syscall per destination, not one per stanza. `onWritten` runs once
   * the kernel took the batch holding `data` (the socket's write callback):
   * a process that dies after that has not lost it (s2s confirms routes so).
   */
  send(data: string | Buffer, onWritten?: () => void): void {
    if (this.closed || this.closing) return;
    if (onWritten !== undefined) this.writtenWaiters.push(onWritten);
    if (typeof data === "string" && this.outBytes.length === 0) {
      this.out = this.out.length === 0 ? data : this.out + data;
    } else {
      if (this.out.length > 0) {
        this.pushBytes(Buffer.from(this.out, "utf8"));
        this.out = "";
      }
      this.pushBytes(typeof data === "string" ? Buffer.from(data, "utf8") : data);
    }
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      process.nextTick(this.flush);
    }
  }

  private pushBytes(b: Buffer): void {
    this.outBytes.push(b);
    this.outBytesLength += b.length;
  }

  private readonly flush = (): void => {
    this.flushScheduled = false;
    if (this.socket.destroyed) return;
    let cb: ((err?: Error | null) => void) | undefined;
    if (this.writtenWaiters.length > 0) {
      const waiters = this.writtenWaiters;
      this.writtenWaiters = [];
      cb = (err) => {
        if (!err) for (const w of waiters) w();
      };
    }
    if (this.outBytes.length > 0) {
      // One write for the whole turn's output; the views into other sockets'
      // reads are copied once here and released.
      const bytes = this.outBytes.length === 1 ? this.outBytes[0]! : Buffer.concat(this.outBytes, this.outBytesLength);
      this.outBytes = [];
      this.outBytesLength = 0;
      this.socket.write(bytes, cb);
    } else if (this.out.length > 0) {
      const text = this.out;
      this.out = "";
      this.socket.write(text, cb);
    }
    this.wakeDrainWaiters();
  };

  private drainWaiters: Array<() => void> = [];
  private drainListening = false;

  /**
   * Calls `fn` once what is queued has left: at the socket's 'drain', or at
   * once after a flush the socket took whole. (The socket says 'drain' only
   * after a write it refused; a batch the kernel took at once would leave
   * the waiter, and a sender paused on it, waiting for ever.)
   */
  onceDrained(fn: () => void): void {
    if (!this.congested) {
      fn();
      return;
    }
    this.drainWaiters.push(fn);
    this.listenForDrain();
  }

  private listenForDrain(): void {
    if (this.drainListening) return;
    this.drainListening = true;
    this.socket.once("drain", () => {
      this.drainListening = false;
      this.wakeDrainWaiters();
    });
  }

  /** Runs the waiters once nothing is congested any more; `always` (the connection is gone) runs them regardless. */
  private wakeDrainWaiters(always = false): void {
    if (this.drainWaiters.length === 0) return;
    if (this.congested && !always) {
      this.listenForDrain();
      return;
    }
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w();
  }

  /**
   * Ends the stream: optional stream error, then the closing tag, then the
   * socket once the peer has answered (or after a grace period).
   */
  close(error?: StreamError): void {
    if (this.closing || this.closed) return;
    this.closing = true;
    if (error) this.closeReason.error ??= error;
    if (!this.socket.destroyed) {
      this.flush();
      // A stream error before any header of ours would be unparseable; callers
      // that may fail before replying send their header first (RFC 6120 §4.9.1.1).
      this.socket.write((error ? error.toXml() : "") + streamFooter());
      this.socket.end();
      setTimeout(() => this.socket.destroy(), CLOSE_GRACE_MS).unref();
    }
    this.finish();
  }

  /** Drops the connection without a word (process shutdown, tests of crash paths). */
  destroy(): void {
    this.socket.destroy();
    this.finish();
  }

  private peerEnded(): void {
    this.closeReason.clean = true;
    this.close();
  }

  private peerError(el: Element): void {
    const { condition, text } = readError(el);
    this.closeReason.error ??= new StreamError(streamCondition(condition), text);
    this.closeReason.remote = true;
    this.close();
  }

  private finish(): void {
    if (this.closed) return;
    this.closed = true;
    this.closing = true;
    this.handlers.onClose(this.closeReason);
    // Whoever waited for this one to catch up (a sender the router paused) goes on.
    this.wakeDrainWaiters(true);
  }
}
