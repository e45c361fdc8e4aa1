/**
 * One client connection (RFC 6120): stream header and features, STARTTLS,
 * SASL, XEP-0077 registration before authentication, resource binding
 * through the owner SM, then the session's stanzas to and from the SM in
 * `<route/>` envelopes (docs/envelope.md).
 */
import { randomBytes } from "node:crypto";
import type { Socket } from "node:net";
import { TLSSocket, type SecureContext } from "node:tls";
import type { Logger } from "pino";
import { ENVELOPE_ROOM, XmlConnection, rawText, type CloseReason } from "@jabberfarm/component";
import { routeEnvelope, sessionEnvelope } from "@jabberfarm/envelope";
import { Jid } from "@jabberfarm/jid";
import { OTHER, kindOfBytes, kindOfName, kindOfText, type Metrics } from "@jabberfarm/metrics";
import { SaslError, decodeSaslPayload, deriveCredentialsAsync, encodeSaslPayload, type SaslCondition, type ScramCredential } from "@jabberfarm/sasl";
import {
  NS, StreamError, canBounce, errorElement, escapeText, stanzaErrorReply, streamHeader, xml,
  type Element, type StanzaErrorCondition, type StanzaErrorType, type StreamHeader,
} from "@jabberfarm/xml";
import { MECHANISMS, SaslExchange, SaslRefusal, accountFor, isMechanism, type Mechanism, type SaslOptions, type SaslStep } from "./auth.js";
import { bannedError, type AuthBans } from "./bans.js";
import type { C2sConfig } from "./config.js";
import { stanzaCondition, streamCondition } from "./conditions.js";
import { TokenBucket, type SlidingWindow } from "./limits.js";

/** As long as the confirmation attributes can be (epoch, two numbers), for the size check. */
const CONFIRM_ATTRS_ROOM = " seq='00000000.0000000000000000' low='0000000000000000'";

export const NS_SESSION = "urn:ietf:params:xml:ns:xmpp-session";
export const NS_REGISTER = "jabber:iq:register";
export const NS_REGISTER_FEATURE = "http://jabber.org/features/iq-register";

/** The way to the routers. `send` is false when no router is reachable. */
export interface Outlet {
  send(text: string): boolean;
  readonly congested: boolean;
  /** The largest element the routers take (packages/component `maxElementBytes`). */
  readonly maxElementBytes: number;
  onceDrained(fn: () => void): void;
}

/** What a connection needs from its c2s process. */
export interface ClientContext {
  readonly config: C2sConfig;
  /** Our domain, normalised. */
  readonly domain: string;
  /** This process's address, `c2s/INSTANCE`. */
  readonly address: string;
  readonly outlet: Outlet;
  /**
   * Sends a session's stanza to its SM, confirmed (docs/envelope.md,
   * "Confirmation"): `build` gets the attributes to put in the route's start
   * tag. False when no router is reachable.
   */
  routeToSm(build: (confirmAttrs: string) => string): boolean;
  readonly storage: {
    getCredentials(user: string): Promise<ScramCredential[] | null>;
    createAccount(user: string, credentials: ScramCredential[]): Promise<boolean>;
  };
  readonly sasl: SaslOptions;
  readonly secureContext: SecureContext;
  readonly bans: AuthBans;
  readonly registrations: SlidingWindow;
  readonly metrics: Metrics | undefined;
  /** Another c2s to send a new client to (see-other-host), when this one is loaded above its share. */
  redirectTarget(): string | undefined;
  newSid(): string;
  /** Makes envelopes for `sid` reach this connection. */
  track(sid: string, client: ClientStream): void;
  untrack(sid: string, client: ClientStream): void;
  closed(client: ClientStream): void;
}

/** Elements queued while an answer is pending (SASL, registration, binding); more is abuse. */
const MAX_QUEUED_ELEMENTS = 100;

/**
 * A stream error must follow a stream header of ours (RFC 6120 §4.9.1.1),
 * also when the parser fails before the client's header was answered; the
 * connection writes the pending header first in that case.
 */
class ClientXmlConnection extends XmlConnection {
  headerDue: string | undefined;

  override close(error?: StreamError): void {
    if (error && this.headerDue !== undefined && this.isOpen) this.send(this.headerDue);
    this.headerDue = undefined;
    super.close(error);
  }
}

function isStanza(el: Element): boolean {
  return el.ns === NS.CLIENT && (el.local === "message" || el.local === "presence" || el.local === "iq");
}

function isRequest(el: Element): boolean {
  return el.local === "iq" && (el.attrs.type === "get" || el.attrs.type === "set");
}

interface Binding {
  sid: string;
  iq: Element;
  jid: Jid;
  timer: NodeJS.Timeout | undefined;
}

export interface BoundSession {
  sid: string;
  jid: Jid;
  full: string;
  bare: string;
  /** Bytes the route envelope adds around each stanza (confirmation attributes included), for the size check. */
  routeOverhead: number;
}

export class ClientStream {
  readonly conn: ClientXmlConnection;
  /** Lines carry the connection id, and the session id once bound. */
  log: Logger;
  readonly ip: string;
  /** Accepted on the direct TLS port (XEP-0368). */
  readonly directTls: boolean;
  readonly createdAt = Date.now();
  lastRead = Date.now();
  lastWrite = Date.now();

  private readonly ctx: ClientContext;
  private readonly bucket: TokenBucket;
  private secure: boolean;
  private tlsPending = false;
  /** Our header has answered the client's on the current stream. */
  private streamOpen = false;
  private user: Jid | undefined;
  private sasl: SaslExchange | undefined;
  private authFailures = 0;
  private binding: Binding | undefined;
  private bound: BoundSession | undefined;
  private busy = false;
  private draining = false;
  private readonly queue: Array<[Element, string]> = [];
  private readonly pauses = new Set<string>();
  private failureTimer: NodeJS.Timeout | undefined;
  private kicked = false;

  constructor(socket: Socket, opts: { directTls: boolean; log: Logger }, ctx: ClientContext) {
    this.ctx = ctx;
    this.directTls = opts.directTls;
    this.secure = opts.directTls;
    this.ip = socket.remoteAddress ?? "unknown";
    const { limits } = ctx.config;
    this.bucket = new TokenBucket(limits.bytesPerSecond, limits.burstBytes);
    this.conn = new ClientXmlConnection(socket, {
      onStreamStart: (h) => this.onStreamStart(h),
      onElement: (el, raw) => this.onElement(el, rawText(raw)),
      onClose: (r) => this.onClose(r),
    }, {
      maxStanzaBytes: limits.maxStanzaBytes, highWaterMark: limits.maxQueuedBytes,
      // Whatever the client wrote (prefixes, CDATA...), what goes on into the
      // farm is the canonical element re-serialised (docs/security.md).
      canonical: true,
    });
    this.log = opts.log.child({ conn: this.conn.id, ip: this.ip, port: socket.remotePort });
    this.conn.headerDue = this.header();
    this.watch(socket);
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

  /** Counts what the client sends before the parser sees it, so a flood is cut before it is parsed. */
  private watch(socket: Socket): void {
    socket.prependListener("data", (chunk: Buffer) => {
      if (!this.conn.isOpen) return;
      this.lastRead = Date.now();
      if (!this.bucket.take(chunk.length, this.lastRead)) {
        this.log.warn({ rate: this.ctx.config.limits.bytesPerSecond }, "client exceeded its byte rate");
        this.fail(new StreamError("policy-violation", "sending too fast"));
      }
    });
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
      const target = this.ctx.redirectTarget();
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

  private onElement(el: Element, raw: string): void {
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
      this.queue.push([el, raw]);
      return;
    }
    this.dispatch(el, raw);
  }

  private dispatch(el: Element, raw: string): void {
    try {
      if (this.bound) this.sessionStanza(el, raw);
      else this.negotiate(el);
    } catch (err) {
      this.crashed(err);
    }
  }

  /** Work on one element at a time while an answer is pending; later input waits in order. */
  private setBusy(busy: boolean): void {
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
        const [el, raw] = this.queue.shift()!;
        this.dispatch(el, raw);
      }
    } finally {
      this.draining = false;
    }
  }

  private pause(reason: string): void {
    this.pauses.add(reason);
    this.conn.socket.pause();
  }

  private resume(reason: string): void {
    if (!this.pauses.delete(reason) || this.pauses.size > 0) return;
    this.conn.socket.resume();
  }

  // ---- output ----------------------------------------------------------------

  private send(data: string | Buffer): void {
    this.conn.send(data);
    this.lastWrite = Date.now();
  }

  private header(lang = "en"): string {
    return streamHeader({ contentNs: NS.CLIENT, from: this.ctx.domain, id: randomBytes(12).toString("base64url"), version: "1.0", lang });
  }

  private features(): string {
    const { config } = this.ctx;
    let f = "";
    if (this.user === undefined) {
      if (!this.secure) f += `<starttls xmlns='${NS.TLS}'>${config.requireTls ? "<required/>" : ""}</starttls>`;
      if (this.secure || !config.requireTls) {
        f += `<mechanisms xmlns='${NS.SASL}'>${this.mechanisms().map((m) => `<mechanism>${m}</mechanism>`).join("")}</mechanisms>`;
        if (config.registration.allow) f += `<register xmlns='${NS_REGISTER_FEATURE}'/>`;
      }
    } else {
      // The sm answers roster `ver` (RFC 6121 §2.6) and keeps pre-approvals (§3.4).
      f += `<bind xmlns='${NS.BIND}'/><session xmlns='${NS_SESSION}'><optional/></session>`
        + "<ver xmlns='urn:xmpp:features:rosterver'/><sub xmlns='urn:xmpp:features:pre-approval'/>";
    }
    return `<stream:features>${f}</stream:features>`;
  }

  private mechanisms(): Mechanism[] {
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
    this.ctx.metrics?.stanzasOut.add(typeof raw === "string" ? kindOfText(raw) : kindOfBytes(raw));
    if (this.conn.congested) {
      this.log.warn({ queued: this.conn.socket.writableLength }, "client reads too slowly");
      this.fail(new StreamError("resource-constraint", "too much data waiting for the client"));
    }
  }

  /** The SM ended this session (docs/envelope.md `kick`). */
  kick(condition: string | undefined, reason: string | undefined): void {
    this.kicked = true;
    this.log.info({ condition, reason }, "session kicked by the session manager");
    this.fail(new StreamError(streamCondition(condition), reason));
  }

  /** Timers: idle and authentication timeouts, whitespace keepalive. */
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
    } else if (this.streamOpen && now - this.lastWrite > limits.keepaliveIntervalMs) {
      this.send(" ");
    }
  }

  private reply(stanza: Element): void {
    this.send(stanza.toString());
    this.ctx.metrics?.stanzasOut.add(kindOfName(stanza.name));
  }

  private iqResult(iq: Element, payload?: Element): void {
    this.reply(xml("iq", { type: "result", id: iq.attrs.id, to: this.bound?.full }, payload));
  }

  private stanzaError(stanza: Element, condition: StanzaErrorCondition, opts: { type?: StanzaErrorType; text?: string } = {}): void {
    if (canBounce(stanza)) this.reply(stanzaErrorReply(stanza, condition, opts));
  }

  private isServer(to: string | undefined): boolean {
    if (to === undefined) return true;
    const j = Jid.tryParse(to);
    return j !== null && j.local === "" && j.resource === "" && j.domain === this.ctx.domain;
  }

  // ---- negotiation -------------------------------------------------------------

  private negotiate(el: Element): void {
    if (el.ns === NS.TLS) {
      if (el.local === "starttls") this.startTls();
      else this.fail(new StreamError("unsupported-stanza-type"));
      return;
    }
    if (!this.secure && this.ctx.config.requireTls) {
      if (el.ns === NS.SASL && el.local === "auth") this.saslFailure("encryption-required");
      else this.fail(new StreamError(isStanza(el) ? "not-authorized" : "unsupported-stanza-type", "TLS is required first: use STARTTLS"));
      return;
    }
    if (this.user === undefined) {
      if (el.ns === NS.SASL) this.onSasl(el);
      else if (isStanza(el) && el.local === "iq" && el.getChild("query", NS_REGISTER) && this.isServer(el.attrs.to)) this.onRegister(el);
      else this.fail(new StreamError(isStanza(el) ? "not-authorized" : "unsupported-stanza-type", "authenticate first"));
      return;
    }
    if (isStanza(el) && el.local === "iq" && el.attrs.type === "set" && this.isServer(el.attrs.to)) {
      if (el.getChild("bind", NS.BIND)) return this.onBind(el);
      if (el.getChild("session", NS_SESSION)) return this.iqResult(el);
    }
    this.fail(new StreamError(isStanza(el) ? "not-authorized" : "unsupported-stanza-type", "bind a resource first"));
  }

  private startTls(): void {
    if (this.secure || this.user !== undefined) {
      // RFC 6120 §5.4.2.2: <failure/>, then the stream ends.
      this.send(`<failure xmlns='${NS.TLS}'/>`);
      this.conn.close();
      return;
    }
    if (this.queue.length > 0) {
      // Sent in the clear after <starttls/> while an answer was pending (CVE-2011-0411):
      // never to be obeyed as if it came over TLS.
      this.log.warn({ queued: this.queue.length }, "data after <starttls/>; dropping the connection");
      this.queue.length = 0;
      this.conn.destroy();
      return;
    }
    this.tlsPending = true;
    this.streamOpen = false;
    this.conn.sendNow(`<proceed xmlns='${NS.TLS}'/>`);
    this.lastWrite = Date.now();
    const plain = this.conn.socket;
    // After the parser has finished the current read, so that whatever
    // followed <starttls/> in it is discarded with the old stream.
    queueMicrotask(() => {
      if (!this.conn.isOpen) return;
      const tlsSocket = new TLSSocket(plain, { isServer: true, secureContext: this.ctx.secureContext });
      tlsSocket.once("secure", () => {
        this.log.debug({ protocol: tlsSocket.getProtocol(), cipher: tlsSocket.getCipher().name }, "STARTTLS complete");
      });
      this.conn.upgrade(tlsSocket);
      this.conn.headerDue = this.header();
      this.watch(tlsSocket);
      if (this.pauses.size > 0) tlsSocket.pause();
    });
  }

  /** Stream restart after SASL success (RFC 6120 §6.4.6). */
  private restart(): void {
    this.streamOpen = false;
    this.queue.length = 0;
    this.conn.parser.reset();
    this.conn.headerDue = this.header();
  }

  // ---- SASL ------------------------------------------------------------------

  private onSasl(el: Element): void {
    switch (el.local) {
      case "auth": {
        this.sasl = undefined;
        // Its streams opened before the ban began end at their next try.
        const banned = this.ctx.bans.addressBannedFor(this.ip);
        if (banned > 0) return this.fail(bannedError(banned));
        const mechanism = el.attrs.mechanism;
        if (!isMechanism(mechanism) || !this.mechanisms().includes(mechanism)) {
          this.saslFailure(mechanism === "PLAIN" ? "encryption-required" : "invalid-mechanism");
          return;
        }
        const text = el.text().trim();
        let data: Buffer | null;
        try {
          data = text === "" ? null : decodeSaslPayload(text);
        } catch (err) {
          this.saslFailure(err instanceof SaslError ? err.condition : "incorrect-encoding");
          return;
        }
        this.sasl = new SaslExchange(mechanism, this.ctx.sasl);
        this.runSasl(this.sasl, data);
        return;
      }
      case "response": {
        const exchange = this.sasl;
        if (!exchange) {
          this.saslFailure("malformed-request");
          return;
        }
        let data: Buffer;
        try {
          data = decodeSaslPayload(el.text());
        } catch (err) {
          this.sasl = undefined;
          this.saslFailure(err instanceof SaslError ? err.condition : "incorrect-encoding");
          return;
        }
        this.runSasl(exchange, data);
        return;
      }
      case "abort":
        this.sasl = undefined;
        this.saslFailure("aborted");
        return;
      default:
        this.fail(new StreamError("unsupported-stanza-type"));
    }
  }

  private runSasl(exchange: SaslExchange, data: Buffer | null): void {
    this.setBusy(true);
    void exchange.step(data).then(
      (step) => {
        if (!this.conn.isOpen || this.sasl !== exchange) return;
        if (step.type === "challenge") {
          this.send(`<challenge xmlns='${NS.SASL}'>${step.data === "" ? "" : encodeSaslPayload(step.data)}</challenge>`);
          this.setBusy(false);
        } else {
          this.authenticated(step, exchange.mechanism);
        }
      },
      (err: unknown) => {
        if (!this.conn.isOpen) return;
        this.sasl = undefined;
        let condition: SaslCondition = "temporary-auth-failure";
        if (err instanceof SaslError) condition = err.condition;
        else this.log.error({ err }, "SASL exchange failed unexpectedly");
        const refusal = err instanceof SaslRefusal ? err.message : undefined;
        if (condition === "temporary-auth-failure" && !refusal) this.log.warn({ err: (err as Error).cause ?? err }, "authentication could not be checked");
        this.saslFailure(condition, exchange.claimedUsername, refusal);
      },
    ).catch((err: unknown) => this.crashed(err));
  }

  /** A bug in an asynchronous continuation: end this stream rather than the process. */
  private crashed(err: unknown): void {
    this.log.error({ err }, "failed to handle an element");
    if (this.conn.isOpen) this.fail(new StreamError("internal-server-error"));
  }

  private authenticated(step: Extract<SaslStep, { type: "success" }>, mechanism: Mechanism): void {
    this.user = step.user;
    this.sasl = undefined;
    this.log.info({ user: step.user.toString(), mechanism }, "authenticated");
    this.send(`<success xmlns='${NS.SASL}'>${step.data === undefined ? "" : encodeSaslPayload(step.data)}</success>`);
    this.restart();
    this.setBusy(false);
  }

  /**
   * Answers `<failure/>` (with `text` for the client, if any) after a short
   * fixed delay for a wrong password, which also counts towards the bans of
   * the address and the account (bans.ts). A failure that bans the address,
   * or one too many on this stream, ends the stream.
   */
  private saslFailure(condition: SaslCondition, username?: string, text?: string): void {
    this.authFailures++;
    this.ctx.metrics?.authFailures.inc({ reason: condition });
    const wrong = condition === "not-authorized";
    const account = wrong && username !== undefined ? accountFor(username, this.ctx.domain)?.toString() : undefined;
    const banned = wrong ? this.ctx.bans.failed(this.ip, account) : undefined;
    this.log.info({ user: username, condition, text, failures: this.authFailures }, "authentication failed");
    const answer = (): void => {
      this.failureTimer = undefined;
      if (!this.conn.isOpen) return;
      this.send(`<failure xmlns='${NS.SASL}'><${condition}/>${text ? `<text xml:lang='en'>${escapeText(text)}</text>` : ""}</failure>`);
      if (banned?.address) return this.fail(bannedError(this.ctx.bans.addressBannedFor(this.ip)));
      if (this.authFailures >= this.ctx.config.limits.maxAuthFailures) {
        this.fail(new StreamError("policy-violation", "too many failed authentication attempts"));
        return;
      }
      this.setBusy(false);
    };
    const delay = wrong ? this.ctx.config.limits.authFailureDelayMs : 0;
    if (delay > 0) {
      this.setBusy(true);
      this.failureTimer = setTimeout(answer, delay);
    } else {
      answer();
    }
  }

  // ---- XEP-0077 registration before authentication ------------------------------

  private onRegister(iq: Element): void {
    const { registration } = this.ctx.config;
    if (!registration.allow) {
      this.stanzaError(iq, "service-unavailable", { text: "in-band registration is disabled" });
      return;
    }
    if (iq.attrs.type === "get") {
      this.iqResult(iq, xml("query", { xmlns: NS_REGISTER },
        xml("instructions", {}, `Choose a username and password to register with ${this.ctx.domain}.`),
        xml("username"), xml("password")));
      return;
    }
    if (iq.attrs.type !== "set") {
      this.stanzaError(iq, "bad-request");
      return;
    }
    this.setBusy(true);
    void this.register(iq).then(
      () => {
        if (this.conn.isOpen) this.iqResult(iq);
      },
      (err: unknown) => {
        if (!this.conn.isOpen) return;
        if (err instanceof RegistrationError) {
          this.stanzaError(iq, err.condition, { text: err.message, ...(err.type ? { type: err.type } : {}) });
        } else {
          this.log.error({ err }, "registration failed");
          this.stanzaError(iq, "internal-server-error", { type: "wait" });
        }
      },
    ).finally(() => this.setBusy(false)).catch((err: unknown) => this.crashed(err));
  }

  private async register(iq: Element): Promise<void> {
    const query = iq.getChild("query", NS_REGISTER)!;
    if (query.getChild("remove")) throw new RegistrationError("not-allowed", "authenticate to cancel an account");
    const username = query.getChildText("username");
    const password = query.getChildText("password");
    if (!username || !password) throw new RegistrationError("not-acceptable", "username and password are required");
    const user = accountFor(username, this.ctx.domain);
    if (user === null) throw new RegistrationError("not-acceptable", "the username is not a valid JID localpart");
    const { registration } = this.ctx.config;
    if (this.ctx.registrations.count(this.ip) >= registration.perIpLimit) {
      this.log.warn({ user: user.toString() }, "registration refused: too many from this address");
      throw new RegistrationError("resource-constraint", "too many registrations from your address; try later", "wait");
    }
    let credentials: ScramCredential[];
    try {
      credentials = await deriveCredentialsAsync(password);
    } catch (err) {
      if (err instanceof SaslError) throw new RegistrationError("not-acceptable", "the password is not acceptable");
      throw err;
    }
    if (!(await this.ctx.storage.createAccount(user.toString(), credentials))) {
      throw new RegistrationError("conflict", "the username is taken");
    }
    this.ctx.registrations.add(this.ip);
    this.log.info({ user: user.toString() }, "account registered");
  }

  // ---- resource binding (RFC 6120 §7) --------------------------------------------

  private onBind(iq: Element): void {
    const user = this.user!;
    if (iq.attrs.id === undefined) {
      this.stanzaError(iq, "bad-request", { text: "an iq needs an id" });
      return;
    }
    const requested = iq.getChild("bind", NS.BIND)!.getChildText("resource");
    let jid: Jid;
    if (requested) {
      try {
        jid = Jid.of(user.local, user.domain, requested);
      } catch {
        this.stanzaError(iq, "bad-request", { text: "the resource is not a valid JID resourcepart" });
        return;
      }
    } else {
      jid = Jid.of(user.local, user.domain, randomBytes(9).toString("base64url"));
    }
    const sid = this.ctx.newSid();
    const binding: Binding = { sid, iq, jid, timer: undefined };
    this.binding = binding;
    this.ctx.track(sid, this);
    this.setBusy(true);
    const sent = this.ctx.outlet.send(sessionEnvelope({
      type: "start", id: sid, from: this.ctx.address, to: jid.bareString(), sid, jid: jid.toString(),
    }));
    if (!sent) {
      this.bindFailed(sid, "internal-server-error", "wait", "no router reachable");
      return;
    }
    binding.timer = setTimeout(() => {
      this.log.warn({ sid }, "the session manager did not answer the session start");
      // It may still register the session later; make sure it forgets it.
      this.ctx.outlet.send(sessionEnvelope({ type: "end", from: this.ctx.address, to: jid.bareString(), sid, reason: "bind timed out" }));
      this.bindFailed(sid, "internal-server-error", "wait", "the session manager did not answer");
    }, this.ctx.config.limits.bindTimeoutMs);
  }

  /** The SM registered the session: answer the bind. False when no bind waits for `sid`. */
  bindStarted(sid: string): boolean {
    const b = this.binding;
    if (!b || b.sid !== sid || !this.conn.isOpen) return false;
    clearTimeout(b.timer);
    this.binding = undefined;
    const full = b.jid.toString();
    const bare = b.jid.bareString();
    const routeOverhead = Buffer.byteLength(routeEnvelope(this.ctx.address, bare, sid, "", CONFIRM_ATTRS_ROOM));
    this.bound = { sid, jid: b.jid, full, bare, routeOverhead };
    this.log = this.log.child({ sid });
    this.log.info({ jid: full }, "session started");
    this.reply(xml("iq", { type: "result", id: b.iq.attrs.id }, xml("bind", { xmlns: NS.BIND }, xml("jid", {}, full))));
    this.setBusy(false);
    return true;
  }

  /** The SM (or the router) refused the session start. */
  bindFailed(sid: string, condition: string | undefined, type?: StanzaErrorType, text?: string): void {
    const b = this.binding;
    if (!b || b.sid !== sid) return;
    clearTimeout(b.timer);
    this.binding = undefined;
    this.ctx.untrack(sid, this);
    if (!this.conn.isOpen) return;
    this.log.info({ sid, condition, text }, "resource binding failed");
    const err = errorElement(stanzaCondition(condition), { ...(type ? { type } : {}), ...(text ? { text } : {}) });
    this.reply(xml("iq", { type: "error", id: b.iq.attrs.id }, err));
    this.setBusy(false);
  }

  // ---- the session's stanzas ----------------------------------------------------

  private sessionStanza(el: Element, raw: string): void {
    const s = this.bound!;
    if (!isStanza(el)) {
      this.fail(new StreamError("unsupported-stanza-type", `<${el.name}/> is not a stanza`));
      return;
    }
    if (el.local === "iq" && el.attrs.type === "set" && this.isServer(el.attrs.to)) {
      if (el.getChild("bind", NS.BIND)) {
        this.stanzaError(el, "not-allowed", { text: "a resource is already bound to this stream" });
        return;
      }
      if (el.getChild("session", NS_SESSION)) {
        this.iqResult(el);
        return;
      }
    }
    const from = el.attrs.from;
    if (from !== undefined && from !== s.full) {
      // RFC 6120 §8.1.2.1: the server stamps the full JID; a from that is
      // some other address than the client's own is refused.
      const j = Jid.tryParse(from);
      if (j === null || j.local !== s.jid.local || j.domain !== s.jid.domain || (j.resource !== "" && j.resource !== s.jid.resource)) {
        this.log.warn({ from }, "stanza with a spoofed from");
        this.fail(new StreamError("invalid-from", "from must be your own address"));
        return;
      }
    }
    // The canonical element (see the parser's option above), its namespace
    // explicit as envelopes require, stamped with the session's address.
    el.attrs.xmlns = NS.CLIENT;
    el.attrs.from = s.full;
    const text = el.toString();
    // A router refuses a larger element by closing the whole link, with every
    // session on it; only this stanza may pay for its size. The room covers
    // this route's envelope and those the farm puts around it later (the
    // SM's route to another session, a delay stamp): once in, it fits every
    // hop. (The envelope is built once, in the send.)
    const max = Math.min(this.ctx.config.limits.maxRoutedBytes, this.ctx.outlet.maxElementBytes) - Math.max(s.routeOverhead, ENVELOPE_ROOM);
    if (text.length * 3 > max && Buffer.byteLength(text) > max) {
      this.log.info({ bytes: Buffer.byteLength(text), max }, "stanza too large once re-serialised; refused");
      this.undeliverable(el, "policy-violation", `the stanza is larger than ${max} bytes once re-serialised`, "modify");
      return;
    }
    if (!this.ctx.routeToSm((c) => routeEnvelope(this.ctx.address, s.bare, s.sid, text, c))) {
      this.undeliverable(el, "remote-server-timeout", "the server cannot route stanzas right now; try again");
      return;
    }
    if (this.ctx.outlet.congested && !this.pauses.has("router")) {
      this.pause("router");
      this.ctx.outlet.onceDrained(() => this.resume("router"));
    }
  }

  /** An error for a stanza of this session that could not be routed (iq requests and messages; presence is dropped). */
  undeliverable(el: Element, condition: StanzaErrorCondition, text?: string, type?: StanzaErrorType): void {
    if (!this.conn.isOpen || !canBounce(el)) return;
    if (!isRequest(el) && el.local !== "message") return;
    const reply = stanzaErrorReply(el, condition, { ...(text ? { text } : {}), ...(type ? { type } : condition === "remote-server-timeout" ? { type: "wait" } : {}) });
    if (this.bound) reply.attrs.to = this.bound.full;
    // The reply goes to the client stream, whose default namespace is jabber:client.
    delete reply.attrs.xmlns;
    this.reply(reply);
  }

  // ---- the end -----------------------------------------------------------------

  private onClose(reason: CloseReason): void {
    clearTimeout(this.failureTimer);
    const b = this.binding;
    if (b) clearTimeout(b.timer);
    const sid = this.bound?.sid ?? b?.sid;
    const bare = this.bound?.bare ?? b?.jid.bareString();
    const why = reason.error
      ? `${reason.remote ? "client sent " : ""}${reason.error.condition}`
      : reason.socketError ? `socket: ${reason.socketError}` : "stream closed";
    if (sid !== undefined && bare !== undefined) {
      this.ctx.untrack(sid, this);
      // A kicked session is already gone from the SM.
      if (!this.kicked) this.ctx.outlet.send(sessionEnvelope({ type: "end", from: this.ctx.address, to: bare, sid, reason: why }));
    }
    this.binding = undefined;
    this.queue.length = 0;
    this.ctx.closed(this);
    const fields = { reason: why, jid: this.bound?.full, text: reason.error?.text };
    if (this.tlsPending && reason.socketError) this.log.warn(fields, "TLS negotiation failed; connection closed");
    else this.log.info(fields, "connection closed");
  }
}

class RegistrationError extends Error {
  constructor(readonly condition: StanzaErrorCondition, message: string, readonly type?: StanzaErrorType) {
    super(message);
  }
}
