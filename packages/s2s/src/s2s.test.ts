/**
 * Two small farms in one process, each a real router, a real s2s and a
 * stand-in for its SM (a trusted component under the domain's name that
 * sends and acknowledges confirmed relay routes as the SM does), finding
 * each other through a DNS zone on loopback: dialback with self-signed
 * certificates, SASL EXTERNAL with certificates from a test CA, bounces,
 * and hostile input from a raw socket that must end only its own stream.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { connect, createServer, type AddressInfo, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { Component } from "@jabberfarm/component";
import { ConfirmedReceiver, ConfirmedSender, ENVELOPE_NS, readAck, readRelay, relayEnvelope } from "@jabberfarm/envelope";
import { Router } from "@jabberfarm/router";
import { NS, parseTrusted, type Element } from "@jabberfarm/xml";
import { dialbackKey } from "./dialback.js";
import { startS2s, type S2sProcess } from "./process.js";
import { TestCa, TestZone } from "./testing.js";

const silent = pino({ level: process.env.S2S_TEST_LOG ?? "silent" });
const SM_SECRET = "sm-secret-123456";
const S2S_SECRET = "s2s-secret-123456";

async function eventually<T>(what: string, ms: number, check: () => T | undefined | false): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The SM's part, as far as federation sees it: confirmed relays out, acknowledged relays in. */
class StandInSm {
  readonly received: Element[] = [];
  readonly component: Component;
  readonly confirmed: ConfirmedSender;
  private readonly receiver: ConfirmedReceiver;

  constructor(readonly domain: string, routerPort: number) {
    this.component = new Component({ name: domain, secret: SM_SECRET, instance: "sm-1", routers: [{ host: "127.0.0.1", port: routerPort }], settleMs: 0 });
    const out = (t: string): boolean => this.component.send(t);
    this.confirmed = new ConfirmedSender(out, { resendAfterMs: 60_000 });
    this.receiver = new ConfirmedReceiver(`${domain}/sm-1`, out, { flushMs: 1 });
    this.component.on("stanza", (el, raw) => {
      const text = typeof raw === "string" ? raw : raw.toString("utf8");
      if (el.ns === ENVELOPE_NS && el.local === "ack") {
        this.confirmed.acknowledge(readAck(el, this.confirmed.epoch));
      } else if (el.ns === ENVELOPE_NS && el.local === "route") {
        const c = this.receiver.receive(el.attrs.from!, el.attrs.seq, el.attrs.low);
        if (c?.receipt !== "duplicate") this.received.push(parseTrusted(readRelay(el, text).stanzaRaw, NS.CLIENT));
        if (c) this.receiver.handled(c.ticket);
      } else if (el.local === "message" || el.local === "iq" || el.local === "presence") {
        this.received.push(parseTrusted(text, NS.COMPONENT));
      }
    });
  }

  /** A stanza from one of our users to `to`, confirmed like an SM's. */
  send(to: string, body: string, from = `alice@${this.domain}/pc`): void {
    const inner = `<message xmlns='jabber:client' from='${from}' to='${to}' id='${body}'><body>${body}</body></message>`;
    this.confirmed.send((c) => relayEnvelope(`${this.domain}/sm-1`, to, inner, c));
  }

  async stop(): Promise<void> {
    this.confirmed.stop();
    this.receiver.stop();
    await this.component.stop();
  }
}

interface MiniFarm {
  domain: string;
  router: Router;
  s2s: S2sProcess;
  sm: StandInSm;
}

async function miniFarm(domain: string, zone: TestZone, tls: { cert?: string; key?: string; ca?: string[] }, extra: Record<string, unknown> = {}): Promise<MiniFarm> {
  const router = new Router({
    port: 0, domains: [domain], remoteRoute: "s2s", drainMs: 0,
    components: { [domain]: { secret: SM_SECRET, trusted: true }, s2s: { secret: S2S_SECRET, trusted: true } },
  }, { logger: silent });
  const { port } = await router.start();
  const s2s = await startS2s({
    domains: [domain], routers: [{ host: "127.0.0.1", port }], secret: S2S_SECRET, dialbackSecret: `dialback-${domain}-secret`,
    listen: { host: "127.0.0.1", port: 0 }, dns: { servers: [zone.address] },
    tls: { dataDir: mkdtempSync(join(tmpdir(), "jf-s2s-tls-")), ...tls }, ...extra,
  }, { logger: silent });
  zone.serve(domain, [{ port: s2s.address.port, target: `xmpp.${domain}` }]);
  zone.a.set(`xmpp.${domain}`, ["127.0.0.1"]);
  const sm = new StandInSm(domain, port);
  await sm.component.start();
  await eventually("the s2s and the SM know each other", 5000, () => s2s.component.instancesOf(domain).size > 0 && sm.component.instancesOf("s2s").size > 0);
  return { domain, router, s2s, sm };
}

async function stopFarm(f: MiniFarm): Promise<void> {
  await f.sm.stop();
  await f.s2s.stop();
  await f.router.stop();
}

/** The streams a farm's s2s has, as "direction auth" strings. */
function streams(f: MiniFarm): string[] {
  return f.s2s.service.streamCounts().flatMap((c) => Array.from({ length: c.n }, () => `${c.direction} ${c.auth}`)).sort();
}

/** A raw socket for what no well-behaved server sends. */
class RawServerPeer {
  text = "";
  closed = false;
  constructor(public socket: Socket) {
    this.listen(socket);
  }
  private listen(s: Socket): void {
    s.setEncoding("utf8");
    s.on("data", (d: string) => (this.text += d));
    s.on("close", () => (this.closed = true));
    s.on("error", () => {});
  }
  static connect(port: number): Promise<RawServerPeer> {
    return new Promise((resolve, reject) => {
      const s = connect({ host: "127.0.0.1", port }, () => resolve(new RawServerPeer(s)));
      s.once("error", reject);
    });
  }
  write(s: string): void {
    this.socket.write(s);
  }
  async until(re: RegExp, ms = 5000): Promise<RegExpExecArray> {
    return eventually(`${re} in ${JSON.stringify(this.text.slice(-300))}`, ms, () => re.exec(this.text) ?? undefined);
  }
  header(from: string, to: string): string {
    return `<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' from='${from}' to='${to}' version='1.0'>`;
  }
  /** Header, STARTTLS, header again; resolves with the stream id given over TLS. */
  async secure(from: string, to: string): Promise<string> {
    this.write(this.header(from, to));
    await this.until(/<starttls/);
    this.write("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    await this.until(/<proceed/);
    const tls = tlsConnect({ socket: this.socket, rejectUnauthorized: false });
    await new Promise((r) => tls.once("secureConnect", r));
    this.socket = tls;
    this.text = "";
    this.listen(tls);
    this.write(this.header(from, to));
    const m = await this.until(/<stream:stream [^>]*id='([^']+)'[\s\S]*<\/stream:features>/);
    return m[1]!;
  }
}

describe("s2s between two farms in one process", () => {
  let zone: TestZone;
  let a: MiniFarm;
  let b: MiniFarm;

  before(async () => {
    zone = new TestZone();
    await zone.listen();
    a = await miniFarm("a.example", zone, {});
    b = await miniFarm("b.example", zone, {});
  });

  after(async () => {
    await Promise.all([a && stopFarm(a), b && stopFarm(b)]);
    await zone.close();
  });

  test("dialback both ways with self-signed certificates; routes acknowledged once written", async () => {
    a.sm.send("bob@b.example", "hello-b");
    b.sm.send("alice@a.example/pc", "hello-a", "bob@b.example/phone");
    const atB = await eventually("b got a's message", 10_000, () => b.sm.received.find((e) => e.attrs.id === "hello-b"));
    const atA = await eventually("a got b's message", 10_000, () => a.sm.received.find((e) => e.attrs.id === "hello-a"));
    assert.equal(atB.attrs.from, "alice@a.example/pc");
    assert.equal(atB.ns, NS.CLIENT, "the SM gets the stanza in jabber:client");
    assert.equal(atB.getChildText("body"), "hello-b");
    assert.equal(atA.attrs.to, "alice@a.example/pc");
    await eventually("both SMs' routes acknowledged", 5000, () => a.sm.confirmed.size === 0 && b.sm.confirmed.size === 0);
    assert.deepEqual(streams(a), ["in dialback", "out dialback"]);
    assert.deepEqual(streams(b), ["in dialback", "out dialback"]);
    // Between two s2s of ours, XEP-0198 is on: routes were acknowledged only once the other farm's SM had the stanza.
    assert.deepEqual(a.s2s.service.outgoingStreams().map((s) => s.sm), [true]);
  });

  test("with stream management off, routes are acknowledged once written", async () => {
    const c = await miniFarm("c.example", zone, {}, { streamManagement: false });
    try {
      c.sm.send("bob@b.example", "no-sm", "carol@c.example/x");
      await eventually("b got it", 10_000, () => b.sm.received.find((e) => e.attrs.id === "no-sm"));
      await eventually("acknowledged", 5000, () => c.sm.confirmed.size === 0);
      assert.deepEqual(c.s2s.service.outgoingStreams().map((s) => s.sm), [false]);
    } finally {
      await stopFarm(c);
    }
  });

  test("a domain nobody serves bounces remote-server-not-found, and the route is acknowledged", async () => {
    a.sm.send("carol@nowhere.example", "lost-1");
    const bounce = await eventually("the bounce", 10_000, () => a.sm.received.find((e) => e.attrs.id === "lost-1"));
    assert.equal(bounce.attrs.type, "error");
    assert.equal(bounce.attrs.from, "carol@nowhere.example");
    assert.ok(bounce.getChild("error")?.getChild("remote-server-not-found"), bounce.toString());
    await eventually("acknowledged", 5000, () => a.sm.confirmed.size === 0);
  });

  test("a server that never answers: the queue is bounded (resource-constraint), then remote-server-timeout", async () => {
    const silent = createServer(() => {});
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", () => r()));
    zone.serve("silent.example", [{ port: (silent.address() as AddressInfo).port, target: "xmpp.silent.example" }]);
    zone.a.set("xmpp.silent.example", ["127.0.0.1"]);
    const e = await miniFarm("e.example", zone, {}, { timeouts: { setupMs: 1500 }, limits: { maxQueued: 2 } });
    try {
      for (const id of ["q1", "q2", "q3"]) e.sm.send("x@silent.example", id, "eve@e.example/x");
      const over = await eventually("the third bounced at once", 1000, () => e.sm.received.find((el) => el.attrs.id === "q3"));
      assert.ok(over.getChild("error")?.getChild("resource-constraint"), over.toString());
      for (const id of ["q1", "q2"]) {
        const b = await eventually(`${id} bounced`, 5000, () => e.sm.received.find((el) => el.attrs.id === id));
        assert.ok(b.getChild("error")?.getChild("remote-server-timeout"), b.toString());
      }
      await eventually("every route acknowledged", 5000, () => e.sm.confirmed.size === 0);
    } finally {
      await stopFarm(e);
      silent.close();
    }
  });

  test("an idle outgoing stream closes, and the next stanza opens a new one", async () => {
    const d = await miniFarm("d.example", zone, {}, { timeouts: { idleSeconds: 1, keepaliveSeconds: 1 } });
    try {
      d.sm.send("bob@b.example", "idle-1", "dan@d.example/x");
      await eventually("b got it", 10_000, () => b.sm.received.find((e) => e.attrs.id === "idle-1"));
      assert.equal(d.s2s.service.outgoingStreams().length, 1);
      await eventually("the idle stream closed", 5000, () => d.s2s.service.outgoingStreams().length === 0);
      d.sm.send("bob@b.example", "idle-2", "dan@d.example/x");
      await eventually("b got the next one", 10_000, () => b.sm.received.find((e) => e.attrs.id === "idle-2"));
      await eventually("acknowledged", 5000, () => d.sm.confirmed.size === 0);
    } finally {
      await stopFarm(d);
    }
  });

  test("direct TLS (XEP-0368): an _xmpps-server record is preferred, and the stream starts with TLS", async () => {
    const g = await miniFarm("g.example", zone, {}, { directTls: { host: "127.0.0.1", port: 0 } });
    try {
      zone.serve("g.example", [{ port: g.s2s.directTls!.port, target: "xmpp.g.example" }], true);
      a.sm.send("gina@g.example", "direct-1");
      await eventually("g got it", 10_000, () => g.sm.received.find((e) => e.attrs.id === "direct-1"));
      const out = a.s2s.service.outgoingStreams().find((s) => s.remote === "g.example");
      assert.equal(out?.directTls, true, "the stream went to the direct TLS port");
      assert.equal(out?.auth, "dialback");
      g.sm.send("alice@a.example", "direct-back", "gina@g.example/x");
      await eventually("a got g's answer", 10_000, () => a.sm.received.find((e) => e.attrs.id === "direct-back"));
    } finally {
      await stopFarm(g);
    }
  });

  test("a denied domain is refused both ways", async () => {
    const c = await miniFarm("c.example", zone, {}, { deny: ["a.example"] });
    try {
      c.sm.send("alice@a.example", "denied-out", "carol@c.example/x");
      const bounce = await eventually("the bounce", 5000, () => c.sm.received.find((e) => e.attrs.id === "denied-out"));
      assert.equal(bounce.attrs.type, "error");
      a.sm.send("carol@c.example", "denied-in");
      const back = await eventually("a's bounce", 15_000, () => a.sm.received.find((e) => e.attrs.id === "denied-in"));
      assert.equal(back.attrs.type, "error");
      assert.equal(c.sm.received.find((e) => e.attrs.id === "denied-in"), undefined);
    } finally {
      await stopFarm(c);
    }
  });

  test("hostile input ends only its own stream: wrong dialback key, wrong from, oversized stanza, broken XML", async () => {
    const port = b.s2s.address.port;
    // A wrong key: invalid, then not-authorized.
    const wrongKey = await RawServerPeer.connect(port);
    await wrongKey.secure("a.example", "b.example");
    wrongKey.write(`<db:result from='a.example' to='b.example'>${"0".repeat(64)}</db:result>`);
    await wrongKey.until(/type='invalid'/);
    await wrongKey.until(/<not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/);
    await eventually("closed", 5000, () => wrongKey.closed);

    // The right key (made with a.example's secret, which its s2s verifies), then a stanza from another domain.
    const spoof = await RawServerPeer.connect(port);
    const id = await spoof.secure("a.example", "b.example");
    spoof.write(`<db:result from='a.example' to='b.example'>${dialbackKey("dialback-a.example-secret", "b.example", "a.example", id)}</db:result>`);
    await spoof.until(/type='valid'/, 10_000);
    spoof.write("<message from='mallory@evil.example' to='bob@b.example' id='spoof'><body>x</body></message>");
    await spoof.until(/<invalid-from xmlns/);
    await eventually("closed", 5000, () => spoof.closed);

    const big = await RawServerPeer.connect(port);
    const id2 = await big.secure("a.example", "b.example");
    big.write(`<db:result from='a.example' to='b.example'>${dialbackKey("dialback-a.example-secret", "b.example", "a.example", id2)}</db:result>`);
    await big.until(/type='valid'/, 10_000);
    big.write(`<message from='x@a.example' to='bob@b.example' id='big'><body>${"x".repeat(300 * 1024)}</body></message>`);
    await big.until(/<policy-violation xmlns/);

    const broken = await RawServerPeer.connect(port);
    broken.write(broken.header("a.example", "b.example"));
    await broken.until(/<starttls/);
    broken.write("<message><unclosed></message>");
    await broken.until(/<not-well-formed xmlns/);

    const unknownHost = await RawServerPeer.connect(port);
    unknownHost.write(unknownHost.header("a.example", "z.example"));
    await unknownHost.until(/<host-unknown xmlns/);

    assert.equal(b.sm.received.find((e) => e.attrs.id === "spoof" || e.attrs.id === "big"), undefined, "nothing of theirs reached the SM");
    // The real stream from a.example carries on.
    a.sm.send("bob@b.example", "after-hostile");
    await eventually("b still gets a's messages", 10_000, () => b.sm.received.find((e) => e.attrs.id === "after-hostile"));
  });
});

describe("s2s with certificates from a CA both trust: SASL EXTERNAL", () => {
  let zone: TestZone;
  let a: MiniFarm;
  let b: MiniFarm;

  before(async () => {
    zone = new TestZone();
    await zone.listen();
    const ca = new TestCa();
    a = await miniFarm("a.example", zone, { ...ca.issue("a.example"), ca: [ca.certPath] });
    b = await miniFarm("b.example", zone, { ...ca.issue("b.example"), ca: [ca.certPath] });
  });

  after(async () => {
    await Promise.all([a && stopFarm(a), b && stopFarm(b)]);
    await zone.close();
  });

  test("both directions authenticate with EXTERNAL and carry messages", async () => {
    a.sm.send("bob@b.example", "ext-b");
    b.sm.send("alice@a.example", "ext-a", "bob@b.example/phone");
    await eventually("b got it", 10_000, () => b.sm.received.find((e) => e.attrs.id === "ext-b"));
    await eventually("a got it", 10_000, () => a.sm.received.find((e) => e.attrs.id === "ext-a"));
    assert.deepEqual(streams(a), ["in external", "out external"]);
    assert.deepEqual(streams(b), ["in external", "out external"]);
  });
});
