/**
 * One client connection (RFC 6120): the stream header and features, the
 * order of work on the connection, timers, output, and the end. The steps of
 * negotiation and the session each have their own file: STARTTLS
 * (starttls.ts), SASL (sasl-negotiation.ts), XEP-0077 registration before
 * authentication (registration.ts), resource binding through the owner SM
 * (binding.ts), then the session's stanzas to and from the SM in `<route/>`
 * envelopes (session-stanzas.ts, docs/envelope.md). The connection under it
 * is a transport (client-transport.ts): TCP or WebSocket, one session path.
 */
import { randomToken } from "@jabberfarm/sasl";
import type { Logger } from "pino";
import type { CloseReason } from "@jabberfarm/component";
import { reflectEnvelope, routeEnvelope, sessionEnvelope } from "@jabberfarm/envelope";
import { Jid } from "@jabberfarm/jid";
import { OTHER, kindOfBytes, kindOfName, kindOfText } from "@jabberfarm/metrics";
import {
  NS, StreamError, canBounce, stanzaErrorReply, streamCondition, xml,
  type Element, type StanzaErrorCondition, type StanzaErrorType, type StreamHeader,
} from "@jabberfarm/xml";
import { MECHANISMS, type Mechanism } from "./auth.js";
import { ResourceBinding } from "./binding.js";
import { NS_REGISTER, NS_REGISTER_FEATURE, NS_SESSION, type BoundSession, type ClientContext } from "./client-context.js";
import type { ClientTransport, ClientTransportHandlers } from "./client-transport.js";
import { TokenBucket } from "./limits.js";
import { InBandRegistration } from "./registration.js";
import { SaslNegotiation } from "./sasl-negotiation.js";
import { SessionStanzas } from "./session-stanzas.js";
import { startTls } from "./starttls.js";
import { NS_CSI, NS_SM, StreamManagement } from "./stream-management.js";

/** As long as the confirmation attributes can be (epoch, two numbers), for the size check. */
const CONFIRM_ATTRS_ROOM = " seq='00000000.0000000000000000' low='0000000000000000'";

/** Elements queued while an answer is pending (SASL, registration, binding); more is abuse. */
const MAX_QUEUED_ELEMENTS = 100;

export function isStanza(el: Element): boolean {
  return el.ns === NS.CLIENT && (el.local === "message" || el.local === "presence" || el.local === "iq");
}

export class ClientStream {
  readonly conn: ClientTransport;
  /** Lines carry the connection id, and the session id once bound. */
  log: Logger;
  readonly ip: string;
  /** Accepted on the direct TLS port (XEP-0368). */
  readonly directTls: boolean;
  readonly createdAt = Date.now();
  lastRead = Date.now();
  lastWrite = Date.now();
  readonly ctx: ClientContext;

  // What the pieces of the connection share (starttls.ts, sasl-negotiation.ts...).
  secure: boolean;
  /** `<proceed/>` was sent; only the TLS socket may bring the next header. */
  tlsPending = false;
  /** Our header has answered the client's on the current stream. */
  streamOpen = false;
  /** The authenticated account, after SASL success. */
  user: Jid | undefined;
  /** The bound session, after resource binding. */
  bound: BoundSession | undefined;
  /** The SM ended the session: no `end` goes back for it. */
  kicked = false;
  readonly queue: Element[] = [];
  readonly pauses = new Set<string>();

  private readonly bucket: TokenBucket;
  private busy = false;
  private draining = false;
  private readonly sasl: SaslNegotiation;
  private readonly registration: InBandRegistration;
  readonly binding: ResourceBinding;
  private readonly stanzas: SessionStanzas;
  /** XEP-0198 and XEP-0352, the c2s's half (stream-management.ts). */
  readonly sm: StreamManagement;

  /**
   * `connect` makes the transport, handing it our handlers. `secure`: the
   * connection is encrypted from the start (direct TLS, wss).
   */
  constructor(connect: (handlers: ClientTransportHandlers) => ClientTransport, opts: { directTls: boolean; secure: boolean; log: Logger }, ctx: ClientContext) {
    this.ctx = ctx;
    this.directTls = opts.directTls;
    this.secure = opts.secure;
    const { limits } = ctx.config;
    this.bucket = new TokenBucket(limits.bytesPerSecond, limits.burstBytes);
    this.conn = connect({
      onStreamStart: (h) => this.onStreamStart(h),
      // The client's own bytes are never used: what goes on is re-serialised from `el` (docs/security.md).
      onElement: (el) => this.onElement(el),
      onClose: (r) => this.onClose(r),
      onInput: (bytes) => this.received(bytes),
    });
    this.ip = this.conn.remoteAddress;
    this.log = opts.log.child({ conn: this.conn.id, ip: this.ip, port: this.conn.remotePort, transport: this.conn.kind });
    this.conn.headerDue = this.header();
    this.sasl = new SaslNegotiation(this);
    this.registration = new InBandRegistration(this);
    this.binding = new ResourceBinding(this);
    this.stanzas = new SessionStanzas(this);
    this.sm = new StreamManagement(this);
  }

  /** The bound session, once resource binding succeeded. */
  get session(): BoundSession | undefined {
    return this.bound;
  }

  /** The stream is up: not closing, not closed. */
  get isOpen(): boolean {
    return this.conn.isOpen;
  }

  get isSecure(): boolean {
    return this.secure;
  }

  // ---- input ---------------------------------------------------------------

  /** What the client sent, counted before the parser sees it, so that a flood is cut before it is parsed. */
  private received(bytes: number): void {
    if (!this.conn.isOpen) return;
    this.lastRead = Date.now();
    if (!this.bucket.take(bytes, this.lastRead)) {
      this.log.warn({ rate: this.ctx.config.limits.bytesPerSecond }, "client exceeded its byte rate");
      this.fail(new StreamError("policy-violation", "sending too fast"));
    }
  }

  private onStreamStart(h: StreamHeader): void {
    if (this.tlsPending) {
      // Only the new TLS socket can deliver a header after <proceed/>.
      this.tlsPending = false;
      this.secure = true;
    }
    const lang = h.attrs["xml:lang"];
    this.conn.headerDue = undefined;
    this.send(this.header(lang !== undefined && /^[A-Za-z0-9-]{1,35}$/.test(lang) ? lang : "en"));
    const error = this.checkHeader(h);
    if (error) {
      this.log.info({ condition: error.condition, to: h.attrs.to, version: h.attrs.version }, "stream header refused");
      this.conn.close(error);
      return;
    }
    // A new client (first stream, before TLS and auth) may be sent to a less
    // loaded c2s (RFC 6120 §4.9.3.19); one that already negotiated stays.
    if (!this.secure && this.user === undefined) {
      const target = this.ctx.redirectTarget(this.conn);
      if (target !== undefined) {
        this.ctx.metrics?.redirects.inc();
        this.log.info({ target }, "redirected to a less loaded c2s");
        this.conn.close(new StreamError("see-other-host", undefined, target));
        return;
      }
    }
    this.streamOpen = true;
    this.send(this.features());
  }

  private checkHeader(h: StreamHeader): StreamError | undefined {
    if (h.contentNs !== NS.CLIENT) return new StreamError("invalid-namespace", `the content namespace must be ${NS.CLIENT}`);
    const to = h.attrs.to === undefined ? null : Jid.tryParse(h.attrs.to);
    if (to === null || to.local !== "" || to.resource !== "" || to.domain !== this.ctx.domain) {
      return new StreamError("host-unknown", `this server serves ${this.ctx.domain}`);
    }
    const v = /^(\d+)\.(\d+)$/.exec(h.attrs.version ?? "");
    if (!v || Number(v[1]) < 1) return new StreamError("unsupported-version", "XMPP 1.0 streams only (RFC 6120)");
    return undefined;
  }

  private onElement(el: Element): void {
    const m = this.ctx.metrics;
    // Stream negotiation (STARTTLS, SASL) is not stanza traffic.
    if (m !== undefined && el.ns !== NS.SASL && el.ns !== NS.TLS) m.stanzasIn.add(isStanza(el) ? kindOfName(el.local) : OTHER);
    if (this.tlsPending) {
      // RFC 6120 §5.4.3.3: nothing may follow <starttls/> before the TLS
      // handshake; plaintext that did is an injection attempt, never obeyed.
      this.log.warn("data after <starttls/>; dropping the connection");
      this.conn.destroy();
      return;
    }
    if (this.busy) {
      if (this.queue.length >= MAX_QUEUED_ELEMENTS) {
        this.fail(new StreamError("policy-violation", "too many elements while an answer is pending"));
        return;
      }
      this.queue.push(el);
      return;
    }
    this.dispatch(el);
  }

  private dispatch(el: Element): void {
    try {
      if ((el.ns === NS_SM || el.ns === NS_CSI) && this.sm.onNonza(el)) return;
      if (this.bound) this.stanzas.fromClient(el);
      else this.negotiate(el);
    } catch (err) {
      this.crashed(err);
    }
  }

  private negotiate(el: Element): void {
    if (el.ns === NS.TLS) {
      if (el.local === "starttls") startTls(this);
      else this.fail(new StreamError("unsupported-stanza-type"));
      return;
    }
    if (!this.secure && this.ctx.config.requireTls) {
      if (el.ns === NS.SASL && el.local === "auth") this.sasl.failure("encryption-required");
      else this.fail(new StreamError(isStanza(el) ? "not-authorized" : "unsupported-stanza-type", this.conn.canStartTls ? "TLS is required first: use STARTTLS" : "TLS is required: connect over TLS"));
      return;
    }
    if (this.user === undefined) {
      if (el.ns === NS.SASL) this.sasl.onElement(el);
      else if (isStanza(el) && el.local === "iq" && el.getChild("query", NS_REGISTER) && this.isServer(el.attrs.to)) this.registration.onIq(el);
      else this.fail(new StreamError(isStanza(el) ? "not-authorized" : "unsupported-stanza-type", "authenticate first"));
      return;
    }
    if (isStanza(el) && el.local === "iq" && el.attrs.type === "set" && this.isServer(el.attrs.to)) {
      if (el.getChild("bind", NS.BIND)) return this.binding.onBind(el);
      if (el.getChild("session", NS_SESSION)) return this.iqResult(el);
    }
    this.fail(new StreamError(isStanza(el) ? "not-authorized" : "unsupported-stanza-type", "bind a resource first"));
  }

  /** Work on one element at a time while an answer is pending; later input waits in order. */
  setBusy(busy: boolean): void {
    this.busy = busy;
    if (busy) {
      this.pause("busy");
      return;
    }
    this.resume("busy");
    if (this.draining) return;
    this.draining = true;
    try {
      while (!this.busy && this.queue.length > 0 && this.conn.isOpen) {
        this.dispatch(this.queue.shift()!);
      }
    } finally {
      this.draining = false;
    }
  }

  pause(reason: string): void {
    this.pauses.add(reason);
    this.conn.pause();
  }

  resume(reason: string): void {
    if (!this.pauses.delete(reason) || this.pauses.size > 0) return;
    this.conn.resume();
  }

  /** Stream restart after SASL success (RFC 6120 §6.4.6). */
  restart(): void {
    this.streamOpen = false;
    this.queue.length = 0;
    this.conn.restart();
    this.conn.headerDue = this.header();
  }

  /** A bug in an asynchronous continuation: end this stream rather than the process. */
  crashed(err: unknown): void {
    this.log.error({ err }, "failed to handle an element");
    if (this.conn.isOpen) this.fail(new StreamError("internal-server-error"));
  }

  // ---- output ----------------------------------------------------------------

  send(data: string | Buffer): void {
    this.conn.send(data);
    this.lastWrite = Date.now();
  }

  header(lang = "en"): string {
    return this.conn.streamHeader({ from: this.ctx.domain, id: randomToken(12), lang });
  }

  private features(): string {
    const { config } = this.ctx;
    let f = "";
    if (this.user === undefined) {
      if (!this.secure && this.conn.canStartTls) f += `<starttls xmlns='${NS.TLS}'>${config.requireTls ? "<required/>" : ""}</starttls>`;
      if (this.secure || !config.requireTls) {
        f += `<mechanisms xmlns='${NS.SASL}'>${this.mechanisms().map((m) => `<mechanism>${m}</mechanism>`).join("")}</mechanisms>`;
        if (config.registration.allow) f += `<register xmlns='${NS_REGISTER_FEATURE}'/>`;
      }
    } else {
      // Binding is ours; the rest is what the SMs' modules offer (roster
      // versioning, pre-approval...), as they told us.
      f += `<bind xmlns='${NS.BIND}'/><session xmlns='${NS_SESSION}'><optional/></session>${this.ctx.smStreamFeatures}`;
    }
    return this.conn.streamFeatures(f);
  }

  mechanisms(): Mechanism[] {
    const plainOk = this.secure || this.ctx.config.allowPlainWithoutTls;
    return MECHANISMS.filter((m) => m !== "PLAIN" || plainOk);
  }

  /** Ends the stream with a stream error. */
  fail(error: StreamError): void {
    this.conn.close(error);
  }

  /** Writes a stanza for the bound session, as the SM sent it. */
  deliver(raw: string | Buffer): void {
    if (!this.conn.isOpen) return;
    this.send(raw);
    this.sm.written();
    this.ctx.metrics?.stanzasOut.add(typeof raw === "string" ? kindOfText(raw) : kindOfBytes(raw));
    if (this.conn.congested) {
      this.log.warn({ queued: this.conn.queuedBytes }, "client reads too slowly");
      this.fail(new StreamError("resource-constraint", "too much data waiting for the client"));
    }
  }

  /** The SM ended this session (docs/envelope.md `kick`). */
  kick(condition: string | undefined, reason: string | undefined): void {
    this.kicked = true;
    this.log.info({ condition, reason }, "session kicked by the session manager");
    this.fail(new StreamError(streamCondition(condition), reason));
  }

  /** The SM registered the session: answer the bind. False when no bind waits for `sid`. */
  bindStarted(sid: string): boolean {
    return this.binding.started(sid);
  }

  /** The SM (or the router) refused the session start. */
  bindFailed(sid: string, condition: string | undefined, type?: StanzaErrorType, text?: string): void {
    this.binding.failed(sid, condition, type, text);
  }

  /** An error for a stanza of this session that could not be routed (iq requests and messages; presence is dropped). */
  undeliverable(el: Element, condition: StanzaErrorCondition, text?: string, type?: StanzaErrorType): void {
    this.stanzas.undeliverable(el, condition, text, type);
  }

  /** Timers: idle and authentication timeouts, keepalive (whitespace, or WebSocket pings). */
  tick(now: number): void {
    if (!this.conn.isOpen) return;
    const { limits } = this.ctx.config;
    if (this.pauses.size > 0) {
      // Not reading on purpose; the client is not idle.
      this.lastRead = now;
    }
    if (now - this.lastRead > limits.idleTimeoutMs) {
      this.log.info({ idleMs: now - this.lastRead }, "idle timeout");
      this.fail(new StreamError("connection-timeout", "idle for too long"));
    } else if (this.bound === undefined && now - this.createdAt > limits.authTimeoutMs) {
      this.log.info("not authenticated in time");
      this.fail(new StreamError("connection-timeout", "authentication took too long"));
    } else {
      const due = this.streamOpen && now - this.lastWrite > limits.keepaliveIntervalMs;
      this.conn.keepalive(now, due);
      if (due) this.lastWrite = now;
      if (this.bound !== undefined && now - this.lastRead > limits.releaseParserAfterMs) this.conn.releaseParser();
    }
    this.sm.tick(now);
  }

  reply(stanza: Element): void {
    const s = this.bound;
    if (s !== undefined && this.sm.enabled) {
      // Through the SM, which numbers what the client gets (stream-management.ts);
      // written here only when no router can take it.
      stanza.attrs.xmlns = NS.CLIENT;
      const text = stanza.toString();
      if (this.ctx.routeToSm((c) => reflectEnvelope(this.ctx.address, s.bare, s.sid, text, c)) !== 0) return;
      delete stanza.attrs.xmlns;
    }
    this.send(stanza.toString());
    this.sm.written();
    this.ctx.metrics?.stanzasOut.add(kindOfName(stanza.name));
  }

  /** The session is bound to this stream (resource binding, or a resumption): its stanzas may flow. */
  adoptSession(sid: string, jid: Jid): void {
    const full = jid.toString();
    const bare = jid.bareString();
    const routeOverhead = Buffer.byteLength(routeEnvelope(this.ctx.address, bare, sid, "", CONFIRM_ATTRS_ROOM));
    this.bound = { sid, jid, full, bare, routeOverhead };
    this.log = this.log.child({ sid });
  }

  iqResult(iq: Element, payload?: Element): void {
    this.reply(xml("iq", { type: "result", id: iq.attrs.id, to: this.bound?.full }, payload));
  }

  stanzaError(stanza: Element, condition: StanzaErrorCondition, opts: { type?: StanzaErrorType; text?: string } = {}): void {
    if (canBounce(stanza)) this.reply(stanzaErrorReply(stanza, condition, opts));
  }

  /** Whether `to` is the server itself (absent, or our bare domain). */
  isServer(to: string | undefined): boolean {
    if (to === undefined) return true;
    const j = Jid.tryParse(to);
    return j !== null && j.local === "" && j.resource === "" && j.domain === this.ctx.domain;
  }

  // ---- the end -----------------------------------------------------------------

  private onClose(reason: CloseReason): void {
    this.sasl.stop();
    this.sm.stop();
    const pending = this.binding.abandon();
    const sid = this.bound?.sid ?? pending?.sid;
    const bare = this.bound?.bare ?? pending?.jid.bareString();
    const why = reason.error
      ? `${reason.remote ? "client sent " : ""}${reason.error.condition}`
      : reason.socketError ? `socket: ${reason.socketError}` : "stream closed";
    if (sid !== undefined && bare !== undefined) {
      this.ctx.untrack(sid, this);
      // A kicked session is already gone from the SM; a resumable one waits
      // there for its client to resume it, here or on another c2s.
      const type = this.sm.keepForResumption(reason) ? "detach" : "end";
      if (!this.kicked) this.ctx.outlet.send(sessionEnvelope({ type, from: this.ctx.address, to: bare, sid, reason: why }));
    }
    this.queue.length = 0;
    this.ctx.closed(this);
    const fields = { reason: why, jid: this.bound?.full, text: reason.error?.text };
    if (this.tlsPending && reason.socketError) this.log.warn(fields, "TLS negotiation failed; connection closed");
    else this.log.info(fields, "connection closed");
  }
}
