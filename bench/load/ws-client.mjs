// A minimal XMPP-over-WebSocket client (RFC 7395) for benchmarks, the
// WebSocket twin of client.mjs: `ws` for the socket, <open/>, SASL PLAIN,
// <open/> again, bind, then stanzas as text, one per message. It parses
// nothing into trees: every message is one element, told apart by its start.
import { WebSocket } from "ws";

const FRAMING = "urn:ietf:params:xml:ns:xmpp-framing";
let counter = 0;

export class WsXmppClient {
  /** @param {{url: string, domain: string, user: string, password: string, timeoutMs?: number}} o */
  constructor(o) {
    this.o = o;
    this.resource = `ws${++counter}`;
    this.jid = undefined;
    this.closed = false;
    /** Every message after binding: (text) => void */
    this.onStanza = () => {};
  }

  /** Connects and logs in; resolves when the resource is bound. */
  login() {
    return new Promise((resolve, reject) => {
      let phase = "connect";
      const fail = (why) => {
        clearTimeout(timer);
        this.destroy();
        reject(new Error(`${why} during ${phase}`));
      };
      const timer = setTimeout(() => fail("timeout"), this.o.timeoutMs ?? 30_000);
      const ws = new WebSocket(this.o.url, "xmpp", { rejectUnauthorized: false, perMessageDeflate: false });
      this.ws = ws;
      const open = () => ws.send(`<open xmlns='${FRAMING}' to='${this.o.domain}' version='1.0'/>`);
      ws.on("error", (e) => fail(e.message));
      ws.on("close", () => {
        this.closed = true;
        if (phase !== "bound") fail("closed");
      });
      ws.on("open", () => {
        phase = "sasl";
        open();
      });
      ws.on("message", (data) => {
        const t = data.toString();
        if (phase === "bound") return this.onStanza(t);
        if (t.startsWith("<open")) return;
        if (phase === "sasl" && t.startsWith("<stream:features")) {
          if (!t.includes("<mechanism>PLAIN</mechanism>")) return fail("no PLAIN offered");
          ws.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from(`\0${this.o.user}\0${this.o.password}`).toString("base64")}</auth>`);
        } else if (phase === "sasl" && t.startsWith("<success")) {
          phase = "restart";
          open();
        } else if (phase === "restart" && t.startsWith("<stream:features")) {
          phase = "bind";
          ws.send(`<iq xmlns='jabber:client' type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>${this.resource}</resource></bind></iq>`);
        } else if (phase === "bind" && t.startsWith("<iq")) {
          const m = /<jid>([^<]+)<\/jid>/.exec(t);
          if (!m) return fail(`bind refused: ${t.slice(0, 200)}`);
          this.jid = m[1];
          phase = "bound";
          clearTimeout(timer);
          resolve(this.jid);
        } else if (t.startsWith("<failure") || t.includes("<stream:error")) {
          fail(t.slice(0, 200));
        }
      });
    });
  }

  send(text) {
    if (!this.closed && this.ws.readyState === WebSocket.OPEN) this.ws.send(text);
  }

  /** <close/>, then the WebSocket. */
  close() {
    if (this.closed) return;
    this.closed = true;
    try {
      this.ws.send(`<close xmlns='${FRAMING}'/>`);
      this.ws.close(1000);
    } catch { /* already gone */ }
    setTimeout(() => this.ws.terminate(), 2000).unref();
  }

  destroy() {
    this.closed = true;
    this.ws?.terminate();
  }
}
