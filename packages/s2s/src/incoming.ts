/**
 * One incoming stream from a remote server (RFC 6120, the receiving side):
 * our header and features (STARTTLS, then SASL EXTERNAL when the peer's
 * certificate is valid for the domain in its header, and dialback), the
 * remote's authentication, then its stanzas, each checked: `from` must be in
 * a domain authenticated on this stream (invalid-from), `to` in one of ours
 * (host-unknown). Bad XML, oversized stanzas and wrong keys end this stream
 * with the stream error RFC 6120 names; no other stream is touched.
 */
import { randomBytes } from "node:crypto";
import type { Socket } from "node:net";
import { TLSSocket } from "node:tls";
import type { Logger } from "pino";
import { XmlConnection } from "@jabberfarm/component";
import { Jid } from "@jabberfarm/jid";
import { NS, StreamError, escapeAttr, type Element, type StreamHeader } from "@jabberfarm/xml";
import { peerValidFor, type S2sTls } from "./certs.js";
import { domainIn, mayFederate, type S2sConfig } from "./config.js";
import { NS_DIALBACK, NS_DIALBACK_FEATURE, NS_SM, verifyDialbackKey } from "./dialback.js";
import { serverHeader, type AuthMethod } from "./negotiate.js";

export interface IncomingDeps {
  config: S2sConfig;
  tls: S2sTls;
  log: Logger;
  /** Streams from `domain` open on this process now (for the per-domain limit). */
  streamsFrom(domain: string): number;
  /** Asks `originating`'s authoritative server whether `key` is right (XEP-0220 §2.2); "error" when it cannot be reached. */
  verifyDialback(receiving: string, originating: string, id: string, key: string): Promise<boolean | "error">;
  /**
   * A checked stanza from `domain` (parsed, canonical). `handled` is to be
   * called once the farm has it for good (its SM acknowledged it): with
   * stream management on, only then does the remote server hear so.
   */
  onStanza(stream: IncomingStream, el: Element, domain: string, handled: () => void): void;
  onAuthenticated(stream: IncomingStream, domain: string, method: AuthMethod): void;
  onClosed(stream: IncomingStream): void;
  /** A stream error we sent, for the failures metric. */
  onError(condition: string): void;
}

const STANZAS: ReadonlySet<string> = new Set(["message", "presence", "iq"]);
const noop = (): void => {};

export class IncomingStream {
  readonly conn: XmlConnection;
  /** The domain the remote named in its header. */
  from: string | undefined;
  /** One of ours, from its header. */
  to: string | undefined;
  readonly authenticated = new Map<string, AuthMethod>();
  private streamId = "";
  private secure: boolean;
  private headerSent = false;
  private readonly authTimer: NodeJS.Timeout;
  private readonly idleTimer: NodeJS.Timeout;
  private lastRead = Date.now();
  private tokens: number;
  private refilled = Date.now();
  private pausedForRate = false;
  private ended = false;
  /** XEP-0198: on once the remote sent <enable/>; stanzas received, and how many of the first of them are handled (h). */
  private sm = false;
  private smReceived = 0;
  private smHandled = 0;
  /** Handled flags of the stanzas after the first `smHandled`. */
  private smPending: boolean[] = [];
  private smAckScheduled = false;

  constructor(socket: Socket, directTls: boolean, private readonly deps: IncomingDeps) {
    this.secure = directTls;
    this.tokens = deps.config.limits.burst;
    this.conn = new XmlConnection(socket, {
      onStreamStart: (h) => this.onHeader(h),
      onElement: (el) => this.onElement(el),
      onClose: (reason) => {
        clearTimeout(this.authTimer);
        clearInterval(this.idleTimer);
        if (this.ended) return;
        this.ended = true;
        if (reason.error && !reason.remote) deps.onError(reason.error.condition);
        deps.log.info({ from: this.from, condition: reason.error?.condition, by: reason.error ? (reason.remote ? "remote" : "us") : undefined, socketError: reason.socketError }, "incoming stream closed");
        deps.onClosed(this);
      },
    }, { maxStanzaBytes: deps.config.limits.maxStanzaBytes, canonical: true });
    socket.on("data", () => (this.lastRead = Date.now()));
    this.authTimer = setTimeout(() => {
      if (this.authenticated.size === 0) this.fail(new StreamError("connection-timeout", "not authenticated in time"));
    }, deps.config.timeouts.authMs);
    this.authTimer.unref();
    const idleMs = deps.config.timeouts.idleSeconds * 1000;
    this.idleTimer = setInterval(() => {
      if (Date.now() - this.lastRead > idleMs) this.fail(new StreamError("connection-timeout", "idle"));
    }, Math.min(idleMs, 60_000) / 2);
    this.idleTimer.unref();
  }

  /** Ends the stream with a stream error, our header first if we have not sent one (RFC 6120 §4.9.1.1). */
  fail(error: StreamError): void {
    if (!this.headerSent) {
      this.headerSent = true;
      this.conn.send(serverHeader(this.to ?? this.deps.config.domains[0]!, this.from));
    }
    this.conn.close(error);
  }

  private onHeader(h: StreamHeader): void {
    const { config } = this.deps;
    this.streamId = randomBytes(12).toString("hex");
    const to = h.attrs.to?.toLowerCase();
    const from = h.attrs.from?.toLowerCase();
    if (h.contentNs !== NS.SERVER) {
      this.fail(new StreamError("invalid-namespace", "a server stream's content is jabber:server"));
      return;
    }
    if (to === undefined || !domainIn(to, config.domains)) {
      this.fail(new StreamError("host-unknown", `this server does not serve '${to ?? ""}'`));
      return;
    }
    this.to = to;
    if (from !== undefined) {
      if (!mayFederate(config, from)) {
        this.fail(new StreamError("policy-violation", `this server does not federate with '${from}'`));
        return;
      }
      if (this.from === undefined && this.deps.streamsFrom(from) >= config.limits.maxConnectionsPerDomain) {
        this.fail(new StreamError("policy-violation", `too many streams from '${from}'`));
        return;
      }
      this.from = from;
    }
    this.headerSent = true;
    this.conn.send(serverHeader(to, from, this.streamId) + this.features());
  }

  private features(): string {
    let f = "<stream:features>";
    if (!this.secure) f += `<starttls xmlns='${NS.TLS}'>${this.deps.config.tls.required ? "<required/>" : ""}</starttls>`;
    if (this.secure && this.from !== undefined && this.authenticated.size === 0 && peerValidFor(this.conn.socket as TLSSocket, this.from)) {
      f += `<mechanisms xmlns='${NS.SASL}'><mechanism>EXTERNAL</mechanism></mechanisms>`;
    }
    if (this.secure || !this.deps.config.tls.required) {
      f += `<dialback xmlns='${NS_DIALBACK_FEATURE}'><errors/></dialback>`;
      f += `<sm xmlns='${NS_SM}'/>`;
    }
    return f + "</stream:features>";
  }

  private onElement(el: Element): void {
    if (el.ns === NS.TLS && el.local === "starttls") return this.startTls();
    if (el.ns === NS.SASL && el.local === "auth") return this.saslExternal(el);
    if (el.ns === NS_DIALBACK && el.local === "result") return void this.dialbackResult(el);
    if (el.ns === NS_DIALBACK && el.local === "verify") return this.dialbackVerify(el);
    if (el.ns === NS_SM) return this.streamManagement(el);
    if (!STANZAS.has(el.local) || el.ns !== NS.SERVER) {
      this.fail(new StreamError("unsupported-stanza-type", `<${el.name}/> is not something a server sends here`));
      return;
    }
    if (this.authenticated.size === 0) {
      this.fail(new StreamError("not-authorized", "stanzas before authentication"));
      return;
    }
    if (!this.secure && this.deps.config.tls.required) {
      this.fail(new StreamError("policy-violation", "encryption is required"));
      return;
    }
    const from = el.attrs.from === undefined ? null : Jid.tryParse(el.attrs.from);
    if (from === null || !this.authenticated.has(from.domain)) {
      this.fail(new StreamError("invalid-from", `'${el.attrs.from ?? ""}' is not in a domain authenticated on this stream`));
      return;
    }
    const to = el.attrs.to === undefined ? null : Jid.tryParse(el.attrs.to);
    if (to === null) {
      this.fail(new StreamError("improper-addressing", "a stanza between servers needs a valid 'to'"));
      return;
    }
    if (!domainIn(to.domain, this.deps.config.domains)) {
      this.fail(new StreamError("host-unknown", `this server does not serve '${to.domain}'`));
      return;
    }
    this.rateLimit();
    this.deps.onStanza(this, el, from.domain, this.sm ? this.handledCallback() : noop);
  }

  /** XEP-0198 on an incoming server stream: enable (no resumption), answer requests. */
  private streamManagement(el: Element): void {
    if (el.local === "enable") {
      if (this.authenticated.size === 0 || this.sm) {
        this.conn.send(`<failed xmlns='${NS_SM}'><unexpected-request xmlns='${NS.STANZA_ERRORS}'/></failed>`);
        return;
      }
      this.sm = true;
      this.conn.send(`<enabled xmlns='${NS_SM}'/>`);
    } else if (el.local === "r" && this.sm) {
      this.conn.send(`<a xmlns='${NS_SM}' h='${this.smHandled}'/>`);
    }
  }

  /** The callback that marks the next counted stanza handled, and says so once h moves. */
  private handledCallback(): () => void {
    const n = this.smReceived++;
    this.smPending.push(false);
    return () => {
      const i = n - this.smHandled;
      if (i < 0 || i >= this.smPending.length) return;
      this.smPending[i] = true;
      let k = 0;
      while (k < this.smPending.length && this.smPending[k]) k++;
      if (k === 0) return;
      this.smPending = this.smPending.slice(k);
      this.smHandled += k;
      // Unasked acknowledgements, one per turn at most (XEP-0198 §4 allows them).
      if (!this.smAckScheduled) {
        this.smAckScheduled = true;
        setImmediate(() => {
          this.smAckScheduled = false;
          if (this.conn.isOpen) this.conn.send(`<a xmlns='${NS_SM}' h='${this.smHandled}'/>`);
        });
      }
    };
  }

  /** A token bucket per stream (so per remote domain and connection): beyond it, reading pauses until it refills. */
  private rateLimit(): void {
    const { stanzasPerSecond, burst } = this.deps.config.limits;
    const now = Date.now();
    this.tokens = Math.min(burst, this.tokens + ((now - this.refilled) * stanzasPerSecond) / 1000);
    this.refilled = now;
    this.tokens -= 1;
    if (this.tokens >= 0 || this.pausedForRate) return;
    this.pausedForRate = true;
    const socket = this.conn.socket;
    socket.pause();
    setTimeout(() => {
      this.pausedForRate = false;
      socket.resume();
    }, Math.ceil((-this.tokens * 1000) / stanzasPerSecond)).unref();
  }

  private startTls(): void {
    if (this.secure) {
      this.conn.send(`<failure xmlns='${NS.TLS}'/>`);
      this.conn.close();
      return;
    }
    this.conn.sendNow(`<proceed xmlns='${NS.TLS}'/>`);
    const plain = this.conn.socket;
    queueMicrotask(() => {
      if (!this.conn.isOpen) return;
      const tlsSocket = new TLSSocket(plain, {
        isServer: true, secureContext: this.deps.tls.serverContext, requestCert: true, rejectUnauthorized: false,
      });
      tlsSocket.on("data", () => (this.lastRead = Date.now()));
      this.secure = true;
      this.conn.upgrade(tlsSocket);
    });
  }

  private saslExternal(el: Element): void {
    const failure = (condition: string): void => this.conn.send(`<failure xmlns='${NS.SASL}'><${condition}/></failure>`);
    if (el.attrs.mechanism !== "EXTERNAL") return failure("invalid-mechanism");
    const from = this.from;
    if (!this.secure || from === undefined || !peerValidFor(this.conn.socket as TLSSocket, from)) return failure("not-authorized");
    const text = el.text().trim();
    const authzid = text === "" || text === "=" ? from : Buffer.from(text, "base64").toString("utf8").toLowerCase();
    if (authzid !== from) return failure("invalid-authzid");
    this.conn.send(`<success xmlns='${NS.SASL}'/>`);
    // The remote opens a new stream next (RFC 6120 §6.4.6).
    this.conn.parser.reset();
    this.authenticated.set(from, "external");
    this.deps.onAuthenticated(this, from, "external");
  }

  /** XEP-0220 §2.1.2: the remote says who it is with a key; its authoritative server says whether the key is right. */
  private async dialbackResult(el: Element): Promise<void> {
    const originating = el.attrs.from?.toLowerCase();
    const receiving = el.attrs.to?.toLowerCase();
    if (el.attrs.type !== undefined) return; // an answer: we do not send db:result on incoming streams
    if (receiving === undefined || !domainIn(receiving, this.deps.config.domains)) {
      this.fail(new StreamError("host-unknown", `this server does not serve '${receiving ?? ""}'`));
      return;
    }
    if (originating === undefined || (this.from !== undefined && originating !== this.from)) {
      this.fail(new StreamError("invalid-from", `dialback for '${originating ?? ""}' on a stream from '${this.from ?? ""}'`));
      return;
    }
    if (!mayFederate(this.deps.config, originating)) {
      this.fail(new StreamError("policy-violation", `this server does not federate with '${originating}'`));
      return;
    }
    if (!this.secure && this.deps.config.tls.required) {
      this.fail(new StreamError("policy-violation", "encryption is required before dialback"));
      return;
    }
    const answer = await this.deps.verifyDialback(receiving, originating, this.streamId, el.text());
    if (!this.conn.isOpen) return;
    const attrs = `from='${escapeAttr(receiving)}' to='${escapeAttr(originating)}'`;
    if (answer === true) {
      this.conn.send(`<db:result ${attrs} type='valid'/>`);
      this.authenticated.set(originating, "dialback");
      this.deps.onAuthenticated(this, originating, "dialback");
    } else if (answer === false) {
      this.conn.send(`<db:result ${attrs} type='invalid'/>`);
      this.fail(new StreamError("not-authorized", "the dialback key is not right"));
    } else {
      this.conn.send(`<db:result ${attrs} type='error'><error type='cancel'><remote-server-not-found xmlns='${NS.STANZA_ERRORS}'/></error></db:result>`);
    }
  }

  /** XEP-0220 §2.2.2: a receiving server asks whether a key one of us made is right. */
  private dialbackVerify(el: Element): void {
    const receiving = el.attrs.from?.toLowerCase();
    const originating = el.attrs.to?.toLowerCase();
    const id = el.attrs.id;
    if (originating === undefined || !domainIn(originating, this.deps.config.domains)) {
      this.fail(new StreamError("host-unknown", `this server does not serve '${originating ?? ""}'`));
      return;
    }
    if (receiving === undefined || id === undefined) {
      this.fail(new StreamError("invalid-xml", "db:verify needs from, to and id"));
      return;
    }
    const valid = verifyDialbackKey(this.deps.config.dialbackSecret, receiving, originating, id, el.text());
    this.conn.send(`<db:verify from='${escapeAttr(originating)}' to='${escapeAttr(receiving)}' id='${escapeAttr(id)}' type='${valid ? "valid" : "invalid"}'/>`);
  }
}
