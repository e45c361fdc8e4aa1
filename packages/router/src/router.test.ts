import { after, afterEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Component, rawText } from "@jabberfarm/component";
import { adminRequest, readAdminReply } from "@jabberfarm/envelope";
import { parseElement, stanzaErrorCondition, type Element } from "@jabberfarm/xml";
import { RawPeer, SECRETS, delay, eventually, startRouter } from "./testing.js";
import type { Router } from "./router.js";

function collect(c: Component): { els: Element[]; raws: string[]; next: (ms?: number) => Promise<Element> } {
  const els: Element[] = [];
  const raws: string[] = [];
  let waiting: ((el: Element) => void) | undefined;
  c.on("stanza", (el, raw) => {
    els.push(el);
    raws.push(rawText(raw));
    const w = waiting;
    waiting = undefined;
    w?.(el);
  });
  let read = 0;
  return {
    els,
    raws,
    next: (ms = 3000) => {
      if (read < els.length) return Promise.resolve(els[read++]!);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error("no stanza arrived")), ms);
        waiting = (el) => {
          clearTimeout(t);
          read++;
          resolve(el);
        };
      });
    },
  };
}

function component(name: keyof typeof SECRETS, ports: number[], instance?: string): Component {
  return new Component({
    name, secret: SECRETS[name], instance,
    routers: ports.map((port) => ({ host: "127.0.0.1", port })),
    backoff: { initialMs: 50, maxMs: 200 },
  });
}

describe("router: handshake", () => {
  let router: Router;
  let port: number;
  after(async () => router.stop());

  test("setup", async () => {
    ({ router, port } = await startRouter());
  });

  test("a good handshake is answered with <handshake/> and the component enters the table", async () => {
    const p = await RawPeer.connect(port);
    await p.handshake("a.test", SECRETS["a.test"]);
    await p.until((t) => t.includes("<handshake/>"));
    await delay(20);
    assert.equal(router.table.candidates("a.test").length, 1);
    p.close();
    await delay(50);
    assert.equal(router.table.candidates("a.test").length, 0, "a closed connection leaves the table at once");
  });

  test("the router's header carries a fresh stream id each time", async () => {
    const p1 = await RawPeer.connect(port);
    const p2 = await RawPeer.connect(port);
    const id1 = await p1.handshake("a.test", SECRETS["a.test"]);
    const id2 = await p2.handshake("a.test", SECRETS["a.test"]);
    assert.notEqual(id1, id2);
    assert.match(id1, /^[0-9a-f]{24}$/);
    p1.close();
    p2.close();
  });

  test("a wrong secret gets <not-authorized/> and the stream is closed", async () => {
    const p = await RawPeer.connect(port);
    await p.handshake("a.test", "not-the-secret");
    await p.waitClosed();
    assert.match(p.text, /<stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'\/>/);
    assert.match(p.text, /<\/stream:stream>$/);
    assert.equal(router.table.candidates("a.test").length, 0);
  });

  test("an unknown component name gets <host-unknown/>", async () => {
    const p = await RawPeer.connect(port);
    p.write("<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='nobody.test'>");
    await p.waitClosed();
    assert.match(p.text, /<host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'\/>/);
  });

  test("a stanza before the handshake gets <not-authorized/> and is not routed", async () => {
    const b = await RawPeer.connect(port);
    await b.handshake("b.test", SECRETS["b.test"]);
    await b.until((t) => t.includes("<handshake/>"));
    const p = await RawPeer.connect(port);
    p.write("<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='a.test'>");
    await p.until((t) => t.includes("id="));
    p.write("<message from='x@a.test' to='y@b.test'><body>sneaky</body></message>");
    await p.waitClosed();
    assert.match(p.text, /<not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'\/>/);
    await delay(50);
    assert.doesNotMatch(b.text, /sneaky/);
    b.close();
  });

  test("the wrong stream namespace gets <invalid-namespace/>", async () => {
    const p = await RawPeer.connect(port);
    p.write("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='a.test'>");
    await p.waitClosed();
    assert.match(p.text, /^<\?xml version='1.0'\?><stream:stream /, "the error follows a stream header of ours");
    assert.match(p.text, /<invalid-namespace xmlns='urn:ietf:params:xml:ns:xmpp-streams'\/>/);
  });

  test("no handshake in time gets <connection-timeout/>", async () => {
    const p = await RawPeer.connect(port);
    p.write("<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='a.test'>");
    await p.waitClosed(4000);
    assert.match(p.text, /<connection-timeout xmlns='urn:ietf:params:xml:ns:xmpp-streams'\/>/);
  });

  test("a DTD is refused with <restricted-xml/>", async () => {
    const p = await RawPeer.connect(port);
    p.write("<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol 'lol'>]><stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='a.test'>");
    await p.waitClosed();
    assert.match(p.text, /<restricted-xml xmlns='urn:ietf:params:xml:ns:xmpp-streams'\/>/);
  });
});

describe("router: routing", () => {
  let router: Router;
  let port: number;
  // Components live for one test: several with one name would share its users.
  const cleanup: Array<() => unknown> = [];
  afterEach(async () => {
    for (const f of cleanup.splice(0)) await f();
  });
  after(async () => router.stop());

  test("setup", async () => {
    ({ router, port } = await startRouter());
  });

  test("a stanza reaches the component serving its 'to' domain, byte for byte", async () => {
    const a = component("a.test", [port]);
    const b = component("b.test", [port]);
    cleanup.push(() => a.stop(), () => b.stop());
    await Promise.all([a.start(), b.start()]);
    const inbox = collect(b);
    const raw = "<message from='alice@a.test/r' to='bob@b.test' id=\"m1\" xml:lang='en'><body>caf\u00e9 &amp; &#x263A; &lt;3</body><x xmlns='urn:x:y'/></message>";
    a.send(raw);
    await inbox.next();
    assert.equal(inbox.raws[0], raw, "forwarded without re-serialising");
    // and the other way, to a full JID with a resource
    const inboxA = collect(a);
    b.send("<iq type='get' id='q1' from='bob@b.test/x' to='alice@a.test/r'><ping xmlns='urn:xmpp:ping'/></iq>");
    const iq = await inboxA.next();
    assert.equal(iq.attrs.id, "q1");
  });

  test("a stanza to a local name nobody serves is answered service-unavailable with its payload", async () => {
    const a = component("a.test", [port]);
    cleanup.push(() => a.stop());
    await a.start();
    const inbox = collect(a);
    a.send("<message from='alice@a.test' to='carol@local.test' id='m2'><body>hello?</body></message>");
    const err = await inbox.next();
    assert.equal(err.attrs.type, "error");
    assert.equal(err.attrs.id, "m2");
    assert.equal(err.attrs.from, "carol@local.test");
    assert.equal(err.attrs.to, "alice@a.test");
    const full = parseElement(inbox.raws[0]!);
    assert.equal(stanzaErrorCondition(full), "service-unavailable");
    assert.equal(full.getChildText("body"), "hello?");
    // a subdomain of a served domain is local too
    a.send("<iq type='get' from='alice@a.test' to='pubsub.local.test' id='q2'/>");
    await inbox.next();
    assert.equal(stanzaErrorCondition(parseElement(inbox.raws[1]!)), "service-unavailable");
  });

  test("a stanza to a foreign domain is answered remote-server-not-found", async () => {
    const a = component("a.test", [port]);
    cleanup.push(() => a.stop());
    await a.start();
    const inbox = collect(a);
    a.send("<presence from='alice@a.test' to='dave@elsewhere.example'/>");
    await inbox.next();
    assert.equal(stanzaErrorCondition(parseElement(inbox.raws[0]!)), "remote-server-not-found");
  });

  test("an error stanza that cannot be delivered is dropped, never bounced back", async () => {
    const a = component("a.test", [port]);
    cleanup.push(() => a.stop());
    await a.start();
    const inbox = collect(a);
    a.send("<message type='error' from='alice@a.test' to='x@elsewhere.example'/>");
    a.send("<message from='alice@a.test' to='alice@a.test' id='echo'/>");
    const el = await inbox.next();
    assert.equal(el.attrs.id, "echo", "the error stanza produced no reply");
  });

  test("a malformed 'to' is answered jid-malformed", async () => {
    const a = component("a.test", [port]);
    cleanup.push(() => a.stop());
    await a.start();
    const inbox = collect(a);
    a.send("<message from='alice@a.test' to='a@b@@c/'/>");
    await inbox.next();
    assert.equal(stanzaErrorCondition(parseElement(inbox.raws[0]!)), "jid-malformed");
  });

  test("an untrusted component that spoofs 'from' is cut off with <invalid-from/>; others carry on", async () => {
    const b = component("b.test", [port]);
    cleanup.push(() => b.stop());
    await b.start();
    const inbox = collect(b);
    const p = await RawPeer.connect(port);
    await p.handshake("ext.test", SECRETS["ext.test"]);
    await p.until((t) => t.includes("<handshake/>"));
    p.write("<message from='svc.ext.test' to='bob@b.test' id='ok'/>");
    assert.equal((await inbox.next()).attrs.id, "ok", "a subdomain of its own name is allowed");
    p.write("<message from='admin@b.test' to='bob@b.test' id='spoof'/>");
    await p.waitClosed();
    assert.match(p.text, /<invalid-from xmlns='urn:ietf:params:xml:ns:xmpp-streams'\/>/);
    const a = component("a.test", [port]);
    cleanup.push(() => a.stop());
    await a.start();
    a.send("<message from='alice@a.test' to='bob@b.test' id='after'/>");
    assert.equal((await inbox.next()).attrs.id, "after");
    assert.ok(!inbox.els.some((e) => e.attrs.id === "spoof"));
  });

  test("malformed XML from an untrusted component ends its stream (full parse)", async () => {
    const b = component("b.test", [port]);
    cleanup.push(() => b.stop());
    await b.start();
    const p = await RawPeer.connect(port);
    await p.handshake("ext.test", SECRETS["ext.test"]);
    await p.until((t) => t.includes("<handshake/>"));
    p.write("<message from='bot@ext.test' to='bob@b.test'><body a='1' a='2'>x</body></message>");
    await p.waitClosed();
    assert.match(p.text, /<not-well-formed xmlns='urn:ietf:params:xml:ns:xmpp-streams'\/>/);
  });

  test("a mismatched end tag from a trusted component (read by the splitter) ends only its stream", async () => {
    const b = component("b.test", [port]);
    cleanup.push(() => b.stop());
    await b.start();
    const inbox = collect(b);
    const p = await RawPeer.connect(port);
    await p.handshake("a.test", SECRETS["a.test"]);
    await p.until((t) => t.includes("<handshake/>"));
    p.write("<message from='a@a.test' to='bob@b.test'><body>x</bod></message>");
    await p.waitClosed();
    assert.match(p.text, /<not-well-formed xmlns='urn:ietf:params:xml:ns:xmpp-streams'\/>/);
    const a = component("a.test", [port]);
    cleanup.push(() => a.stop());
    await a.start();
    a.send("<message from='alice@a.test' to='bob@b.test' id='still'/>");
    assert.equal((await inbox.next()).attrs.id, "still");
  });

  test("an oversized stanza gets <policy-violation/>: maxStanzaBytes from an external component, maxInternalBytes from a farm process", async () => {
    const { router: small, port: smallPort } = await startRouter({ limits: { maxStanzaBytes: 10_000, maxInternalBytes: 65_536 } });
    cleanup.push(() => small.stop());
    const ext = await RawPeer.connect(smallPort);
    await ext.handshake("ext.test", SECRETS["ext.test"]);
    await ext.until((t) => t.includes("<handshake/>"));
    ext.write(`<message from='a@ext.test' to='b@b.test'><body>${"x".repeat(20_000)}</body></message>`);
    await ext.waitClosed();
    assert.match(ext.text, /<policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'\/>/);
    const farm = await RawPeer.connect(smallPort);
    await farm.handshake("a.test", SECRETS["a.test"]);
    await farm.until((t) => t.includes("<handshake/>"));
    assert.match(farm.text, /farm:max-element='65536'/, "the router announced its limit to the farm process");
    farm.write(`<message from='a@a.test' to='b@b.test'><body>${"x".repeat(20_000)}</body></message>`);
    await delay(50);
    assert.ok(!farm.closed, "20 KB is within what a farm process may send");
    farm.write(`<message from='a@a.test' to='b@b.test'><body>${"x".repeat(70_000)}</body></message>`);
    await farm.waitClosed();
    assert.match(farm.text, /<policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'\/>/);
  });

  test("a component dying mid-stanza leaves the table at once; the router keeps serving", async () => {
    const a = component("a.test", [port]);
    cleanup.push(() => a.stop());
    await a.start();
    const inbox = collect(a);
    const p = await RawPeer.connect(port);
    await p.handshake("b.test", SECRETS["b.test"]);
    await p.until((t) => t.includes("<handshake/>"));
    await delay(20);
    assert.ok(router.table.candidates("b.test").length >= 1);
    p.write("<message from='bob@b.test' to='alice@a.test'><body>half a st");
    await delay(20);
    const before = router.table.candidates("b.test").length;
    p.socket.destroy();
    await delay(50);
    assert.equal(router.table.candidates("b.test").length, before - 1);
    assert.equal(inbox.els.length, 0, "the truncated stanza was not forwarded");
    a.send("<message from='alice@a.test' to='alice@a.test' id='alive'/>");
    assert.equal((await inbox.next()).attrs.id, "alive");
  });

  test("a stream-level element from a component is refused with <unsupported-stanza-type/>", async () => {
    const p = await RawPeer.connect(port);
    await p.handshake("a.test", SECRETS["a.test"]);
    await p.until((t) => t.includes("<handshake/>"));
    p.write("<stream:features/>");
    await p.waitClosed();
    assert.match(p.text, /<unsupported-stanza-type xmlns='urn:ietf:params:xml:ns:xmpp-streams'\/>/);
  });
});

describe("router: several connections for one name", () => {
  test("stanzas are spread by rendezvous hash of the bare 'to', stably, and the same on every router", async () => {
    const r1 = await startRouter();
    const r2 = await startRouter();
    const ports = [r1.port, r2.port];
    const sms = ["sm-1", "sm-2", "sm-3"].map((id) => component("sm", ports, id));
    const a = component("a.test", [r1.port]);
    const a2 = component("a.test", [r2.port]);
    try {
      await Promise.all([...sms.map((s) => s.start()), a.start(), a2.start()]);
      // wait until every SM is linked to both routers
      for (let i = 0; i < 50 && sms.some((s) => s.liveLinks.length < 2); i++) await delay(20);
      const got = sms.map((s) => collect(s));
      const users = Array.from({ length: 60 }, (_, i) => `user${i}@sm`);
      for (const u of users) {
        a.send(`<message from='x@a.test' to='${u}/phone' id='r1-${u}'/>`);
        a2.send(`<message from='x@a.test' to='${u}' id='r2-${u}'/>`);
      }
      for (let i = 0; i < 100 && got.reduce((n, g) => n + g.els.length, 0) < 120; i++) await delay(20);
      const owner = new Map<string, number>();
      got.forEach((g, idx) => {
        for (const el of g.els) {
          const bare = el.attrs.to!.split("/")[0]!;
          const prev = owner.get(bare);
          assert.ok(prev === undefined || prev === idx, `${bare} reached two SMs`);
          owner.set(bare, idx);
        }
      });
      assert.equal(owner.size, 60, "every user was delivered");
      const counts = got.map((g) => g.els.length);
      assert.ok(counts.every((n) => n >= 10), `each SM owns a share: ${counts.join(",")}`);

      // one SM leaves: only its users move
      const gone = 2;
      await sms[gone]!.stop();
      await delay(50);
      const after = sms.slice(0, 2).map((s) => collect(s));
      for (const u of users) a.send(`<message from='x@a.test' to='${u}' id='again'/>`);
      for (let i = 0; i < 100 && after.reduce((n, g) => n + g.els.length, 0) < 60; i++) await delay(20);
      after.forEach((g, idx) => {
        for (const el of g.els) {
          const prev = owner.get(el.attrs.to!)!;
          if (prev !== gone) assert.equal(prev, idx, `${el.attrs.to} moved although its SM is alive`);
        }
      });
    } finally {
      await Promise.all([...sms.map((s) => s.stop()), a.stop(), a2.stop()]);
      await r1.router.stop();
      await r2.router.stop();
    }
  });
});

describe("router: addressing one instance", () => {
  test("'name/instance' reaches that process; an unknown instance falls back to the name's rule", async () => {
    const r = await startRouter();
    const sms = ["sm-1", "sm-2"].map((id) => component("sm", [r.port], id));
    const a = component("a.test", [r.port]);
    try {
      await Promise.all([...sms.map((s) => s.start()), a.start()]);
      const got = sms.map((s) => collect(s));
      for (let i = 0; i < 20; i++) a.send(`<iq type='result' from='x@a.test' to='sm/sm-2' id='i${i}'/>`);
      for (let i = 0; i < 50 && got[1]!.els.length < 20; i++) await delay(20);
      assert.equal(got[1]!.els.length, 20);
      assert.equal(got[0]!.els.length, 0);
      a.send("<iq type='result' from='x@a.test' to='sm/sm-9' id='lost'/>");
      for (let i = 0; i < 50 && got[0]!.els.length + got[1]!.els.length < 21; i++) await delay(20);
      assert.equal(got[0]!.els.length + got[1]!.els.length, 21, "delivered to some instance, not dropped");
    } finally {
      await Promise.all([...sms.map((s) => s.stop()), a.stop()]);
      await r.router.stop();
    }
  });
});

describe("router: operator queries", () => {
  test("a trusted component's <admin op='status' to='router'/> is answered by the router itself with its connections", async () => {
    const r = await startRouter({ instance: "router-7" });
    const sm = component("sm", [r.port], "sm-1");
    const a = component("a.test", [r.port], "cli-1");
    try {
      await Promise.all([sm.start(), a.start()]);
      const inbox = collect(a);
      a.send(adminRequest("st1", "status", "x@a.test", "router", {}));
      const reply = readAdminReply("status", await inbox.next());
      assert.equal(reply.type, "result");
      assert.equal(reply.id, "st1");
      if (reply.type !== "result" || reply.result.process !== "router") throw new Error("a router status was expected");
      const s = reply.result;
      assert.equal(s.instance, "router-7");
      assert.equal(s.pid, process.pid);
      assert.deepEqual(s.listen, { host: "127.0.0.1", port: r.port });
      assert.deepEqual(s.domains, ["local.test"]);
      assert.deepEqual(s.connections.map((c) => [c.name, c.instance, c.trusted]).sort(), [["a.test", "cli-1", true], ["sm", "sm-1", true]]);
      for (const c of s.connections) {
        assert.match(c.remote, /^127\.0\.0\.1:\d+$/);
        assert.ok(Date.now() - Date.parse(c.since) < 60_000);
      }
      // A request for an op the router does not serve is an error, not silence.
      a.send(adminRequest("st2", "sessions", "x@a.test", "router", { user: "u@local.test" }));
      const no = readAdminReply("sessions", await inbox.next());
      assert.equal(no.type === "error" && no.condition, "feature-not-implemented");
    } finally {
      await Promise.all([sm.stop(), a.stop()]);
      await r.router.stop();
    }
  });

  test("an untrusted component may not send envelopes: <admin/> and <session/> are answered forbidden, not delivered", async () => {
    const r = await startRouter();
    const sm = component("sm", [r.port], "sm-1");
    try {
      await sm.start();
      const got = collect(sm);
      const p = await RawPeer.connect(r.port);
      await p.handshake("ext.test", SECRETS["ext.test"]);
      await p.until((t) => t.includes("<handshake/>"));
      p.write(adminRequest("k1", "kick", "ext.test", "alice@sm", { jid: "alice@sm/phone" }));
      p.write("<session xmlns='urn:jabberfarm:envelope:1' type='kick' id='k2' from='ext.test' to='sm/sm-1' sid='s1'/>");
      p.write(adminRequest("k3", "status", "ext.test", "router", {}));
      const text = await p.until((t) => (t.match(/<forbidden /g) ?? []).length === 3);
      assert.match(text, /<admin [^>]*id='k1'[^>]*type='error'|<admin [^>]*type='error'[^>]*id='k1'/);
      p.write("<message from='ext.test' to='bob@sm' id='plain'/>");
      assert.equal((await got.next()).attrs.id, "plain", "only the plain stanza got through");
      assert.equal(got.els.length, 1);
      p.close();
    } finally {
      await sm.stop();
      await r.router.stop();
    }
  });
});

describe("router: membership notices", () => {
  test("the trusted connections of a name hear which instances serve it, on every change", async () => {
    const r = await startRouter();
    const seen: string[][] = [];
    const sm1 = component("sm", [r.port], "sm-1");
    sm1.on("members", (name, ids) => {
      if (name === "sm") seen.push(ids);
    });
    const sm2 = component("sm", [r.port], "sm-2");
    try {
      await sm1.start();
      for (let i = 0; i < 50 && seen.length < 1; i++) await delay(20);
      assert.deepEqual(seen.at(-1), ["sm-1"]);
      await sm2.start();
      for (let i = 0; i < 50 && seen.length < 2; i++) await delay(20);
      assert.deepEqual(seen.at(-1), ["sm-1", "sm-2"]);
      await sm2.stop();
      for (let i = 0; i < 50 && seen.length < 3; i++) await delay(20);
      assert.deepEqual(seen.at(-1), ["sm-1"]);
    } finally {
      await sm1.stop();
      await sm2.stop();
      await r.router.stop();
    }
  });
});

describe("router: membership of every name", () => {
  /** The lists of `name` a component heard, in order. */
  function heard(c: Component, name: string): string[][] {
    const lists: string[][] = [];
    c.on("members", (n, ids) => {
      if (n === name) lists.push(ids);
    });
    return lists;
  }

  test("every trusted connection hears the instances of every name on each change, down to an empty list; untrusted ones hear nothing", async () => {
    const r = await startRouter();
    const sm = component("sm", [r.port], "sm-1");
    const c2sSeen = heard(sm, "c2s");
    const c2s1 = component("c2s", [r.port], "c2s-1");
    const c2s2 = component("c2s", [r.port], "c2s-2");
    const ext = await RawPeer.connect(r.port);
    try {
      await ext.handshake("ext.test", SECRETS["ext.test"]);
      await ext.until((t) => t.includes("<handshake/>"));
      await sm.start();
      await c2s1.start();
      await eventually(() => c2sSeen.length === 1, "the sm hears of c2s-1");
      assert.deepEqual(c2sSeen[0], ["c2s-1"]);
      await c2s2.start();
      await eventually(() => c2sSeen.length === 2, "the sm hears of c2s-2");
      assert.deepEqual(c2sSeen[1], ["c2s-1", "c2s-2"]);
      // A crash, not a goodbye: the router notices the socket close.
      c2s2.crash();
      await eventually(() => c2sSeen.length === 3, "the sm hears c2s-2 went");
      assert.deepEqual(c2sSeen[2], ["c2s-1"]);
      assert.deepEqual([...sm.instancesOf("c2s")], ["c2s-1"]);
      await c2s1.stop();
      await eventually(() => c2sSeen.length === 4, "the sm hears the last c2s went");
      assert.deepEqual(c2sSeen[3], [], "the last instance leaving is announced as an empty list");
      assert.equal(sm.instancesOf("c2s").size, 0);
      await delay(50);
      assert.doesNotMatch(ext.text, /members/, "an external component never sees a notice");
    } finally {
      ext.close();
      await Promise.all([sm.stop(), c2s1.stop(), c2s2.stop()]);
      await r.router.stop();
    }
  });

  test("a trusted connection that authenticates is told the current list of every name served", async () => {
    const r = await startRouter();
    const sms = ["sm-1", "sm-2"].map((id) => component("sm", [r.port], id));
    const b = component("b.test", [r.port]);
    const late = component("c2s", [r.port], "c2s-1");
    const smSeen = heard(late, "sm");
    const bSeen = heard(late, "b.test");
    const ownSeen = heard(late, "c2s");
    try {
      await Promise.all([...sms.map((s) => s.start()), b.start()]);
      await eventually(() => r.router.table.size === 3, "everyone is connected");
      await late.start();
      await eventually(() => smSeen.length > 0 && bSeen.length > 0 && ownSeen.length > 0, "the newcomer heard every name");
      assert.deepEqual(smSeen, [["sm-1", "sm-2"]]);
      assert.equal(bSeen.length, 1);
      assert.equal(bSeen[0]!.length, 1, "b.test's one connection (its instance id is the router's connection id)");
      assert.deepEqual(ownSeen, [["c2s-1"]]);
      assert.deepEqual([...late.instancesOf("sm")].sort(), ["sm-1", "sm-2"]);
    } finally {
      await Promise.all([...sms.map((s) => s.stop()), b.stop(), late.stop()]);
      await r.router.stop();
    }
  });

  test("instancesOf is the union over the live links' routers; it shrinks with a link that goes down and grows back when it returns", async () => {
    const r1 = await startRouter();
    const r2 = await startRouter();
    const sm = component("sm", [r1.port, r2.port], "sm-1");
    const changes: string[][] = [];
    sm.on("membership", (name, ids) => {
      if (name === "c2s") changes.push([...ids].sort());
    });
    // Each c2s is linked to one router only, so no single router knows both.
    const c2s1 = component("c2s", [r1.port], "c2s-1");
    const c2s2 = component("c2s", [r2.port], "c2s-2");
    try {
      await Promise.all([sm.start(), c2s1.start(), c2s2.start()]);
      await eventually(() => sm.instancesOf("c2s").size === 2, "the sm knows both c2s");
      assert.deepEqual(changes.at(-1), ["c2s-1", "c2s-2"]);
      const toR2 = sm.liveLinks.find((l) => l.router.port === r2.port)!;
      toR2.destroy();
      await eventually(() => changes.at(-1)?.length === 1, "the union loses what only r2 knew");
      assert.deepEqual(changes.at(-1), ["c2s-1"]);
      // The link comes back (backoff 50 ms) and r2 tells it the current lists again.
      await eventually(() => sm.instancesOf("c2s").size === 2, "the union has c2s-2 again");
      assert.deepEqual(changes.at(-1), ["c2s-1", "c2s-2"]);
      const n = changes.length;
      // r2 announces an empty list; r1 still has c2s-1: one change, announced once.
      await c2s2.stop();
      await eventually(() => sm.instancesOf("c2s").size === 1, "c2s-2 left");
      await delay(50);
      assert.deepEqual(changes.slice(n), [["c2s-1"]]);
    } finally {
      await Promise.all([sm.stop(), c2s1.stop(), c2s2.stop()]);
      await r1.router.stop();
      await r2.router.stop();
    }
  });
});

describe("router: drain on stop", () => {
  async function trustedPeer(port: number, name: "a.test" | "b.test"): Promise<RawPeer> {
    const p = await RawPeer.connect(port);
    await p.handshake(name, SECRETS[name]);
    await p.until((t) => t.includes("<handshake/>"));
    return p;
  }

  test("stop tells trusted connections it is leaving, refuses newcomers, keeps routing for drainMs, then closes with system-shutdown", async () => {
    const r = await startRouter({ drainMs: 400 });
    const a = await trustedPeer(r.port, "a.test");
    const b = await trustedPeer(r.port, "b.test");
    const ext = await RawPeer.connect(r.port);
    try {
      await ext.handshake("ext.test", SECRETS["ext.test"]);
      await ext.until((t) => t.includes("<handshake/>"));
      const started = Date.now();
      const stopped = r.router.stop();
      await a.until((t) => t.includes("<leaving xmlns='urn:jabberfarm:router:0'/>"));
      await b.until((t) => t.includes("<leaving xmlns='urn:jabberfarm:router:0'/>"));
      assert.equal(r.router.listening, false, "no longer ready");
      await assert.rejects(RawPeer.connect(r.port), "new connections are refused while draining");
      a.write("<message from='alice@a.test' to='bob@b.test' id='during-drain'/>");
      await b.until((t) => t.includes("id='during-drain'"));
      assert.equal(b.closed, false);
      await Promise.all([a.waitClosed(), b.waitClosed(), ext.waitClosed()]);
      assert.ok(Date.now() - started >= 350, "the streams stayed open for the drain period");
      for (const p of [a, b, ext]) assert.match(p.text, /<system-shutdown xmlns='urn:ietf:params:xml:ns:xmpp-streams'\/>/);
      assert.doesNotMatch(ext.text, /leaving/, "an external component is not told");
      await stopped;
    } finally {
      for (const p of [a, b, ext]) p.close();
      await r.router.stop();
    }
  });

  test("with drainMs 0 every stream closes at once, without a word of leaving", async () => {
    const r = await startRouter({ drainMs: 0 });
    const a = await trustedPeer(r.port, "a.test");
    try {
      const started = Date.now();
      await r.router.stop();
      await a.waitClosed();
      assert.ok(Date.now() - started < 300, "no drain period");
      assert.doesNotMatch(a.text, /leaving/);
      assert.match(a.text, /<system-shutdown xmlns='urn:ietf:params:xml:ns:xmpp-streams'\/>/);
    } finally {
      a.close();
    }
  });

  test("stopping the router a sender uses mid-stream loses no stanza: the sender moves to the other router", async () => {
    const r1 = await startRouter({ drainMs: 500 });
    const r2 = await startRouter({ drainMs: 500 });
    const ports = [r1.port, r2.port];
    const a = component("a.test", ports);
    const b = component("b.test", ports);
    const received = new Map<number, number>(); // stanza number → the router port it came through
    const leaving: number[] = [];
    a.on("leaving", (l) => leaving.push(l.router.port));
    let duplicates = 0;
    b.on("stanza", (el, _raw, via) => {
      const n = Number(el.attrs.id);
      if (received.has(n)) duplicates++;
      received.set(n, via.router.port);
    });
    try {
      await Promise.all([a.start(), b.start()]);
      await eventually(() => a.liveLinks.length === 2 && b.liveLinks.length === 2, "both linked to both routers");
      // The router these stanzas take: the one their destination hashes to among those serving it (component pool.ts).
      const toBob = (n: number | string): string => `<message from='alice@a.test' to='bob@b.test' id='${n}'/>`;
      const first = a.linkFor(toBob("probe"))!.router.port;
      const [used, other] = first === r1.port ? [r1, r2] : [r2, r1];
      const total = 1500;
      let stopped: Promise<void> | undefined;
      for (let n = 0; n < total; n++) {
        assert.ok(a.send(toBob(n)), `stanza ${n} had a link`);
        if (n === 500) stopped = used.router.stop();
        // A steady stream: 10 stanzas per turn, a turn every millisecond or so.
        if (n % 10 === 9) await delay(1);
      }
      await eventually(() => received.size === total, `all ${total} stanzas arrived (got ${received.size})`, 5000);
      await stopped;
      assert.equal(duplicates, 0);
      assert.deepEqual(leaving, [used.port], "the sender heard that its router was leaving");
      assert.equal(a.linkFor(toBob("probe"))?.router.port, other.port, "the sender carried on through the other router");
      assert.equal(received.get(0), used.port);
      assert.equal(received.get(total - 1), other.port);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
      await r1.router.stop();
      await r2.router.stop();
    }
  });
});

describe("router: failover between routers", () => {
  test("with one of two routers killed, stanzas flow through the other", async () => {
    // No drain: the streams close at once, as when the router dies.
    const r1 = await startRouter({ drainMs: 0 });
    const r2 = await startRouter();
    const a = component("a.test", [r1.port, r2.port]);
    const b = component("b.test", [r1.port, r2.port]);
    try {
      await Promise.all([a.start(), b.start()]);
      for (let i = 0; i < 50 && (a.liveLinks.length < 2 || b.liveLinks.length < 2); i++) await delay(20);
      const inbox = collect(b);
      a.send("<message from='alice@a.test' to='bob@b.test' id='before'/>");
      assert.equal((await inbox.next()).attrs.id, "before");
      await r1.router.stop();
      const killedAt = Date.now();
      // send continuously; everything sent after the switch arrives
      let n = 0;
      while (Date.now() - killedAt < 2000) {
        if (a.send(`<message from='alice@a.test' to='bob@b.test' id='after-${n}'/>`)) n++;
        const last = inbox.els[inbox.els.length - 1];
        if (last?.attrs.id?.startsWith("after-")) break;
        await delay(10);
      }
      const first = inbox.els.find((e) => e.attrs.id?.startsWith("after-"));
      assert.ok(first, "traffic resumed within 2 s of the router's death");
      assert.ok(a.liveLinks.every((l) => l.router.port === r2.port));
    } finally {
      await a.stop();
      await b.stop();
      await r2.router.stop();
    }
  });

  test("a component reconnects with backoff when its router comes back", async () => {
    const r1 = await startRouter();
    const port = r1.port;
    const a = component("a.test", [port]);
    try {
      await a.start();
      await r1.router.stop();
      await delay(100);
      assert.equal(a.isUp, false);
      const again = await startRouter({ port });
      try {
        await a.waitUntilUp(3000);
        assert.equal(a.isUp, true);
      } finally {
        await a.stop();
        await again.router.stop();
      }
    } finally {
      await a.stop();
    }
  });
});

describe("router: what an external component may send (docs/security.md)", () => {
  async function setup(): Promise<{ r: Awaited<ReturnType<typeof startRouter>>; sm: Component; got: ReturnType<typeof collect>; ext: RawPeer }> {
    const r = await startRouter({ limits: { highWaterMark: 16 * 1024 } });
    const sm = component("sm", [r.port], "sm-1");
    await sm.start();
    const got = collect(sm);
    const ext = await RawPeer.connect(r.port);
    await ext.handshake("ext.test", SECRETS["ext.test"]);
    await ext.until((t) => t.includes("<handshake/>"));
    return { r, sm, got, ext };
  }

  test("a prefixed element that a splitter would read as an envelope closes the component's stream and reaches nobody", async () => {
    const { r, sm, got, ext } = await setup();
    try {
      ext.write("<x:xdb xmlns:x='jabber:component:accept' xmlns='urn:jabberfarm:envelope:1' op='credentials.set' type='set' id='q1' from='ext.test' to='sm'>{}</x:xdb>");
      await ext.waitClosed();
      assert.match(ext.text, /<unsupported-stanza-type /);
      await delay(50);
      assert.equal(got.els.length, 0);
      assert.ok(sm.isUp, "the farm process's link is untouched");
    } finally {
      await sm.stop();
      await r.router.stop();
    }
  });

  test("a forged membership notice is dropped by the router, and a farm process ignores one that names a sender", async () => {
    const { r, sm, got, ext } = await setup();
    try {
      let heard = 0;
      sm.on("members", (name) => {
        if (name === "c2s") heard++;
      });
      ext.write("<members xmlns='urn:jabberfarm:router:0' name='c2s' from='ext.test' to='sm'><instance id='evil'/></members>");
      await ext.waitClosed();
      ext.close();
      // A farm process sending one gets it dropped by the router.
      const farm = component("c2s", [r.port], "c2s-9");
      await farm.start();
      farm.send("<members xmlns='urn:jabberfarm:router:0' name='c2s' from='c2s/c2s-9' to='sm/sm-1'/>");
      farm.send("<message from='c2s/c2s-9' to='sm/sm-1' id='after'/>");
      assert.equal((await got.next()).attrs.id, "after");
      assert.deepEqual([...sm.instancesOf("c2s")], ["c2s-9"], "only the router's own notice counted");
      await farm.stop();
      assert.ok(heard >= 1);
    } finally {
      await sm.stop();
      await r.router.stop();
    }
  });

  test("CDATA and stream-header prefixes from an external component are forwarded re-serialised", async () => {
    const r = await startRouter();
    const sm = component("sm", [r.port], "sm-1");
    await sm.start();
    const got = collect(sm);
    const ext = await RawPeer.connect(r.port);
    try {
      ext.write("<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' xmlns:p='urn:example:p' to='ext.test'>");
      const text = await ext.until((t) => /<stream:stream [^>]*id='[^']+'/.test(t));
      const { handshakeDigest } = await import("@jabberfarm/component");
      ext.write(`<handshake>${handshakeDigest(/id='([^']+)'/.exec(text)![1]!, SECRETS["ext.test"])}</handshake>`);
      await ext.until((t) => t.includes("<handshake/>"));
      ext.write("<message from='bot@ext.test' to='alice@sm' id='c1'><body><![CDATA[a < b & c]]></body><p:x/></message>");
      await got.next();
      assert.equal(got.raws[0], "<message from='bot@ext.test' to='alice@sm' id='c1'><body>a &lt; b &amp; c</body><x xmlns='urn:example:p'/></message>");
    } finally {
      ext.close();
      await sm.stop();
      await r.router.stop();
    }
  });

  test("an external component that stops reading is cut off; the farm process sending to it is never paused", async () => {
    const { r, sm, ext } = await setup();
    try {
      ext.socket.pause(); // reads nothing more
      const body = "z".repeat(4000);
      for (let i = 0; i < 400 && !ext.closed; i++) {
        sm.send(`<message from='a@sm' to='bot@ext.test' id='m${i}'><body>${body}</body></message>`);
        if (i % 20 === 0) await delay(5);
      }
      await eventually(() => r.router.table.candidates("ext.test").length === 0, "the slow component was cut off");
      // The sender's stream was never paused: it still routes at once.
      const other = component("b.test", [r.port]);
      await other.start();
      const inbox = collect(other);
      sm.send("<message from='a@sm' to='x@b.test' id='still'/>");
      assert.equal((await inbox.next()).attrs.id, "still");
      await other.stop();
    } finally {
      ext.close();
      await sm.stop();
      await r.router.stop();
    }
  });
});

describe("router: the default route for remote domains (remoteRoute)", () => {
  test("every domain the farm does not serve goes to the remote route, one instance per remote domain; local names are not", async () => {
    const r = await startRouter({ remoteRoute: "sm" });
    const s2s = ["s2s-1", "s2s-2"].map((id) => component("sm", [r.port], id));
    const a = component("a.test", [r.port]);
    try {
      await Promise.all([...s2s.map((s) => s.start()), a.start()]);
      const got = s2s.map((s) => collect(s));
      const fromA = collect(a);
      const domains = Array.from({ length: 12 }, (_, i) => `remote${i}.example`);
      for (const d of domains) for (const u of ["u1", "u2", "u3"]) a.send(`<message from='x@a.test' to='${u}@${d}/r' id='${u}-${d}'/>`);
      await eventually(() => got.reduce((n, g) => n + g.els.length, 0) === 36, "every remote stanza reached an s2s");
      const carrier = new Map<string, number>();
      got.forEach((g, idx) => {
        for (const el of g.els) {
          const domain = el.attrs.to!.split("@")[1]!.split("/")[0]!;
          const prev = carrier.get(domain);
          assert.ok(prev === undefined || prev === idx, `${domain} reached two s2s`);
          carrier.set(domain, idx);
        }
      });
      assert.ok(got.every((g) => g.els.length > 0), `both s2s carry some domains: ${got.map((g) => g.els.length).join(",")}`);
      // A name of the farm nobody serves right now is still local: not sent away.
      a.send("<iq type='get' from='alice@a.test' to='pubsub.local.test' id='local'/>");
      await fromA.next();
      assert.equal(stanzaErrorCondition(parseElement(fromA.raws[0]!)), "service-unavailable");
      // With no s2s, a remote domain bounces as before.
      await Promise.all(s2s.map((s) => s.stop()));
      await eventually(() => r.router.table.candidates("sm").length === 0, "the s2s are gone");
      a.send("<message from='x@a.test' to='u@remote0.example' id='nobody'/>");
      await fromA.next();
      assert.equal(stanzaErrorCondition(parseElement(fromA.raws[1]!)), "remote-server-not-found");
    } finally {
      await Promise.all([...s2s.map((s) => s.stop()), a.stop()]);
      await r.router.stop();
    }
  });
});
