/**
 * The c2s's HTTP(S) listener for web clients: RFC 7395 WebSocket upgrades
 * on one path (the `xmpp` subprotocol, origins from an allow-list, a
 * message size limit), and XEP-0156 host-meta with CORS, so that a page on
 * any origin can discover the endpoint. With `websocket.tls` it is wss,
 * with the certificate the TLS listeners present.
 *
 * The WebSocket protocol itself is the `ws` package's (docs/websocket.md
 * says why that one); what travels inside is websocket-transport.ts's.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo, Socket } from "node:net";
import type { Duplex } from "node:stream";
import type { Logger } from "pino";
import { WebSocketServer, type WebSocket } from "ws";
import { escapeAttr, type StreamError } from "@jabberfarm/xml";
import type { Admission, AdmittedConnection } from "./admission.js";
import type { C2sConfig, ListenerConfig } from "./config.js";
import { hostMetaJson, hostMetaXrd } from "./host-meta.js";
import { NS_FRAMING, WS_CLOSE, standalone } from "./websocket-transport.js";

export interface WebSocketListenerDeps {
  config: C2sConfig;
  tls: { cert: string; key: string };
  log: Logger;
  admission: Admission;
  domain: string;
  /** Whether new clients are taken (false once stopping). */
  accepting(): boolean;
  /** A WebSocket that may speak XMPP now. */
  accept(ws: WebSocket, req: IncomingMessage): void;
}

const CORS = {
  "Access-Control-Allow-Origin": "*",
  "Access-Control-Allow-Methods": "GET, OPTIONS",
  "Access-Control-Allow-Headers": "Accept, Content-Type",
  "Access-Control-Max-Age": "86400",
} as const;

const HOST_HEADER = /^[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/;

export class WebSocketListener {
  readonly server: Server;
  private readonly wss: WebSocketServer;
  private readonly cfg: C2sConfig["websocket"];
  /** This listener's own URL (scheme, bound address and port, path), once listening. */
  url = "";

  constructor(private readonly d: WebSocketListenerDeps) {
    this.cfg = d.config.websocket;
    const onRequest = (req: IncomingMessage, res: ServerResponse): void => this.request(req, res);
    this.server = this.cfg.tls
      ? createHttpsServer({ cert: d.tls.cert, key: d.tls.key, minVersion: "TLSv1.2" }, onRequest)
      : createHttpServer(onRequest);
    this.server.maxConnections = d.config.maxConnections + 64;
    this.server.headersTimeout = 10_000;
    this.server.requestTimeout = 15_000;
    // Bans and per-address limits before TLS or HTTP cost anything, as on the other listeners.
    this.server.prependListener("connection", (socket: Socket) => void d.admission.connected(socket, true));
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: this.cfg.maxMessageBytes,
      perMessageDeflate: false,
      clientTracking: false,
      handleProtocols: () => "xmpp",
    });
    this.server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => this.upgrade(req, socket, head));
  }

  async listen(l: ListenerConfig): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen({ host: l.host, port: l.port }, () => {
        this.server.off("error", reject);
        resolve();
      });
    });
    this.server.on("error", (err) => this.d.log.error({ err, kind: "websocket" }, "listener error"));
    const port = (this.server.address() as AddressInfo).port;
    const host = l.host.includes(":") ? `[${l.host}]` : l.host;
    this.url = `${this.cfg.tls ? "wss" : "ws"}://${host}:${port}${this.cfg.path}`;
    this.d.log.info({ kind: "websocket", host: l.host, port, url: this.url }, "listening for clients");
    return port;
  }

  /** The URL host-meta names: the configured one, else this listener as the client reached it. */
  private urlFor(req: IncomingMessage): string {
    if (this.cfg.publicUrl) return this.cfg.publicUrl;
    const host = req.headers.host;
    if (host !== undefined && HOST_HEADER.test(host)) return `${this.cfg.tls ? "wss" : "ws"}://${host}${this.cfg.path}`;
    return this.url;
  }

  private request(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? "/").split("?")[0];
    if (path === "/.well-known/host-meta" || path === "/.well-known/host-meta.json") {
      if (req.method === "OPTIONS") {
        res.writeHead(204, CORS).end();
        return;
      }
      if (req.method !== "GET" && req.method !== "HEAD") {
        res.writeHead(405, { ...CORS, Allow: "GET, HEAD, OPTIONS" }).end();
        return;
      }
      const json = path.endsWith(".json");
      const body = json ? hostMetaJson(this.urlFor(req)) : hostMetaXrd(this.urlFor(req));
      res.writeHead(200, {
        ...CORS,
        "Content-Type": json ? "application/json" : "application/xrd+xml; charset=utf-8",
        "Cache-Control": "max-age=300",
      });
      res.end(req.method === "HEAD" ? undefined : body);
      return;
    }
    if (path === this.cfg.path) {
      res.writeHead(426, { "Content-Type": "text/plain", Upgrade: "websocket" }).end("XMPP over WebSocket (RFC 7395): upgrade with the xmpp subprotocol\n");
      return;
    }
    res.writeHead(404, { "Content-Type": "text/plain" }).end("not found\n");
  }

  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on("error", () => {});
    const refuse = (status: string, text: string): void => {
      this.d.log.info({ ip: req.socket.remoteAddress, origin: req.headers.origin, status, reason: text }, "WebSocket upgrade refused");
      socket.end(`HTTP/1.1 ${status}\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(text) + 1}\r\nConnection: close\r\n\r\n${text}\n`);
    };
    if (!this.d.accepting()) return refuse("503 Service Unavailable", "this server is stopping");
    if ((req.url ?? "/").split("?")[0] !== this.cfg.path) return refuse("404 Not Found", `XMPP over WebSocket is at ${this.cfg.path}`);
    const origin = req.headers.origin;
    if (origin !== undefined && !this.originAllowed(origin)) return refuse("403 Forbidden", "this origin may not connect (websocket.allowedOrigins)");
    const offered = (req.headers["sec-websocket-protocol"] ?? "").split(",").map((p) => p.trim());
    // RFC 7395 §3.1: without the xmpp subprotocol there is no XMPP to speak.
    if (!offered.includes("xmpp")) return refuse("400 Bad Request", "the xmpp subprotocol is required (RFC 7395 §3.1)");
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on("error", () => {});
      this.d.admission.admit(admitted(ws, req, this.d.domain), () => this.d.accept(ws, req));
    });
  }

  private originAllowed(origin: string): boolean {
    const list = this.cfg.allowedOrigins;
    return list.includes("*") || list.includes(origin.toLowerCase()) || list.includes(origin);
  }

  /** Stops taking connections; open WebSockets are ended by their client streams. */
  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** A WebSocket as the admission sees it, refused in RFC 7395 frames. */
function admitted(ws: WebSocket, req: IncomingMessage, domain: string): AdmittedConnection {
  return {
    remoteAddress: req.socket.remoteAddress,
    get destroyed() {
      return ws.readyState !== ws.OPEN;
    },
    pause: () => ws.pause(),
    resume: () => ws.resume(),
    once: (_event, fn) => ws.once("close", fn),
    refuseWith(error: StreamError | undefined) {
      if (error === undefined || ws.readyState !== ws.OPEN) {
        ws.terminate();
        return;
      }
      ws.resume();
      ws.send(`<open xmlns='${NS_FRAMING}' from='${escapeAttr(domain)}' version='1.0'/>`);
      ws.send(standalone(error.toXml()));
      ws.send(`<close xmlns='${NS_FRAMING}'/>`);
      ws.close(WS_CLOSE.normal);
      setTimeout(() => ws.terminate(), 2000).unref();
    },
  };
}

