/**
 * Who gets a client stream, decided before the stream costs anything:
 *
 * - at the TCP connection, before TLS: an address banned for failed
 *   authentications (bans.ts) or with `limits.maxConnectionsPerAddress`
 *   connections already is refused;
 * - then (after the handshake on the direct TLS port): beyond
 *   `maxConnections` the client is refused; while the c2s cannot serve (no
 *   router, no SM for its domain or no xdb) it is held, paused, for up to
 *   `limits.unreadyHoldMs`, and refused if they do not come back by then.
 *
 * A refusal is our stream header and a stream error (RFC 6120 §4.9.1.1). On
 * the direct TLS port nothing can be said before a TLS handshake, and a
 * refused address must not cost one: those connections are closed unanswered.
 */
import { randomBytes } from "node:crypto";
import type { Socket } from "node:net";
import type { Logger } from "pino";
import type { Metrics } from "@jabberfarm/metrics";
import { NS, StreamError, streamFooter, streamHeader } from "@jabberfarm/xml";
import { addressKey, bannedError, type AuthBans } from "./bans.js";
import type { C2sConfig } from "./config.js";

export interface AdmissionOptions {
  config: C2sConfig;
  /** Our domain, for the stream header of a refusal. */
  domain: string;
  log: Logger;
  bans: AuthBans;
  metrics?: Metrics | undefined;
  /** Client streams open now. */
  clientCount(): number;
}

/** Why a connection was refused: the `reason` of jabberfarm_refused_connections_total. */
export type RefusalReason = "banned" | "per-address" | "max-connections" | "not-ready";

interface Held {
  socket: AdmittedConnection;
  start: () => void;
  since: number;
}

/**
 * A connection waiting to be served: a TCP socket, or a WebSocket seen
 * through an adapter (websocket-listener.ts) that answers a refusal in
 * RFC 7395 frames.
 */
export interface AdmittedConnection {
  readonly remoteAddress?: string | undefined;
  readonly destroyed: boolean;
  pause(): unknown;
  resume(): unknown;
  once(event: "close", fn: () => void): unknown;
  /** Says `error` in this connection's framing (our header, the error, the end), or drops it without one. */
  refuseWith?(error: StreamError | undefined): void;
}

export class Admission {
  private readonly perAddress = new Map<string, number>();
  private readonly held = new Set<Held>();
  private serving = true;

  constructor(private readonly o: AdmissionOptions) {}

  /**
   * A new TCP connection, before any TLS. False when it was refused (and
   * answered or closed); otherwise it counts for its address until it closes.
   */
  connected(socket: Socket, directTls: boolean): boolean {
    const ip = socket.remoteAddress ?? "unknown";
    const { bans } = this.o;
    const bannedMs = bans.addressBannedFor(ip);
    if (bannedMs > 0) {
      this.refuse(socket, directTls ? undefined : bannedError(bannedMs), "banned", "debug", { ip });
      return false;
    }
    if (bans.isExempt(ip)) return true;
    const key = addressKey(ip);
    const n = this.perAddress.get(key) ?? 0;
    const max = this.o.config.limits.maxConnectionsPerAddress;
    if (n >= max) {
      const error = new StreamError("policy-violation", "too many connections from your address");
      // One line per refusal would let one address flood the log: debug, and counted in the metric.
      this.refuse(socket, directTls ? undefined : error, "per-address", "debug", { ip, max });
      return false;
    }
    this.perAddress.set(key, n + 1);
    socket.once("close", () => {
      const left = (this.perAddress.get(key) ?? 1) - 1;
      if (left <= 0) this.perAddress.delete(key);
      else this.perAddress.set(key, left);
    });
    return true;
  }

  /** A connection that may now speak XMPP (after TLS on the direct port): `start` serves it, now or once the c2s can. */
  admit(socket: AdmittedConnection, start: () => void): void {
    const max = this.o.config.maxConnections;
    if (this.o.clientCount() + this.held.size >= max) {
      this.refuse(socket, new StreamError("resource-constraint", "too many connections; try again later"), "max-connections", "warn", { ip: socket.remoteAddress, max });
      return;
    }
    if (this.serving) {
      start();
      return;
    }
    if (this.o.config.limits.unreadyHoldMs === 0) {
      this.refuse(socket, notReady(), "not-ready", "info", { ip: socket.remoteAddress });
      return;
    }
    // Paused: what the client sends waits in the socket until it is served.
    socket.pause();
    const h: Held = { socket, start, since: Date.now() };
    this.held.add(h);
    socket.once("close", () => this.held.delete(h));
  }

  /** Whether the c2s can serve new clients now; held ones start when it can again. */
  setServing(serving: boolean): void {
    if (serving === this.serving) return;
    this.serving = serving;
    if (!serving) return;
    for (const h of [...this.held]) {
      this.held.delete(h);
      if (h.socket.destroyed) continue;
      h.start();
      h.socket.resume();
    }
  }

  get isServing(): boolean {
    return this.serving;
  }

  /** Connections waiting for the c2s to serve again. */
  get heldCount(): number {
    return this.held.size;
  }

  /** Refuses held clients that waited their time. */
  sweep(now: number = Date.now()): void {
    const hold = this.o.config.limits.unreadyHoldMs;
    for (const h of [...this.held]) {
      if (now - h.since < hold) continue;
      this.held.delete(h);
      this.refuse(h.socket, notReady(), "not-ready", "info", { ip: h.socket.remoteAddress, heldMs: now - h.since });
    }
  }

  /** Stopping: held clients are told the server is going. */
  stop(): void {
    for (const h of [...this.held]) this.refuse(h.socket, new StreamError("system-shutdown", "the server is stopping"));
    this.held.clear();
  }

  /** Our header and `error`, then the end; or, without an error to send (before TLS on the direct port), the socket closed. */
  private refuse(socket: Socket | AdmittedConnection, error: StreamError | undefined, reason?: RefusalReason, level: "debug" | "info" | "warn" = "info", fields: object = {}): void {
    if (reason !== undefined) {
      this.o.metrics?.refusedConnections.inc({ reason });
      this.o.log[level]({ ...fields, reason, condition: error?.condition }, "connection refused");
    }
    if ("refuseWith" in socket && socket.refuseWith) {
      socket.refuseWith(error);
      return;
    }
    const s = socket as Socket;
    if (error === undefined) {
      s.destroy();
      return;
    }
    s.end(streamHeader({ contentNs: NS.CLIENT, from: this.o.domain, id: randomBytes(12).toString("base64url"), version: "1.0" }) +
      error.toXml() + streamFooter());
    setTimeout(() => s.destroy(), 2000).unref();
  }
}

/** RFC 6120 §4.9.3.14 points at internal-server-error when what failed is inside the service. */
function notReady(): StreamError {
  return new StreamError("internal-server-error", "the server cannot reach its session manager or storage right now; try again shortly");
}
