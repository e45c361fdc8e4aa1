/**
 * The WebSocket listener (RFC 7395) and host-meta (XEP-0156) against real
 * peers (router, SM, Postgres storage) and a WebSocket client driven by
 * hand (the `ws` package): framing, login, and what bad input gets.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { WebSocket } from "ws";
import { NS, parseElement, type Element } from "@jabberfarm/xml";
import type { C2sProcess } from "./process.js";
import { DOMAIN, RawClient, delay, startFarm, type C2sTestFarm } from "./testing.js";
import { NS_FRAMING } from "./websocket-transport.js";

// Frames are parsed as documents of their own: a namespace they do not declare stays unknown.
const NO_NS = "urn:example:undeclared";
const ORIGIN = "https://chat.example.test";

let farm: C2sTestFarm;
let c2s: C2sProcess;
let base: string;

/** A WebSocket XMPP client by hand: every message is parsed on its own. */
class WsClient {
  readonly frames: Element[] = [];
  readonly texts: string[] = [];
  closed: Promise<{ code: number; reason: string }>;
  private waiters: Array<() => void> = [];

  private constructor(readonly ws: WebSocket) {
    ws.on("message", (data) => {
      const text = data.toString();
      this.texts.push(text);
      this.frames.push(parseElement(text, NO_NS));
      for (const w of this.waiters.splice(0)) w();
    });
    this.closed = new Promise((resolve) => ws.on("close", (code, reason) => resolve({ code, reason: reason.toString() })));
  }

  static open(opts: { protocol?: string; origin?: string; path?: string } = {}): Promise<WsClient> {
    const ws = new WebSocket(`${base}${opts.path ?? "/xmpp-websocket"}`, opts.protocol ?? "xmpp", { rejectUnauthorized: false, ...(opts.origin ? { origin: opts.origin } : {}) });
    return new Promise((resolve, reject) => {
      ws.once("open", () => resolve(new WsClient(ws)));
      ws.once("unexpected-response", (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
      ws.once("error", reject);
    });
  }

  send(text: string | Buffer, binary = false): void {
    this.ws.send(text, { binary });
  }

  async next(pred: (el: Element) => boolean, ms = 5000): Promise<Element> {
    const deadline = Date.now() + ms;
    for (let seen = 0; ; ) {
      for (; seen < this.frames.length; seen++) if (pred(this.frames[seen]!)) return this.frames[seen]!;
      if (Date.now() > deadline) throw new Error(`no such frame within ${ms} ms; got ${this.texts.join(" | ")}`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 50);
      });
    }
  }

  openStream(): void {
    this.send(`<open xmlns='${NS_FRAMING}' to='${DOMAIN}' version='1.0'/>`);
  }

  /** PLAIN (the stream is wss), restart, bind. */
  async login(user: string, password = "pw"): Promise<string> {
    this.openStream();
    await this.next((el) => el.local === "features");
    this.send(`<auth xmlns='${NS.SASL}' mechanism='PLAIN'>${Buffer.from(`\0${user}\0${password}`).toString("base64")}</auth>`);
    assert.equal((await this.next((el) => el.ns === NS.SASL && el.local !== "auth")).local, "success");
    const before = this.frames.length;
    this.openStream();
    await this.next((el) => el.local === "features" && this.frames.indexOf(el) >= before);
    this.send(`<iq xmlns='jabber:client' type='set' id='b'><bind xmlns='${NS.BIND}'><resource>web</resource></bind></iq>`);
    const bound = await this.next((el) => el.local === "iq" && el.attrs.id === "b");
    return bound.getChild("bind", NS.BIND)!.getChildText("jid")!;
  }

  close(): void {
    this.ws.terminate();
  }
}

async function streamError(c: WsClient): Promise<string> {
  const el = await c.next((e) => e.local === "error" && e.ns === NS.STREAMS);
  return el.getChildren().find((x) => x.local !== "text")!.local;
}

before(async () => {
  farm = await startFarm();
  await farm.addUser("ada");
  await farm.addUser("bea");
  c2s = await farm.startC2s({
    listeners: { starttls: { host: "127.0.0.1", port: 0 }, directTls: false, websocket: { host: "127.0.0.1", port: 0 } },
    websocket: { allowedOrigins: [ORIGIN], pingIntervalMs: 200 },
    limits: { maxStanzaBytes: 16_000 },
  });
  base = `wss://127.0.0.1:${c2s.ports.websocket}`;
});

after(async () => {
  await farm?.stop();
});

describe("XMPP over WebSocket", () => {
  it("host-meta names the WebSocket endpoint, as XRD and JSON, with CORS", async () => {
    const https = `https://127.0.0.1:${c2s.ports.websocket}`;
    // Self-signed certificate: Node's fetch cannot be told to accept it, so go through ws's https agent-free path with node:https.
    const get = (path: string, method = "GET") => import("node:https").then(({ request }) => new Promise<{ status: number; headers: Record<string, unknown>; body: string }>((resolve, reject) => {
      const req = request(`${https}${path}`, { method, rejectUnauthorized: false, headers: { Origin: "https://anywhere.example" } }, (res) => {
        let body = "";
        res.setEncoding("utf8").on("data", (d: string) => (body += d)).on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body }));
      });
      req.on("error", reject).end();
    }));
    const xrd = await get("/.well-known/host-meta");
    assert.equal(xrd.status, 200);
    assert.equal(xrd.headers["access-control-allow-origin"], "*");
    const link = parseElement(xrd.body.replace(/^<\?xml[^>]*\?>/, ""), NO_NS).getChild("Link")!;
    assert.equal(link.attrs.rel, "urn:xmpp:alt-connections:websocket");
    assert.equal(link.attrs.href, `wss://127.0.0.1:${c2s.ports.websocket}/xmpp-websocket`);
    const json = await get("/.well-known/host-meta.json");
    assert.deepEqual(JSON.parse(json.body), { links: [{ rel: "urn:xmpp:alt-connections:websocket", href: link.attrs.href }] });
    const preflight = await get("/.well-known/host-meta.json", "OPTIONS");
    assert.equal(preflight.status, 204);
    assert.match(String(preflight.headers["access-control-allow-methods"]), /GET/);
    assert.equal((await get("/elsewhere")).status, 404);
  });

  it("logs in with RFC 7395 framing: <open/>, standalone frames, <close/>", async () => {
    const c = await WsClient.open({ origin: ORIGIN });
    const jid = await c.login("ada");
    assert.equal(jid, "ada@localhost/web");
    const opened = c.frames[0]!;
    assert.equal(opened.local, "open");
    assert.equal(opened.ns, NS_FRAMING);
    assert.equal(opened.attrs.version, "1.0");
    const features = c.frames.find((f) => f.local === "features")!;
    assert.equal(features.ns, NS.STREAMS, "stream:features declares its prefix");
    assert.equal(features.getChild("starttls", NS.TLS), undefined, "no STARTTLS over WebSocket");
    assert.ok(features.getChild("mechanisms", NS.SASL)?.getChildren().some((m) => m.text() === "PLAIN"), "wss is encrypted: PLAIN offered");
    assert.equal(c.frames.find((f) => f.local === "iq")!.ns, NS.CLIENT, "stanzas declare jabber:client");
    // A message to itself comes back, one stanza per frame.
    c.send(`<message xmlns='jabber:client' to='${jid}' id='m1'><body>hello</body></message>`);
    const echoed = await c.next((el) => el.local === "message" && el.attrs.id === "m1");
    assert.equal(echoed.getChildText("body"), "hello");
    assert.equal(echoed.ns, NS.CLIENT);
    // The client's <close/> is answered with ours, then the WebSocket closes normally.
    c.send(`<close xmlns='${NS_FRAMING}'/>`);
    await c.next((el) => el.local === "close" && el.ns === NS_FRAMING);
    assert.equal((await c.closed).code, 1000);
    await waitFor(() => c2s.server.sessionCount === 0, "the session ended");
  });

  it("carries messages and presence between two WebSocket sessions", async () => {
    const a = await WsClient.open();
    const b = await WsClient.open();
    const ja = await a.login("ada");
    const jb = await b.login("bea");
    a.send(`<presence to="${jb}" xmlns="jabber:client"/>`);
    await b.next((el) => el.local === "presence" && el.attrs.from === ja);
    a.send(`<message to="${jb}" type="chat" xmlns="jabber:client"><body>hi bea</body></message>`);
    assert.equal((await b.next((el) => el.local === "message")).getChildText("body"), "hi bea");
    a.close();
    b.close();
  });

  it("carries stanzas between a WebSocket session and a TCP one", async () => {
    const a = await WsClient.open();
    const ja = await a.login("ada");
    const t = await RawClient.connect(c2s.ports.starttls!);
    const jt = await t.login("bea", "pw", "tcp");
    a.send(`<presence to="${jt}" xmlns="jabber:client"/>`);
    assert.equal((await t.next((el) => el.local === "presence")).attrs.from, ja);
    t.write(`<message to='${ja}'><body>from TCP</body></message>`);
    assert.equal((await a.next((el) => el.local === "message")).getChildText("body"), "from TCP");
    a.close();
    t.close();
  });

  it("refuses bad input with the right close code or stream error; other sessions go on", async () => {
    const good = await WsClient.open();
    const jid = await good.login("ada");

    const binary = await WsClient.open();
    binary.send(Buffer.from("<open/>"), true);
    assert.equal((await binary.closed).code, 1003);

    const huge = await WsClient.open();
    huge.openStream();
    huge.send(`<message xmlns='jabber:client'><body>${"x".repeat(40_000)}</body></message>`);
    const hugeClose = await huge.closed;
    assert.equal(hugeClose.code, 1009, "a message above maxMessageBytes: 1009 message too big");

    const large = await WsClient.open();
    large.openStream();
    large.send(`<message xmlns='jabber:client'><body>${"x".repeat(16_100)}</body></message>`);
    assert.equal(await streamError(large), "policy-violation", "a stanza above maxStanzaBytes: policy-violation");

    const text = await WsClient.open();
    text.openStream();
    text.send("hello, is this XMPP?");
    assert.equal(await streamError(text), "bad-format");

    const two = await WsClient.open();
    two.openStream();
    two.send("<presence xmlns='jabber:client'/><presence xmlns='jabber:client'/>");
    assert.equal(await streamError(two), "not-well-formed", "two elements in one message");

    const half = await WsClient.open();
    half.openStream();
    half.send("<message xmlns='jabber:client'><body>");
    assert.equal(await streamError(half), "not-well-formed", "half an element");

    const bare = await WsClient.open();
    bare.openStream();
    await bare.next((el) => el.local === "features");
    bare.send("<presence/>");
    assert.equal(await streamError(bare), "invalid-namespace", "a stanza that declares no namespace");

    const early = await WsClient.open();
    early.send("<presence xmlns='jabber:client'/>");
    assert.equal(await streamError(early), "not-authorized", "a stanza before <open/>");

    await assert.rejects(WsClient.open({ protocol: "chat" }), /HTTP 400/, "no xmpp subprotocol");
    await assert.rejects(WsClient.open({ origin: "https://evil.example" }), /HTTP 403/, "an origin not allowed");
    await assert.rejects(WsClient.open({ path: "/other" }), /HTTP 404/);

    good.send(`<message xmlns='jabber:client' to='${jid}' id='still'><body>still here</body></message>`);
    assert.equal((await good.next((el) => el.attrs.id === "still")).getChildText("body"), "still here");
    for (const c of [good, binary, huge, large, text, two, half, bare, early]) c.close();
  });

  it("pings, and ends a connection whose pong never comes", async () => {
    const c = await WsClient.open();
    c.openStream();
    await c.next((el) => el.local === "features");
    let pings = 0;
    c.ws.on("ping", () => pings++);
    await waitFor(() => pings >= 2, "two pings answered");
    // A client that stops answering (ws answers pings by itself unless the socket is paused).
    c.ws.pause();
    const before = c2s.server.connectionCount;
    await waitFor(() => c2s.server.connectionCount < before, "the silent connection ended", 5000);
    c.close();
  });
});

async function waitFor(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await delay(20);
  }
}
