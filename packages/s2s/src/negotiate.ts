/**
 * The initiating side's negotiation on one connection (RFC 6120 §4-§6,
 * XEP-0220, XEP-0368): TCP or direct TLS, the stream header, STARTTLS when
 * offered (required unless `tls.required` is off), then SASL EXTERNAL when
 * the receiving server's certificate is valid for its domain and it offers
 * EXTERNAL, else dialback. `verify` mode stops after TLS and asks the
 * authoritative server whether a dialback key is right (XEP-0220 §2.2).
 */
import { connect as tcpConnect, type Socket } from "node:net";
import { connect as tlsConnect, type TLSSocket } from "node:tls";
import { XmlConnection } from "@jabberfarm/component";
import { NS, StreamError, escapeAttr, escapeText, streamHeader, type Element } from "@jabberfarm/xml";
import { peerValidFor, type S2sTls } from "./certs.js";
import { NS_DIALBACK, NS_SM, dialbackKey } from "./dialback.js";
import { Inbox, StreamClosed } from "./inbox.js";
import type { Endpoint } from "./resolve.js";

export type AuthMethod = "external" | "dialback";

export interface NegotiateOptions {
  local: string;
  remote: string;
  tls: S2sTls;
  requireTls: boolean;
  dialbackSecret: string;
  maxStanzaBytes: number;
  deadline: number;
  /** Ask for XEP-0198 acknowledgements when offered. */
  streamManagement?: boolean;
}

export interface Negotiated {
  conn: XmlConnection;
  inbox: Inbox;
  auth: AuthMethod;
  secure: boolean;
  /** XEP-0198 is on: the remote acknowledges what it handled (`<a h/>`). */
  sm: boolean;
}

export class NegotiationFailed extends Error {
  constructor(message: string, readonly condition: "remote-server-not-found" | "remote-server-timeout" | "not-authorized" | "policy-violation") {
    super(message);
  }
}

/** The stream header an s2s sends (with the dialback namespace declared, XEP-0220 §2.1). */
export function serverHeader(from: string, to: string | undefined, id?: string): string {
  const h = streamHeader({ contentNs: NS.SERVER, from, to, id, version: "1.0" });
  return h.slice(0, -1) + ` xmlns:db='${NS_DIALBACK}'>`;
}

function openSocket(ep: Endpoint, o: NegotiateOptions): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket: Socket = ep.directTls
      ? tlsConnect({
        host: ep.address, port: ep.port, servername: o.remote, cert: o.tls.cert, key: o.tls.key, ALPNProtocols: ["xmpp-server"],
        rejectUnauthorized: false, ...(o.tls.ca ? { ca: o.tls.ca } : {}),
      })
      : tcpConnect({ host: ep.address, port: ep.port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new NegotiationFailed(`no connection to ${ep.address}:${ep.port} in time`, "remote-server-timeout"));
    }, Math.max(1, o.deadline - Date.now()));
    socket.once(ep.directTls ? "secureConnect" : "connect", () => {
      clearTimeout(timer);
      socket.removeAllListeners("error");
      resolve(socket);
    });
    socket.once("error", (e) => {
      clearTimeout(timer);
      reject(new NegotiationFailed(`${ep.address}:${ep.port}: ${e.message}`, "remote-server-not-found"));
    });
  });
}

function startTlsOver(plain: Socket, o: NegotiateOptions): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({
      socket: plain, servername: o.remote, cert: o.tls.cert, key: o.tls.key, rejectUnauthorized: false, ...(o.tls.ca ? { ca: o.tls.ca } : {}),
    });
    const timer = setTimeout(() => {
      s.destroy();
      reject(new NegotiationFailed(`TLS with ${o.remote}: no handshake in time`, "remote-server-timeout"));
    }, Math.max(1, o.deadline - Date.now()));
    s.once("secureConnect", () => {
      clearTimeout(timer);
      s.removeAllListeners("error");
      resolve(s);
    });
    s.once("error", (e) => {
      clearTimeout(timer);
      reject(new NegotiationFailed(`TLS with ${o.remote}: ${e.message}`, "remote-server-not-found"));
    });
  });
}

function isFeatures(el: Element): boolean {
  return el.local === "features" && el.ns === NS.STREAMS;
}

/** XEP-0198 when the remote offers it (no resumption: a lost stream's unacknowledged stanzas go again on a new one). */
async function enableSm(conn: XmlConnection, inbox: Inbox, features: Element, o: NegotiateOptions): Promise<boolean> {
  if (!o.streamManagement || !features.getChild("sm", NS_SM)) return false;
  conn.send(`<enable xmlns='${NS_SM}'/>`);
  for (;;) {
    const el = await inbox.element(o.deadline);
    if (el.ns !== NS_SM) continue;
    return el.local === "enabled";
  }
}

/** Connects to one endpoint and authenticates; throws NegotiationFailed or StreamClosed. */
export async function negotiate(ep: Endpoint, o: NegotiateOptions): Promise<Negotiated>;
export async function negotiate(ep: Endpoint, o: NegotiateOptions, verify: { id: string; key: string }): Promise<boolean>;
export async function negotiate(ep: Endpoint, o: NegotiateOptions, verify?: { id: string; key: string }): Promise<Negotiated | boolean> {
  const socket = await openSocket(ep, o);
  const inbox = new Inbox();
  const conn = new XmlConnection(socket, {
    onStreamStart: (header) => inbox.push({ header }),
    onElement: (el) => {
      // After <success/> the next thing read is a new stream header (RFC 6120 §6.4.6).
      if (el.local === "success" && el.ns === NS.SASL) conn.parser.reset();
      inbox.push({ el });
    },
    onClose: (reason) => inbox.close(reason),
  }, { maxStanzaBytes: o.maxStanzaBytes });
  let secure = ep.directTls;
  let certValid = secure && peerValidFor(socket as TLSSocket, o.remote);
  try {
    conn.send(serverHeader(o.local, o.remote));
    let header = await inbox.header(o.deadline);
    let features = await inbox.element(o.deadline);
    if (!isFeatures(features)) throw new StreamClosed({ error: new StreamError("invalid-xml", "expected stream features") });
    if (!secure && features.getChild("starttls", NS.TLS)) {
      conn.send(`<starttls xmlns='${NS.TLS}'/>`);
      const answer = await inbox.element(o.deadline);
      if (answer.local !== "proceed" || answer.ns !== NS.TLS) throw new NegotiationFailed(`${o.remote} refused STARTTLS`, "policy-violation");
      const tlsSocket = await startTlsOver(conn.socket, o);
      conn.upgrade(tlsSocket);
      secure = true;
      certValid = peerValidFor(tlsSocket, o.remote);
      conn.send(serverHeader(o.local, o.remote));
      header = await inbox.header(o.deadline);
      features = await inbox.element(o.deadline);
    }
    if (!secure && o.requireTls) throw new NegotiationFailed(`${o.remote} offers no TLS and our policy requires it`, "policy-violation");
    const streamId = header.attrs.id ?? "";
    if (verify !== undefined) {
      conn.send(`<db:verify from='${escapeAttr(o.local)}' to='${escapeAttr(o.remote)}' id='${escapeAttr(verify.id)}'>${escapeText(verify.key)}</db:verify>`);
      for (;;) {
        const el = await inbox.element(o.deadline);
        if (el.local === "verify" && el.ns === NS_DIALBACK && el.attrs.id === verify.id) {
          conn.close();
          return el.attrs.type === "valid";
        }
      }
    }
    const mechanisms = features.getChild("mechanisms", NS.SASL)?.getChildren("mechanism").map((m) => m.text().trim()) ?? [];
    if (certValid && mechanisms.includes("EXTERNAL")) {
      conn.send(`<auth xmlns='${NS.SASL}' mechanism='EXTERNAL'>${Buffer.from(o.local).toString("base64")}</auth>`);
      const answer = await inbox.element(o.deadline);
      if (answer.local === "success" && answer.ns === NS.SASL) {
        conn.send(serverHeader(o.local, o.remote));
        await inbox.header(o.deadline);
        const after = await inbox.element(o.deadline);
        if (!isFeatures(after)) throw new StreamClosed({ error: new StreamError("invalid-xml", "expected stream features") });
        return { conn, inbox, auth: "external", secure, sm: await enableSm(conn, inbox, after, o) };
      }
      // A failure: dialback may still do (XEP-0178 §4 leaves it to us).
    }
    if (streamId === "") throw new NegotiationFailed(`${o.remote} gave no stream id to dialback with`, "not-authorized");
    conn.send(`<db:result from='${escapeAttr(o.local)}' to='${escapeAttr(o.remote)}'>${dialbackKey(o.dialbackSecret, o.remote, o.local, streamId)}</db:result>`);
    for (;;) {
      const el = await inbox.element(o.deadline);
      if (el.local !== "result" || el.ns !== NS_DIALBACK) continue;
      if (el.attrs.type === "valid") return { conn, inbox, auth: "dialback", secure, sm: await enableSm(conn, inbox, features, o) };
      throw new NegotiationFailed(`${o.remote} did not accept our dialback key (${el.attrs.type ?? "no type"})`, "not-authorized");
    }
  } catch (err) {
    conn.close();
    throw err;
  }
}
