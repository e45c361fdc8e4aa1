// A minimal XMPP client for load generation: one TCP (optionally STARTTLS)
// connection, SASL PLAIN or SCRAM, stream restart, resource binding, the
// RFC 3921 session iq only when the server requires it, and answers to the
// server's pings and roster pushes. Everything else goes to `onStanza`.
//
// Hand-written stream XML, raw node:net / node:tls sockets, no tree: the
// generator must stay cheap next to the server it measures.
import { pbkdf2 } from "node:crypto";
import { connect as netConnect } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { StringDecoder } from "node:string_decoder";
import { performance } from "node:perf_hooks";
import { ScramClient } from "../../packages/sasl/dist/index.js";
import { StreamSplitter, attr, childText, errorCondition, escapeXml, firstChildName } from "./xml.mjs";

const NS_TLS = "urn:ietf:params:xml:ns:xmpp-tls";
const NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl";
const NS_BIND = "urn:ietf:params:xml:ns:xmpp-bind";
const NS_SESSION = "urn:ietf:params:xml:ns:xmpp-session";
const NS_SM = "urn:xmpp:sm:3";
// Stanzas this client writes, counted for XEP-0198's ack requests. The
// generator writes only unnested stanzas, so their start tags are the count.
const STANZA_START = /<(?:message|presence|iq)[\s>/]/g;

export const now = () => performance.now();

/** An error that ends a login, with a short category used to count failures. */
export class LoginError extends Error {
  constructor(kind, detail) {
    super(detail ? `${kind}: ${detail}` : kind);
    this.kind = kind;
  }
}

// SaltedPassword cache (RFC 5802 §5.1 lets a client keep it): all benchmark
// accounts usually share one password, and often one salt, so PBKDF2 runs
// once per (password, salt, iterations) instead of once per login, and the
// generator does not spend a core on hashing the server does not do.
const saltedCache = new Map();
function saltedPassword(mechanism, password, salt, iterations) {
  const key = `${mechanism}\0${password}\0${salt.toString("base64")}\0${iterations}`;
  let p = saltedCache.get(key);
  if (p === undefined) {
    const [digest, len] = mechanism === "SCRAM-SHA-256" ? ["sha256", 32] : ["sha1", 20];
    p = new Promise((resolve, reject) => pbkdf2(password, salt, iterations, len, digest, (e, k) => (e ? reject(e) : resolve(k))));
    if (saltedCache.size > 1000) saltedCache.clear();
    saltedCache.set(key, p);
  }
  return p;
}

let resourceCounter = 0;

export class XmppClient {
  /**
   * @param {object} o
   * @param {string} o.host
   * @param {number} o.port
   * @param {string} o.domain
   * @param {string} o.user      localpart
   * @param {string} o.password
   * @param {boolean} [o.tls]    STARTTLS (required when set)
   * @param {string} [o.mech]    "PLAIN" | "SCRAM-SHA-256" | "SCRAM-SHA-1"
   * @param {string} [o.resource]
   * @param {number} [o.timeoutMs] login timeout
   * @param {boolean} [o.scramCache] cache SaltedPassword (default true)
   * @param {number} [o.sm] XEP-0198: enable stream management after binding (required when set) and ask for an ack every `sm` stanzas sent; 0 = off
   */
  constructor(o) {
    this.o = o;
    this.mech = o.mech ?? "PLAIN";
    this.resource = o.resource ?? `load${++resourceCounter}`;
    this.bare = `${o.user}@${o.domain}`;
    this.jid = undefined; // full JID once bound
    this.phase = "new";
    this.secure = false;
    this.authed = false;
    this.bound = false;
    this.closed = false;
    this.closeReason = undefined;
    /** @type {(el: {name: string, head: string, raw: string}) => void} */
    this.onStanza = () => {};
    /** Called once when the connection ends after binding (not for close() we asked for). */
    this.onClose = () => {};
    /** Roster pushes: (jid, subscription, ask) */
    this.onRosterPush = undefined;
    this.times = { start: 0, tcp: 0, tls: 0, sasl: 0, bound: 0 };
    this.pendingIq = new Map();
    this.iqCounter = 0;
    this.sessionRequired = false;
    // XEP-0198 counters: stanzas handled from the server (our h), stanzas sent, the server's last h.
    this.sm = { offered: false, enabled: false, hIn: 0, sent: 0, acked: 0 };
    this.splitter = new StreamSplitter({
      header: () => {},
      element: (el) => this.element(el),
      end: () => this.fail(new LoginError(`server closed the stream during ${this.phase}`)),
    });
    this.decoder = new StringDecoder("utf8");
    this.socket = undefined;
    this.writeBuf = "";
    this.flushScheduled = false;
  }

  /** Connects and logs in; resolves when the resource is bound (and the session iq answered, if required). */
  login() {
    return new Promise((resolve, reject) => {
      this.resolveLogin = resolve;
      this.rejectLogin = reject;
      this.times.start = now();
      this.phase = "connect";
      this.timer = setTimeout(() => this.fail(new LoginError(`timeout during ${this.phase}`)), this.o.timeoutMs ?? 30_000);
      const s = netConnect({ host: this.o.host, port: this.o.port });
      s.setNoDelay(true);
      this.attach(s);
      s.once("connect", () => {
        this.times.tcp = now();
        this.phase = "stream";
        this.openStream();
      });
    });
  }

  attach(s) {
    this.socket = s;
    s.on("data", (d) => {
      try {
        this.splitter.push(this.decoder.write(d));
      } catch (err) {
        this.fail(new LoginError("input error", err.message));
      }
    });
    s.on("error", (err) => this.fail(new LoginError(`socket error during ${this.phase}: ${err.code ?? err.message}`)));
    s.on("close", () => this.fail(new LoginError(`connection closed during ${this.phase}`)));
  }

  openStream() {
    this.write(`<?xml version='1.0'?><stream:stream to='${this.o.domain}' xmlns='jabber:client' ` +
      "xmlns:stream='http://etherx.jabber.org/streams' version='1.0' xml:lang='en'>");
  }

  /** Queue text; all writes of one tick go out in one socket write. */
  send(text) {
    if (this.closed) return false;
    if (this.sm.enabled) text = this.countForAcks(text);
    this.writeBuf += text;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      queueMicrotask(() => this.flush());
    }
    return true;
  }

  flush() {
    this.flushScheduled = false;
    if (this.writeBuf.length === 0 || this.closed) return;
    const t = this.writeBuf;
    this.writeBuf = "";
    this.socket.write(t);
  }

  /** Counts the stanzas in `text`; appends an ack request each time another `o.sm` went out. */
  countForAcks(text) {
    const before = this.sm.sent;
    this.sm.sent += text.match(STANZA_START)?.length ?? 0;
    const every = this.o.sm;
    return Math.floor(this.sm.sent / every) > Math.floor(before / every) ? `${text}<r xmlns='${NS_SM}'/>` : text;
  }

  /** Immediate write (negotiation). */
  write(text) {
    if (this.closed) return;
    if (this.writeBuf.length) this.flush();
    this.socket.write(text);
  }

  /** Sends an iq and resolves with the answer element (result or error). */
  iq(type, payload, to) {
    const id = `q${++this.iqCounter}`;
    return new Promise((resolve, reject) => {
      this.pendingIq.set(id, { resolve, reject });
      this.send(`<iq type='${type}' id='${id}'${to ? ` to='${escapeXml(to)}'` : ""}>${payload}</iq>`);
    });
  }

  // ------------------------------------------------------------------ incoming
  element(el) {
    if (this.bound) {
      this.stanza(el);
      return;
    }
    switch (el.name) {
      case "stream:features":
        return this.features(el);
      case "proceed":
        return this.startTls();
      case "challenge":
        return this.challenge(el);
      case "success":
        return this.success(el);
      case "failure":
        if (el.raw.includes(NS_TLS)) return this.fail(new LoginError("STARTTLS refused"));
        return this.fail(new LoginError(`SASL failure: ${firstChildName(el.raw) ?? "unknown"}`));
      case "stream:error":
        return this.fail(new LoginError(`stream error: ${firstChildName(el.raw) ?? "unknown"}`, childText(el.raw, "text")));
      case "iq":
        return this.negotiationIq(el);
      case "enabled":
      case "failed":
        return this.phase === "sm enable" ? this.smAnswer(el) : undefined;
      default:
        // Stanzas before binding (some servers push presence early): ignore.
        return undefined;
    }
  }

  features(el) {
    const raw = el.raw;
    if (!this.secure && this.o.tls) {
      if (!raw.includes("<starttls")) return this.fail(new LoginError("STARTTLS not offered"));
      this.phase = "starttls";
      this.write(`<starttls xmlns='${NS_TLS}'/>`);
      return undefined;
    }
    if (!this.authed) {
      const mechs = [...raw.matchAll(/<mechanism>([^<]+)<\/mechanism>/g)].map((m) => m[1].trim());
      if (!mechs.includes(this.mech)) {
        return this.fail(new LoginError(`${this.mech} not offered`, `offered: ${mechs.join(" ") || "none"}`));
      }
      this.phase = "sasl";
      if (this.mech === "PLAIN") {
        const p = Buffer.from(`\0${this.o.user}\0${this.o.password}`, "utf8").toString("base64");
        this.write(`<auth xmlns='${NS_SASL}' mechanism='PLAIN'>${p}</auth>`);
      } else {
        try {
          this.scram = new ScramClient(this.mech, this.o.user, this.o.password);
        } catch (err) {
          return this.fail(new LoginError("SCRAM client error", err.message));
        }
        this.write(`<auth xmlns='${NS_SASL}' mechanism='${this.mech}'>${Buffer.from(this.scram.first()).toString("base64")}</auth>`);
      }
      return undefined;
    }
    if (!raw.includes("<bind")) return this.fail(new LoginError("bind not offered"));
    this.sm.offered = raw.includes(NS_SM);
    // RFC 3921 session establishment only when advertised without <optional/> (RFC 6121 dropped it).
    const s = raw.indexOf("<session");
    this.sessionRequired = false;
    if (s >= 0 && raw.includes(NS_SESSION)) {
      const headEnd = raw.indexOf(">", s);
      if (raw.charCodeAt(headEnd - 1) === 47) this.sessionRequired = true; // <session/>: no <optional/> inside
      else this.sessionRequired = !raw.slice(headEnd, raw.indexOf("</session>", headEnd)).includes("<optional");
    }
    this.phase = "bind";
    this.write(`<iq type='set' id='bind1'><bind xmlns='${NS_BIND}'><resource>${escapeXml(this.resource)}</resource></bind></iq>`);
    return undefined;
  }

  startTls() {
    this.phase = "tls";
    const plain = this.socket;
    plain.removeAllListeners("data");
    plain.removeAllListeners("error");
    plain.removeAllListeners("close");
    // A socket error now surfaces on the TLS socket.
    plain.on("error", () => {});
    const t = tlsConnect({ socket: plain, servername: this.o.domain, rejectUnauthorized: false });
    this.splitter.reset();
    this.decoder = new StringDecoder("utf8");
    this.attach(t);
    t.once("secureConnect", () => {
      this.secure = true;
      this.times.tls = now();
      this.phase = "stream (after TLS)";
      this.openStream();
    });
  }

  challenge(el) {
    if (!this.scram) return this.fail(new LoginError("unexpected SASL challenge"));
    const serverFirst = Buffer.from(childTextOf(el), "base64").toString("utf8");
    this.clientFinal(serverFirst).then(
      (final) => this.write(`<response xmlns='${NS_SASL}'>${Buffer.from(final).toString("base64")}</response>`),
      (err) => this.fail(new LoginError("SCRAM error", err.message)),
    );
  }

  async clientFinal(serverFirst) {
    const c = this.scram;
    // The cache needs ScramClient's parsing and proof steps separately; fall back to its own PBKDF2 if they are not there.
    if (this.o.scramCache !== false && typeof c.parseServerFirst === "function" && typeof c.finalFrom === "function") {
      const sf = c.parseServerFirst(serverFirst);
      const salted = await saltedPassword(this.mech, this.o.password, sf.salt, sf.iterations);
      return c.finalFrom(serverFirst, sf, salted);
    }
    return c.finalAsync(serverFirst);
  }

  success(el) {
    if (this.scram) {
      try {
        this.scram.verify(Buffer.from(childTextOf(el), "base64").toString("utf8"));
      } catch (err) {
        return this.fail(new LoginError("SCRAM server signature", err.message));
      }
    }
    this.authed = true;
    this.times.sasl = now();
    this.phase = "stream (after SASL)";
    this.splitter.reset();
    this.openStream();
    return undefined;
  }

  /** The answer to <enable/>: the login is complete once stream management is on. */
  smAnswer(el) {
    if (el.name !== "enabled") return this.fail(new LoginError(`stream management refused: ${firstChildName(el.raw) ?? "unknown"}`));
    this.sm.enabled = true;
    return this.boundOk();
  }

  negotiationIq(el) {
    const id = attr(el.head, "id");
    const type = attr(el.head, "type");
    if (id === "bind1") {
      if (type !== "result") return this.fail(new LoginError(`bind error: ${errorCondition(el.raw)}`));
      this.jid = childText(el.raw, "jid") ?? `${this.bare}/${this.resource}`;
      if (this.sessionRequired) {
        this.phase = "session";
        this.write(`<iq type='set' id='sess1'><session xmlns='${NS_SESSION}'/></iq>`);
        return undefined;
      }
      return this.boundOk();
    }
    if (id === "sess1") {
      if (type !== "result") return this.fail(new LoginError(`session error: ${errorCondition(el.raw)}`));
      return this.boundOk();
    }
    return undefined;
  }

  boundOk() {
    if (this.o.sm && !this.sm.enabled) {
      if (!this.sm.offered) return this.fail(new LoginError("stream management not offered"));
      this.phase = "sm enable";
      this.write(`<enable xmlns='${NS_SM}' resume='true'/>`);
      return undefined;
    }
    this.bound = true;
    this.phase = "bound";
    this.times.bound = now();
    clearTimeout(this.timer);
    this.splitter.on.end = () => this.ended("server closed the stream");
    const s = this.socket;
    s.removeAllListeners("error");
    s.removeAllListeners("close");
    s.on("error", (err) => this.ended(`socket error: ${err.code ?? err.message}`));
    s.on("close", () => this.ended("connection closed"));
    const r = this.resolveLogin;
    this.resolveLogin = this.rejectLogin = undefined;
    r?.();
  }

  // ------------------------------------------------------------------ bound
  stanza(el) {
    if (this.sm.enabled) {
      if (el.name === "r") {
        this.send(`<a xmlns='${NS_SM}' h='${this.sm.hIn}'/>`);
        return;
      }
      if (el.name === "a") {
        this.sm.acked = Number(attr(el.head, "h") ?? this.sm.acked);
        return;
      }
      if (el.name === "message" || el.name === "presence" || el.name === "iq") this.sm.hIn = (this.sm.hIn + 1) % 2 ** 32;
    }
    if (el.name === "iq") {
      const type = attr(el.head, "type");
      if (type === "result" || type === "error") {
        const id = attr(el.head, "id");
        const p = id === undefined ? undefined : this.pendingIq.get(id);
        if (p) {
          this.pendingIq.delete(id);
          p.resolve(el);
          return;
        }
      } else if (type === "get" || type === "set") {
        this.answerIq(el, type);
        return;
      }
    } else if (el.name === "stream:error") {
      this.ended(`stream error: ${firstChildName(el.raw) ?? "unknown"}`);
      return;
    }
    this.onStanza(el);
  }

  answerIq(el, type) {
    const id = attr(el.head, "id") ?? "";
    const from = attr(el.head, "from");
    const to = from ? ` to='${escapeXml(from)}'` : "";
    const raw = el.raw;
    if (type === "get" && raw.includes("urn:xmpp:ping")) {
      this.send(`<iq type='result' id='${escapeXml(id)}'${to}/>`);
      return;
    }
    if (type === "set" && raw.includes("jabber:iq:roster")) {
      // RFC 6121 §2.1.6: acknowledge roster pushes.
      this.send(`<iq type='result' id='${escapeXml(id)}'${to}/>`);
      if (this.onRosterPush) {
        for (const m of raw.matchAll(/<item\s[^>]*>/g)) {
          const head = m[0];
          this.onRosterPush(attr(head, "jid"), attr(head, "subscription") ?? "none", attr(head, "ask"));
        }
      }
      return;
    }
    this.send(`<iq type='error' id='${escapeXml(id)}'${to}><error type='cancel'>` +
      "<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>");
  }

  // ------------------------------------------------------------------ the end
  fail(err) {
    if (this.closed) return;
    if (this.bound) {
      this.ended(err.message);
      return;
    }
    clearTimeout(this.timer);
    this.closed = true;
    this.closeReason = err.message;
    this.socket?.destroy();
    const r = this.rejectLogin;
    this.resolveLogin = this.rejectLogin = undefined;
    r?.(err);
  }

  /** The server (or the network) ended a bound session. */
  ended(reason) {
    if (this.closed) return;
    this.closed = true;
    this.closeReason = reason;
    this.socket?.destroy();
    for (const p of this.pendingIq.values()) p.reject(new Error(reason));
    this.pendingIq.clear();
    this.onClose(reason);
  }

  /**
   * Ends the stream ourselves: optional final text (e.g. unavailable presence),
   * then </stream:stream> and a half-close; the socket is destroyed when the
   * server closes its side, or after `lingerMs`.
   */
  close(finalText = "", lingerMs = 2000) {
    if (this.closed) return;
    clearTimeout(this.timer);
    this.closed = true;
    this.closeReason = "closed by us";
    for (const p of this.pendingIq.values()) p.reject(new Error("closed"));
    this.pendingIq.clear();
    const s = this.socket;
    if (!s) return;
    const r = this.rejectLogin;
    this.resolveLogin = this.rejectLogin = undefined;
    r?.(new LoginError("closed by us"));
    s.removeAllListeners("data");
    s.removeAllListeners("close");
    s.removeAllListeners("error");
    s.on("error", () => {});
    if (s.destroyed || !s.writable) {
      s.destroy();
      return;
    }
    const text = this.writeBuf + finalText + (this.bound || this.authed || this.phase !== "connect" ? "</stream:stream>" : "");
    this.writeBuf = "";
    s.end(text);
    const t = setTimeout(() => s.destroy(), lingerMs);
    t.unref();
    s.once("close", () => clearTimeout(t));
    s.resume(); // read and discard the server's closing bytes
  }

  /** Drops the TCP connection at once. */
  destroy() {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    this.socket?.destroy();
  }
}

/** Text content of an element like <challenge xmlns='...'>BASE64</challenge>. */
function childTextOf(el) {
  if (el.raw === el.head) return "";
  return el.raw.slice(el.head.length, el.raw.lastIndexOf("<")).trim();
}
