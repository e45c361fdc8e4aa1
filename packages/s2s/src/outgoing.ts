/**
 * One outgoing stream, from one of our domains to one remote domain: it
 * resolves the remote's endpoints and tries them in order until one
 * authenticates (negotiate.ts), holding stanzas meanwhile (a bounded queue);
 * then writes them, each reported written once the kernel took it. What
 * fails to leave is handed back to the service (to retry or bounce), never
 * dropped in silence.
 */
import type { Logger } from "pino";
import type { XmlConnection } from "@jabberfarm/component";
import type { Element } from "@jabberfarm/xml";
import type { S2sTls } from "./certs.js";
import type { S2sConfig } from "./config.js";
import { NegotiationFailed, negotiate, type AuthMethod } from "./negotiate.js";
import { NoService, type DomainResolver } from "./resolve.js";
import { StreamClosed } from "./inbox.js";
import { NS_SM } from "./dialback.js";

/** A stanza on its way out. */
export interface OutItem {
  /** Its text in the server stream's namespace. */
  text: string;
  stanza: Element;
  /** Streams it was tried on and lost with (the service gives up after a few). */
  attempts: number;
  /** Settled: written to the remote server's socket, or bounced (the route is acknowledged then). */
  done(): void;
}

export type FailCondition = "remote-server-not-found" | "remote-server-timeout";

export interface OutgoingDeps {
  config: S2sConfig;
  tls: S2sTls;
  resolver: DomainResolver;
  log: Logger;
  /** The stream could not be set up: every item still held is given back with the condition. */
  onFailed(stream: OutgoingStream, items: OutItem[], condition: FailCondition, why: string): void;
  /** A live stream closed: items not known to be written are given back. */
  onClosed(stream: OutgoingStream, items: OutItem[]): void;
  onReady(stream: OutgoingStream): void;
}

export class OutgoingStream {
  state: "connecting" | "ready" | "closed" = "connecting";
  auth: AuthMethod | undefined;
  private conn: XmlConnection | undefined;
  private readonly queue: OutItem[] = [];
  private readonly unwritten = new Set<OutItem>();
  /** With XEP-0198: written, not yet acknowledged by the remote (in order), and how many it acknowledged so far. */
  /** Whether the remote acknowledges what it handled (XEP-0198). */
  sm = false;
  /** The stream began with TLS (an `_xmpps-server` target, XEP-0368) rather than STARTTLS. */
  directTls = false;
  private readonly unacked: OutItem[] = [];
  private acked = 0;
  private requestScheduled = false;
  private lastWrite = Date.now();
  private lastStanza = Date.now();
  private timer: NodeJS.Timeout | undefined;

  constructor(readonly local: string, readonly remote: string, private readonly deps: OutgoingDeps) {}

  get key(): string {
    return `${this.local} ${this.remote}`;
  }

  get queued(): number {
    return this.queue.length;
  }

  start(): void {
    void this.setUp();
  }

  /** False when the queue is full (the caller bounces the stanza). */
  enqueue(item: OutItem): boolean {
    if (this.state === "ready") {
      this.write(item);
      return true;
    }
    if (this.state === "closed" || this.queue.length >= this.deps.config.limits.maxQueued) return false;
    this.queue.push(item);
    return true;
  }

  close(): void {
    if (this.state === "closed") return;
    this.conn?.close();
  }

  destroy(): void {
    this.conn?.destroy();
  }

  private write(item: OutItem): void {
    this.lastWrite = this.lastStanza = Date.now();
    if (this.sm) {
      // Settled when the remote says it handled it, not when the kernel took it.
      this.unacked.push(item);
      this.conn!.send(item.text);
      if (!this.requestScheduled) {
        this.requestScheduled = true;
        setImmediate(() => {
          this.requestScheduled = false;
          if (this.state === "ready") this.conn!.send(`<r xmlns='${NS_SM}'/>`);
        });
      }
      return;
    }
    this.unwritten.add(item);
    this.conn!.send(item.text, () => {
      if (this.unwritten.delete(item)) item.done();
    });
  }

  /** `<a h='N'/>`: the first N stanzas of this stream are handled by the remote. */
  private onAck(h: number): void {
    if (!Number.isSafeInteger(h) || h < this.acked) return;
    let n = Math.min(h - this.acked, this.unacked.length);
    this.acked += n;
    while (n-- > 0) this.unacked.shift()!.done();
  }

  private async setUp(): Promise<void> {
    const { config, log } = this.deps;
    const deadline = Date.now() + config.timeouts.setupMs;
    let endpoints;
    try {
      endpoints = await this.deps.resolver.endpoints(this.remote);
    } catch (err) {
      this.fail("remote-server-not-found", err instanceof NoService ? err.message : `DNS: ${(err as Error).message}`);
      return;
    }
    if (endpoints.length === 0) {
      this.fail("remote-server-not-found", `no address for ${this.remote}`);
      return;
    }
    let last: { condition: FailCondition; why: string } = { condition: "remote-server-not-found", why: "" };
    for (const ep of endpoints) {
      if (Date.now() >= deadline) {
        last = { condition: "remote-server-timeout", why: "setup took too long" };
        break;
      }
      try {
        const done = await negotiate(ep, {
          local: this.local, remote: this.remote, tls: this.deps.tls, requireTls: config.tls.required,
          dialbackSecret: config.dialbackSecret, maxStanzaBytes: config.limits.maxStanzaBytes, deadline, streamManagement: config.streamManagement,
        });
        this.sm = done.sm;
        this.directTls = ep.directTls;
        this.goLive(done.conn, done.inbox, done.auth);
        log.info({ local: this.local, remote: this.remote, endpoint: `${ep.host}:${ep.port}`, address: ep.address, auth: done.auth, directTls: ep.directTls, sm: done.sm }, "outgoing stream up");
        return;
      } catch (err) {
        const timeout = err instanceof NegotiationFailed ? err.condition === "remote-server-timeout"
          : err instanceof StreamClosed && err.reason.error?.condition === "connection-timeout";
        last = { condition: timeout ? "remote-server-timeout" : "remote-server-not-found", why: (err as Error).message };
        log.info({ local: this.local, remote: this.remote, endpoint: `${ep.host}:${ep.port}`, err: (err as Error).message }, "outgoing stream attempt failed");
      }
    }
    this.fail(last.condition, last.why);
  }

  private goLive(conn: XmlConnection, inbox: import("./inbox.js").Inbox, auth: AuthMethod): void {
    this.conn = conn;
    this.auth = auth;
    this.state = "ready";
    // An outgoing stream carries nothing back but dialback answers and errors (XmlConnection reads those).
    inbox.live = (el) => {
      if (el.ns === NS_SM && el.local === "a") this.onAck(Number(el.attrs.h));
      else this.deps.log.debug({ remote: this.remote, element: el.name }, "ignored an element on an outgoing stream");
    };
    const closed = (): void => {
      if (this.state === "closed") return;
      this.state = "closed";
      clearInterval(this.timer);
      const back = [...this.unacked, ...this.unwritten, ...this.queue];
      this.unacked.length = 0;
      this.unwritten.clear();
      this.queue.length = 0;
      this.deps.onClosed(this, back);
    };
    // The inbox sees the close (it is the connection's handler); poll its state through the socket too.
    conn.socket.once("close", closed);
    const prevClose = inbox.close.bind(inbox);
    inbox.close = (r) => {
      prevClose(r);
      closed();
    };
    const { keepaliveSeconds, idleSeconds } = this.deps.config.timeouts;
    this.timer = setInterval(() => {
      const now = Date.now();
      if (now - this.lastStanza > idleSeconds * 1000) {
        this.deps.log.info({ local: this.local, remote: this.remote }, "outgoing stream idle; closing it");
        conn.close();
      } else if (now - this.lastWrite > keepaliveSeconds * 1000) {
        this.lastWrite = now;
        conn.send(" ");
      }
    }, Math.min(keepaliveSeconds, idleSeconds) * 250);
    this.timer.unref();
    const held = this.queue.splice(0);
    for (const item of held) this.write(item);
    this.deps.onReady(this);
  }

  private fail(condition: FailCondition, why: string): void {
    this.state = "closed";
    const items = this.queue.splice(0);
    this.deps.onFailed(this, items, condition, why);
  }
}
