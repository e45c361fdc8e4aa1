/**
 * Clients for the end-to-end tests: `@xmpp/client` (a real client library,
 * STARTTLS and its own SCRAM-SHA-1), and a small raw client over node:tls
 * for what the library cannot do (SCRAM-SHA-256, sending broken XML).
 */
import { connect as tcpConnect, type Socket } from "node:net";
import { connect as tlsConnect, type TLSSocket } from "node:tls";
import { client, xml, type Authenticate, type XmppClient, type XmppElement } from "@xmpp/client";
import { ScramClient, type ScramMechanism } from "@jabberfarm/sasl";
import { parseElement, type Element } from "@jabberfarm/xml";

// The farm makes itself a self-signed certificate; the tests trust it blindly.
process.env.NODE_TLS_REJECT_UNAUTHORIZED = "0";

export { xml };


export interface LibraryClientOptions {
  /**
   * SASL PLAIN (over TLS) instead of the library's SCRAM-SHA-1, whose 4096
   * PBKDF2 rounds it runs as one WebCrypto HMAC call each: about 0.4 s of a
   * core per login, too slow for tests that log in hundreds of clients.
   */
  plain?: boolean;
}

const NS_STREAM = "http://etherx.jabber.org/streams";
const NS_STREAM_ERRORS = "urn:ietf:params:xml:ns:xmpp-streams";

/** @xmpp/client with a queue of received stanzas to wait on. */
export class LibraryClient {
  readonly xmpp: XmppClient;
  readonly received: Element[] = [];
  /** Every service the library connected to, in order: the first, then each `<see-other-host/>` it followed. */
  readonly services: string[] = [];
  /** The hosts named by `<see-other-host/>` stream errors; the library reconnects there by itself. */
  readonly seeOtherHost: string[] = [];
  private waiters: Array<() => void> = [];
  jid = "";

  constructor(port: number, username: string, password: string, resource: string, domain = "localhost", host = "127.0.0.1", options: LibraryClientOptions = {}) {
    const credentials = options.plain ? { credentials: (authenticate: Authenticate) => authenticate({ username, password }, "PLAIN") } : {};
    // The library gives each step (stream open, TLS...) 2 s by default; a
    // loaded 2-core machine running several farms can take longer than that.
    this.xmpp = client({ service: `xmpp://${host}:${port}`, domain, username, password, resource, ...credentials });
    (this.xmpp as unknown as { timeout: number }).timeout = 10_000;
    // Tests decide when to connect again; the library's own reconnect would
    // retry a refused login forever.
    this.xmpp.reconnect.stop();
    this.xmpp.on("error", () => {});
    this.xmpp.on("connecting", (service: string) => this.services.push(service));
    this.xmpp.on("nonza", (el: XmppElement) => {
      const host = el.is("error", NS_STREAM) ? el.getChildText("see-other-host", NS_STREAM_ERRORS) : null;
      if (host !== null) this.seeOtherHost.push(host);
    });
    this.xmpp.on("stanza", (el: XmppElement) => {
      // Re-read with our parser so tests use one element API.
      this.received.push(parseElement(el.toString(), "jabber:client"));
      for (const w of this.waiters.splice(0)) w();
    });
  }

  static async login(port: number, username: string, password: string, resource: string, host = "127.0.0.1"): Promise<LibraryClient> {
    const c = new LibraryClient(port, username, password, resource, "localhost", host);
    const address = await c.xmpp.start();
    c.jid = address.toString();
    return c;
  }

  async send(stanza: XmppElement): Promise<void> {
    await this.xmpp.send(stanza);
  }

  async iq(stanza: XmppElement): Promise<XmppElement> {
    return this.xmpp.iqCaller.request(stanza, 10_000);
  }

  async next(pred: (el: Element) => boolean, ms = 8000): Promise<Element> {
    const deadline = Date.now() + ms;
    for (;;) {
      const i = this.received.findIndex(pred);
      if (i >= 0) return this.received.splice(i, 1)[0]!;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${this.jid}: nothing matching within ${ms} ms; got ${this.received.map((e) => e.toString()).join(" | ") || "nothing"}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  async stop(): Promise<void> {
    await this.xmpp.stop().catch(() => {});
  }
}

/** A hand-driven XMPP client on a raw socket. */
export class RawClient {
  text = "";
  closed = false;
  private waiters: Array<() => void> = [];
  private constructor(public socket: Socket | TLSSocket) {
    this.listen(socket);
  }

  private listen(s: Socket | TLSSocket): void {
    s.setEncoding("utf8");
    s.on("data", (d: string) => {
      this.text += d;
      this.wake();
    });
    s.on("close", () => {
      this.closed = true;
      this.wake();
    });
    s.on("error", () => {});
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  static connect(port: number, host = "127.0.0.1"): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = tcpConnect({ host, port }, () => resolve(new RawClient(s)));
      s.once("error", reject);
    });
  }

  write(s: string): void {
    this.socket.write(s);
  }

  async until(re: RegExp, ms = 8000): Promise<RegExpExecArray> {
    const deadline = Date.now() + ms;
    for (;;) {
      const m = re.exec(this.text);
      if (m) return m;
      if (this.closed) throw new Error(`closed; waited for ${re}; got ${JSON.stringify(this.text.slice(-400))}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${re}; got ${JSON.stringify(this.text.slice(-400))}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  async waitClosed(ms = 8000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error("still open");
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Attributes added to the client's stream headers (declarations of prefixes, say). */
  headerExtra = "";

  private header(): void {
    this.text = "";
    this.write(`<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' ${this.headerExtra} to='localhost' version='1.0'>`);
  }

  /** STARTTLS, SCRAM (256 by default) and a bound resource: a logged-in session. */
  static async login(port: number, user: string, password: string, resource: string, mechanism: ScramMechanism = "SCRAM-SHA-256"): Promise<RawClient> {
    return RawClient.loginAt("127.0.0.1", port, user, password, resource, mechanism);
  }

  static async loginAt(host: string, port: number, user: string, password: string, resource: string, mechanism: ScramMechanism = "SCRAM-SHA-256"): Promise<RawClient> {
    return (await RawClient.connect(port, host)).logIn(user, password, resource, mechanism);
  }

  /** On a connection made earlier: a stream, STARTTLS, SCRAM and a bound resource. */
  async logIn(user: string, password: string, resource: string, mechanism: ScramMechanism = "SCRAM-SHA-256"): Promise<RawClient> {
    const c = await this.authenticate(user, password, mechanism);
    c.write(`<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>${resource}</resource></bind></iq>`);
    await c.until(/<jid>[^<]+<\/jid>/);
    c.text = "";
    return c;
  }

  /** A stream, STARTTLS and SCRAM: authenticated, with the post-authentication features read, not bound. */
  async authenticate(user: string, password: string, mechanism: ScramMechanism = "SCRAM-SHA-256"): Promise<RawClient> {
    const c = this as RawClient;
    c.header();
    await c.until(/<starttls/);
    c.write("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    await c.until(/<proceed/);
    const plain = c.socket;
    plain.removeAllListeners("data");
    const secure = tlsConnect({ socket: plain, rejectUnauthorized: false, servername: "localhost" });
    await new Promise<void>((resolve, reject) => {
      secure.once("secureConnect", () => resolve());
      secure.once("error", reject);
    });
    c.socket = secure;
    c.listen(secure);
    c.header();
    const features = await c.until(/<\/stream:features>/);
    if (!features.input.includes(`<mechanism>${mechanism}</mechanism>`)) throw new Error(`${mechanism} not offered: ${features.input}`);
    const scram = new ScramClient(mechanism, user, password);
    c.write(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='${mechanism}'>${Buffer.from(scram.first()).toString("base64")}</auth>`);
    const challenge = await c.until(/<challenge[^>]*>([^<]*)<\/challenge>|<failure/);
    if (!challenge[1]) throw new Error(`auth failed: ${c.text}`);
    c.write(`<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>${Buffer.from(scram.final(Buffer.from(challenge[1], "base64").toString())).toString("base64")}</response>`);
    const success = await c.until(/<success[^>]*>([^<]*)<\/success>|<success[^>]*\/>|<failure/);
    if (!/<success/.test(success[0])) throw new Error(`auth failed: ${c.text}`);
    if (success[1]) scram.verify(Buffer.from(success[1], "base64").toString());
    c.header();
    await c.until(/<\/stream:features>/);
    c.text = "";
    return c;
  }
}
