import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { createServer, type AddressInfo, type Server } from "node:net";
import { AcceptedComponent } from "./accept.js";
import { Component, backoffDelay, destinationOf } from "./pool.js";
import { handshakeDigest, verifyHandshake } from "./handshake.js";
import { LEAVING_NOTICE, membersElement } from "./members.js";
import { secretSchema } from "./secret.js";

describe("handshake", () => {
  test("is the lower-case hex SHA-1 of stream id + secret (XEP-0114 §3)", () => {
    const expected = createHash("sha1").update("3BF96D32" + "s3cr3t").digest("hex");
    assert.equal(handshakeDigest("3BF96D32", "s3cr3t"), expected);
    assert.match(handshakeDigest("id", "secret"), /^[0-9a-f]{40}$/);
  });

  test("verification accepts the right digest, in either case, and nothing else", () => {
    const d = handshakeDigest("abc", "secret");
    assert.equal(verifyHandshake("abc", "secret", d), true);
    assert.equal(verifyHandshake("abc", "secret", d.toUpperCase()), true);
    assert.equal(verifyHandshake("abc", "secret", ` ${d}\n`), true);
    assert.equal(verifyHandshake("abc", "other", d), false);
    assert.equal(verifyHandshake("abd", "secret", d), false);
    assert.equal(verifyHandshake("abc", "secret", d.slice(0, 39)), false);
    assert.equal(verifyHandshake("abc", "secret", ""), false);
  });

  test("non-ASCII secrets are hashed as UTF-8", () => {
    const expected = createHash("sha1").update(Buffer.from("idgeheimnis-\u00e4\u00f6", "utf8")).digest("hex");
    assert.equal(handshakeDigest("id", "geheimnis-\u00e4\u00f6"), expected);
  });
});

describe("backoff", () => {
  const o = { initialMs: 100, maxMs: 5000 };
  test("grows exponentially up to the ceiling", () => {
    assert.equal(backoffDelay(0, o, () => 0.999), 99);
    assert.equal(backoffDelay(3, o, () => 0.999), 799);
    assert.equal(backoffDelay(20, o, () => 0.999), 4995);
    assert.equal(backoffDelay(1000, o, () => 0.999), 4995, "no overflow for huge attempt counts");
  });
  test("is jittered over the whole range but never below half the initial delay", () => {
    assert.equal(backoffDelay(5, o, () => 0), 50);
    const seen = new Set<number>();
    for (let i = 0; i < 50; i++) seen.add(backoffDelay(6, o));
    assert.ok(seen.size > 10, "delays are spread out");
    for (const d of seen) assert.ok(d >= 50 && d <= 5000);
  });
});

/**
 * A stand-in for a router, over real loopback sockets: it accepts components
 * with the same accepting code as the real one and records what they send,
 * but routes nothing. The real router (packages/router) depends on this
 * package, so its tests cannot live here; they cover the router's side.
 */
class StandInRouter {
  readonly received: string[] = [];
  private readonly conns = new Set<AcceptedComponent>();
  private server: Server | undefined;
  private accepting = true;

  private constructor(readonly port: number) {}

  /** Starts listening on `port` (0: a free one). */
  static async start(port = 0): Promise<StandInRouter> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen({ host: "127.0.0.1", port }, resolve));
    const r = new StandInRouter((server.address() as AddressInfo).port);
    r.server = server;
    server.on("connection", (socket) => {
      if (!r.accepting) {
        socket.destroy();
        return;
      }
      const c: AcceptedComponent = new AcceptedComponent(socket, { secretFor: () => SECRET }, {
        onAuthenticated: () => r.conns.add(c),
        onStanza: (_c, el) => r.received.push(el.attrs.id ?? ""),
        onClose: () => r.conns.delete(c),
      });
    });
    return r;
  }

  /**
   * A router that is not up yet, at an address known beforehand: it listens
   * (on a port of its own, so nobody else can take it meanwhile) but drops
   * every connection until `open()`.
   */
  static async notYet(): Promise<StandInRouter> {
    const r = await StandInRouter.start();
    r.accepting = false;
    return r;
  }

  open(): void {
    this.accepting = true;
  }

  /** Writes `text` to every authenticated component. */
  broadcast(text: string): void {
    for (const c of this.conns) c.send(text);
  }

  async stop(): Promise<void> {
    for (const c of this.conns) c.close();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
  }
}

const SECRET = "stand-in-secret";

function linkedTo(ports: number[], settleMs: number): Component {
  return new Component({
    name: "a.test", secret: SECRET, instance: "a-1", settleMs,
    routers: ports.map((port) => ({ host: "127.0.0.1", port })),
    backoff: { initialMs: 20, maxMs: 50 },
  });
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function eventually(pred: () => boolean, what: string, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await delay(10);
  }
}

describe("component: choosing the link to send through", () => {
  test("a router that is leaving is passed over while another is live, and still used when it is the last", async () => {
    const r1 = await StandInRouter.start();
    const r2 = await StandInRouter.start();
    const c = linkedTo([r1.port, r2.port], 0);
    const heard: string[] = [];
    c.on("stanza", (el) => heard.push(el.attrs.id ?? ""));
    const leaving: number[] = [];
    c.on("leaving", (l) => leaving.push(l.router.port));
    try {
      await c.start();
      await eventually(() => c.liveLinks.length === 2, "linked to both");
      assert.equal(c.linkInUse?.router.port, r1.port, "the first in the list, both being settled");
      r1.broadcast(LEAVING_NOTICE);
      await eventually(() => leaving.length === 1, "the component heard r1 is leaving");
      assert.deepEqual(leaving, [r1.port]);
      assert.equal(c.linkInUse?.router.port, r2.port);
      c.send("<message from='a.test' to='b.test' id='m1'/>");
      await eventually(() => r2.received.includes("m1"), "m1 went through r2");
      // A leaving router still delivers what others routed through it.
      r1.broadcast("<message from='b.test' to='a.test' id='in1'/>");
      await eventually(() => heard.includes("in1"), "read from the leaving link");
      // Both leaving: stay on the one in use rather than fail.
      r2.broadcast(LEAVING_NOTICE);
      await eventually(() => leaving.length === 2, "the component heard r2 is leaving");
      assert.equal(c.linkInUse?.router.port, r2.port);
      assert.ok(c.send("<message from='a.test' to='b.test' id='m2'/>"));
      await eventually(() => r2.received.includes("m2"), "m2 went through r2");
      await r2.stop();
      await eventually(() => c.liveLinks.length === 1, "r2's link is down");
      assert.ok(c.send("<message from='a.test' to='b.test' id='m3'/>"), "the last live link, leaving or not, is used");
      await eventually(() => r1.received.includes("m3"), "m3 went through r1");
      assert.deepEqual(r1.received, ["m3"]);
    } finally {
      await c.stop();
      await r1.stop();
      await r2.stop();
    }
  });

  test("a link up for less than settleMs is passed over for an older one; alone, it is used at once", async () => {
    const settleMs = 300;
    const x = await StandInRouter.start();
    const fresh = await StandInRouter.notYet();
    const older = await StandInRouter.notYet();
    const olderPort = older.port;
    // List order alone would pick `fresh` over `older` once `x` is gone.
    const c = linkedTo([x.port, fresh.port, olderPort], settleMs);
    try {
      await c.start();
      // The only link, up a moment ago: used rather than nothing.
      assert.equal(c.linkInUse?.router.port, x.port);
      older.open();
      await eventually(() => c.liveLinks.length === 2, "linked to older");
      await delay(settleMs + 50);
      fresh.open();
      await eventually(() => c.liveLinks.length === 3, "linked to fresh");
      // Sticky: the link in use stays while it lives.
      assert.equal(c.linkInUse?.router.port, x.port);
      await x.stop();
      await eventually(() => c.liveLinks.length === 2, "x's link is down");
      assert.equal(c.linkInUse?.router.port, olderPort, "the settled link, not the fresh one earlier in the list");
      c.send("<message from='a.test' to='b.test' id='s1'/>");
      await eventually(() => older.received.includes("s1"), "s1 went through older");
      assert.deepEqual(fresh.received, []);
      // Once settled, fresh is a candidate like any other, but the link in use stays.
      await delay(settleMs + 50);
      assert.equal(c.linkInUse?.router.port, olderPort);
    } finally {
      await c.stop();
      await x.stop();
      await older.stop();
      await fresh.stop();
    }
  });
});

describe("component: routers that share the load", () => {
  test("the destination is read from the first start tag's to", () => {
    assert.deepEqual(destinationOf("<route xmlns='e' from='c2s/c2s-1' to='alice@localhost' sid='s'><message to='bob@localhost/x'/></route>"),
      { name: "localhost", instance: undefined, key: "alice@localhost" });
    assert.deepEqual(destinationOf("<message from='a@b/c' to='bob@localhost/phone' id='1'/>"), { name: "localhost", instance: undefined, key: "bob@localhost" });
    assert.deepEqual(destinationOf(Buffer.from("<route xmlns='e' to='c2s/c2s-2' from='localhost/sm-1'/>")), { name: "c2s", instance: "c2s-2", key: "c2s/c2s-2" });
    assert.deepEqual(destinationOf("<xdb xmlns='e' to='xdb' id='7'>{}</xdb>"), { name: "xdb", instance: undefined, key: "xdb" });
    assert.deepEqual(destinationOf("<room@muc.localhost/nick"), undefined, "no to");
    assert.equal(destinationOf("<message id='1'><body to='x@y'/></message>"), undefined, "a child's to is not the element's");
    assert.equal(destinationOf("<iq xto='a@b'/>"), undefined, "an attribute that only ends in to");
  });

  test("each destination takes one router, the destinations spread over all, and a router that cannot reach one is passed over", async () => {
    const r1 = await StandInRouter.start();
    const r2 = await StandInRouter.start();
    const c = linkedTo([r1.port, r2.port], 0);
    try {
      await c.start();
      await eventually(() => c.liveLinks.length === 2, "linked to both");
      // Both routers serve the users' domain; only r2 has a link to c2s-2.
      for (const r of [r1, r2]) r.broadcast(membersElement("localhost", ["sm-1", "sm-2"]));
      r1.broadcast(membersElement("c2s", ["c2s-1"]));
      r2.broadcast(membersElement("c2s", ["c2s-1", "c2s-2"]));
      await eventually(() => c.instancesOf("c2s").size === 2 && c.instancesOf("localhost").size === 2, "the lists arrived");

      const users = Array.from({ length: 40 }, (_, i) => `user${i}@localhost`);
      let n = 0;
      const sent = new Map<string, string[]>();
      for (let round = 0; round < 3; round++) {
        for (const u of users) {
          const id = `u${++n}`;
          sent.set(u, [...(sent.get(u) ?? []), id]);
          assert.ok(c.send(`<message from='a.test' to='${u}/r${round}' id='${id}'/>`));
        }
      }
      for (let i = 0; i < 10; i++) c.send(`<route xmlns='e' from='a.test/a-1' to='c2s/c2s-2' id='p${i}'/>`);
      c.send("<message from='a.test' to='elsewhere.example' id='x1'/>");
      await eventually(() => r1.received.length + r2.received.length === 3 * users.length + 11, "everything arrived");

      let onR1 = 0;
      for (const [u, ids] of sent) {
        const where = ids.map((id) => (r1.received.includes(id) ? 1 : 2));
        assert.equal(new Set(where).size, 1, `every stanza to ${u}, whatever its resource, took one router`);
        if (where[0] === 1) onR1++;
        // In order on that router.
        const seen = (where[0] === 1 ? r1 : r2).received.filter((id) => ids.includes(id));
        assert.deepEqual(seen, ids);
      }
      assert.ok(onR1 >= 8 && onR1 <= 32, `both routers carry a share of the 40 users (${onR1} on r1)`);
      assert.deepEqual(r2.received.filter((id) => id.startsWith("p")), Array.from({ length: 10 }, (_, i) => `p${i}`),
        "a process only r2 is linked to is reached through r2, in order");
      assert.ok(r1.received.includes("x1"), "what no router's list names leaves through the sticky link");

      // r1 leaves: everything goes through r2 now.
      r1.broadcast(LEAVING_NOTICE);
      await eventually(() => c.linkInUse?.router.port === r2.port, "r1 is leaving");
      const before = r1.received.length;
      for (const u of users) c.send(`<message from='a.test' to='${u}' id='after-${u}'/>`);
      await eventually(() => users.every((u) => r2.received.includes(`after-${u}`)), "all through r2");
      assert.equal(r1.received.length, before);
    } finally {
      await c.stop();
      await r1.stop();
      await r2.stop();
    }
  });

  test("a router that is not settled yet gets no share while a settled one serves the destination", async () => {
    const settleMs = 400;
    const old = await StandInRouter.start();
    const fresh = await StandInRouter.notYet();
    const c = linkedTo([old.port, fresh.port], settleMs);
    try {
      await c.start();
      await delay(settleMs + 50);
      fresh.open();
      await eventually(() => c.liveLinks.length === 2, "linked to fresh");
      for (const r of [old, fresh]) r.broadcast(membersElement("localhost", ["sm-1"]));
      await eventually(() => c.instancesOf("localhost").size === 1, "lists arrived");
      for (let i = 0; i < 30; i++) c.send(`<message from='a.test' to='u${i}@localhost' id='f${i}'/>`);
      await eventually(() => old.received.length === 30, "all through the settled router");
      assert.deepEqual(fresh.received, []);
      await delay(settleMs);
      for (let i = 0; i < 30; i++) c.send(`<message from='a.test' to='u${i}@localhost' id='g${i}'/>`);
      await eventually(() => old.received.length + fresh.received.length === 60, "all arrived");
      assert.ok(fresh.received.length > 0, "settled, it carries its share");
    } finally {
      await c.stop();
      await old.stop();
      await fresh.stop();
    }
  });
});

test("component secrets: placeholders and short ones are refused, saying how to make one", () => {
  for (const bad of ["change-me-c2s-secret", "CHANGE-ME", "changeme-please-really", "set-by-environment", "", "short-one"]) {
    const r = secretSchema.safeParse(bad);
    assert.equal(r.success, false, bad);
    assert.match(r.error!.issues[0]!.message, /openssl rand -hex 32/, bad);
  }
  assert.equal(secretSchema.safeParse("3f1c0e9a7b2d4c68a1e5").success, true);
});
