/**
 * The c2s's client listeners: STARTTLS (RFC 6120), direct TLS (XEP-0368)
 * and WebSocket with host-meta (RFC 7395, XEP-0156; websocket-listener.ts).
 * Each accepted connection passes the admission (bans, limits, readiness)
 * and becomes a client stream over its transport: one session path for all.
 */
import { createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { createServer as createTlsServer, type TLSSocket } from "node:tls";
import type { Logger } from "pino";
import type { WebSocket } from "ws";
import type { Admission } from "./admission.js";
import type { ClientContext } from "./client-context.js";
import { ClientStream } from "./client-stream.js";
import type { C2sConfig, ListenerConfig } from "./config.js";
import { TcpTransport } from "./tcp-transport.js";
import { WebSocketListener } from "./websocket-listener.js";
import { WebSocketTransport } from "./websocket-transport.js";

// A direct TLS handshake must finish within this; slowloris on the handshake costs memory.
const TLS_HANDSHAKE_TIMEOUT_MS = 10_000;

export interface C2sPorts {
  starttls?: number;
  directTls?: number;
  /** The WebSocket and host-meta listener (RFC 7395, XEP-0156). */
  websocket?: number;
}

/** What the listeners need from their c2s (server.ts). */
export interface ListenerHost {
  readonly config: C2sConfig;
  readonly domain: string;
  readonly log: Logger;
  readonly admission: Admission;
  /** The certificate every TLS listener presents. */
  readonly tlsMaterial: { cert: string; key: string };
  /** What each client stream gets as its context. */
  readonly context: ClientContext;
  /** False once stopping: new connections are dropped. */
  isAccepting(): boolean;
  /** A new client stream to keep. */
  adopt(client: ClientStream): void;
}

export class ClientListeners {
  private readonly servers: Server[] = [];
  private websocket: WebSocketListener | undefined;

  constructor(private readonly host: ListenerHost) {}

  /** The WebSocket listener's own URL (scheme, address, port, path), when it is on. */
  get websocketUrl(): string | undefined {
    return this.websocket?.url;
  }

  async listen(): Promise<C2sPorts> {
    const { config, admission, log, tlsMaterial } = this.host;
    const ports: C2sPorts = {};
    const { starttls, directTls, websocket } = config.listeners;
    // Beyond the soft limit (answered with a stream error) the kernel-level
    // cap drops floods before they cost a TLS handshake.
    const hardCap = config.maxConnections + 64;
    if (starttls) {
      const server = createServer((socket) => {
        if (admission.connected(socket, false)) this.accept(socket, false);
      });
      server.maxConnections = hardCap;
      ports.starttls = await this.bind(server, starttls, "starttls");
    }
    if (directTls) {
      const server = createTlsServer({
        ...tlsMaterial,
        minVersion: "TLSv1.2",
        // XEP-0368 §3.2: direct TLS clients announce xmpp-client.
        ALPNProtocols: ["xmpp-client"],
        handshakeTimeout: TLS_HANDSHAKE_TIMEOUT_MS,
      }, (socket) => this.accept(socket, true));
      server.maxConnections = hardCap;
      // Before the TLS listener sees it: a refused address costs no handshake.
      server.prependListener("connection", (socket: Socket) => void admission.connected(socket, true));
      server.on("tlsClientError", (err, socket: TLSSocket) => {
        // No address: a connection the admission closed before its handshake.
        log[socket.remoteAddress === undefined ? "debug" : "info"]({ ip: socket.remoteAddress, err: err.message }, "direct TLS handshake failed");
      });
      ports.directTls = await this.bind(server, directTls, "directTls");
    }
    if (websocket) {
      const listener = new WebSocketListener({
        config, tls: tlsMaterial, log, admission, domain: this.host.domain,
        accepting: () => this.host.isAccepting(),
        accept: (ws, req) => this.acceptWebSocket(ws, req.socket.remoteAddress ?? "unknown", req.socket.remotePort),
      });
      ports.websocket = await listener.listen(websocket);
      this.websocket = listener;
    }
    return ports;
  }

  /** Stops listening; resolves once every listener is closed (open connections are the streams' to end). */
  close(): Promise<void> {
    return Promise.all([
      ...this.servers.map((s) => new Promise<void>((r) => s.close(() => r()))),
      ...(this.websocket ? [this.websocket.close()] : []),
    ]).then(() => {});
  }

  private bind(server: Server, l: ListenerConfig, kind: string): Promise<number> {
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen({ host: l.host, port: l.port }, () => {
        server.off("error", reject);
        server.on("error", (err) => this.host.log.error({ err, kind }, "listener error"));
        this.servers.push(server);
        const port = (server.address() as AddressInfo).port;
        this.host.log.info({ kind, host: l.host, port }, "listening for clients");
        resolve(port);
      });
    });
  }

  private accept(socket: Socket, directTls: boolean): void {
    socket.on("error", () => {});
    if (!this.host.isAccepting()) {
      socket.destroy();
      return;
    }
    const { limits } = this.host.config;
    this.host.admission.admit(socket, () => {
      const client = new ClientStream((handlers) => new TcpTransport(socket, handlers, {
        directTls, maxStanzaBytes: limits.maxStanzaBytes, highWaterMark: limits.maxQueuedBytes,
        // Whatever the client wrote (prefixes, CDATA...), what goes on into the
        // farm is the canonical element re-serialised (docs/security.md).
        canonical: true,
      }), { directTls, secure: directTls, log: this.host.log }, this.host.context);
      this.host.adopt(client);
      client.log.debug({ directTls }, "client connected");
    });
  }

  /** A WebSocket past its upgrade and the admission: a client stream like the others (RFC 7395). */
  private acceptWebSocket(ws: WebSocket, ip: string, port: number | undefined): void {
    if (!this.host.isAccepting()) {
      ws.terminate();
      return;
    }
    const { limits, websocket } = this.host.config;
    const client = new ClientStream((handlers) => new WebSocketTransport(ws, handlers, {
      remoteAddress: ip, remotePort: port, maxStanzaBytes: limits.maxStanzaBytes, highWaterMark: limits.maxQueuedBytes,
      pingIntervalMs: websocket.pingIntervalMs,
    }), { directTls: false, secure: websocket.tls || websocket.trustProxyTls, log: this.host.log }, this.host.context);
    this.host.adopt(client);
    client.log.debug("WebSocket client connected");
  }
}
