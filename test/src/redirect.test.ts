/**
 * Connection redirection between c2s processes: with loads shared through
 * Redis, a c2s above its fair share answers a new stream with
 * `<see-other-host/>` naming the less loaded c2s, before TLS and auth; the
 * other c2s takes the client normally; a c2s told to stop sends its
 * clients to the other one.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Farm } from "./farm.js";
import { RawClient } from "./clients.js";

const HEADER = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>";

describe("see-other-host between two c2s (loads in Redis)", () => {
  let farm: Farm;
  const held: RawClient[] = [];
  before(async () => {
    process.env.JABBERFARM__C2S__REDIRECT__REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379/5";
    // A few clients are a load here: by default a c2s below 1000 never redirects.
    process.env.JABBERFARM__C2S__REDIRECT__MIN_CONNECTIONS = "0";
    try {
      farm = await Farm.start({ upArgs: ["--c2s", "2"] });
    } finally {
      delete process.env.JABBERFARM__C2S__REDIRECT__REDIS_URL;
      delete process.env.JABBERFARM__C2S__REDIRECT__MIN_CONNECTIONS;
    }
  });
  after(async () => {
    for (const c of held) c.socket.destroy();
    assert.equal(await farm.stop(), 0);
  });

  test("a loaded c2s sends new clients to the idle one, which keeps them", async () => {
    const open = async (host: string): Promise<RawClient> => {
      const c = await RawClient.connect(farm.ports.c2s, host);
      c.write(HEADER);
      await c.until(/<\/stream:features>|<\/see-other-host>/);
      held.push(c);
      return c;
    };
    // Balanced: alternate between the two, wait for the loads to be published,
    // and a new client is not redirected.
    for (let i = 0; i < 4; i++) {
      await open("127.0.0.1");
      await open("127.0.0.2");
    }
    await new Promise((r) => setTimeout(r, 2500));
    const balanced = await open("127.0.0.1");
    assert.doesNotMatch(balanced.text, /see-other-host/, "a balanced farm redirects nobody");
    // Load c2s-1 well above its share.
    for (let i = 0; i < 12; i++) await open("127.0.0.1");
    await new Promise((r) => setTimeout(r, 2500));
    const fresh = await RawClient.connect(farm.ports.c2s);
    fresh.write(HEADER);
    const m = await fresh.until(/<see-other-host xmlns='urn:ietf:params:xml:ns:xmpp-streams'>([^<]+)<\/see-other-host>/);
    assert.equal(m[1], `127.0.0.2:${farm.ports.c2s}`);
    assert.doesNotMatch(fresh.text, /<stream:features>/, "redirected before TLS and auth");
    await fresh.waitClosed();
    // The named c2s takes the client.
    const [host, port] = m[1]!.split(":");
    const other = await RawClient.connect(Number(port), host);
    other.write(HEADER);
    await other.until(/<\/stream:features>/);
    assert.doesNotMatch(other.text, /see-other-host/, "the idle c2s keeps the client");
    held.push(other);

    // Drain: SIGTERM to c2s-1 sends each of its clients to the other c2s.
    const onFirst = held.filter((c) => c.socket.remoteAddress === "127.0.0.1" && !c.closed);
    assert.ok(onFirst.length > 0);
    const pid = farm.childPidById("c2s-1");
    assert.ok(pid);
    process.kill(pid, "SIGTERM");
    for (const c of onFirst) {
      const told = await c.until(/<see-other-host xmlns='urn:ietf:params:xml:ns:xmpp-streams'>([^<]+)<\/see-other-host>/);
      assert.equal(told[1], `127.0.0.2:${farm.ports.c2s}`);
    }
  });
});
