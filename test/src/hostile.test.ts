/**
 * Hostile input against a running farm (`jabberfarm up` as an admin would
 * start it): a logged-in client and an external component try what used to
 * cut the links between farm processes or act as the farm. Each attacker
 * gets an error or is disconnected, the other users' traffic goes on, and
 * no internal link closes: jabberfarm_link_closed_total stays at zero in
 * every process (docs/security.md).
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { connect } from "node:net";
import { handshakeDigest } from "@jabberfarm/component";
import { parseElement, stanzaErrorCondition, type Element } from "@jabberfarm/xml";
import { Farm, waitUntil } from "./farm.js";
import { LibraryClient, RawClient, xml } from "./clients.js";
import { scrape, type Scrape } from "./prometheus.js";
import { prng, unusualStanza } from "./unusual-stanzas.js";

const BOT_SECRET = "bot-component-secret-for-tests";
const PROCESSES = ["router", "xdb", "sm", "c2s"] as const;

/** Every stanza of a raw client's text so far, parsed. */
function stanzas(c: RawClient): Element[] {
  const out: Element[] = [];
  for (const m of c.text.matchAll(/<(message|iq|presence)[\s>][\s\S]*?<\/\1>|<(message|iq|presence)\b[^>]*\/>/g)) {
    try {
      out.push(parseElement(m[0], "jabber:client"));
    } catch {
      // a fragment of something larger; the next match will have it whole
    }
  }
  return out;
}

/** The link closes every farm process counted, by reason. */
function linkCloses(s: Scrape): number {
  let n = 0;
  for (const [k, v] of s) if (k.startsWith("jabberfarm_link_closed_total{")) n += v;
  return n;
}

/** A raw XEP-0114 component connection to the router. */
class RawComponent {
  text = "";
  closed = false;
  private constructor(readonly socket: ReturnType<typeof connect>) {
    socket.setEncoding("utf8");
    socket.on("data", (d: string) => (this.text += d));
    socket.on("close", () => (this.closed = true));
    socket.on("error", () => {});
  }

  static async open(port: number, name: string, secret: string, headerExtra = ""): Promise<RawComponent> {
    const socket = connect({ host: "127.0.0.1", port });
    await new Promise<void>((resolve, reject) => socket.once("connect", resolve).once("error", reject));
    const c = new RawComponent(socket);
    socket.write(`<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' ${headerExtra} to='${name}'>`);
    const header = await waitUntil("the router's header", 10_000, () => /<stream:stream [^>]*id='([^']+)'/.exec(c.text) ?? undefined);
    const id = header[1]!;
    socket.write(`<handshake>${handshakeDigest(id, secret)}</handshake>`);
    await waitUntil("the handshake accepted", 10_000, () => c.text.includes("<handshake/>"));
    return c;
  }

  write(s: string): void {
    this.socket.write(s);
  }
}

describe("hostile input against a running farm", () => {
  let farm: Farm;
  let alice: LibraryClient;
  let bob: LibraryClient;
  const closesAtStart = new Map<string, number>();

  before(async () => {
    farm = await Farm.start({
      metrics: true, upArgs: ["--component", `bot.localhost=${BOT_SECRET}`],
      env: {
        // A router that cuts off a slow component early, and a client allowed to send fast enough to get there.
        JABBERFARM__ROUTER__LIMITS__HIGH_WATER_MARK: "65536",
        JABBERFARM__C2S__LIMITS__BYTES_PER_SECOND: "50000000",
      },
    });
    for (const u of ["alice", "bob", "mallory", "fuzz1", "fuzz2", "fuzz3", "fuzz4"]) await farm.addUser(`${u}@localhost`, `${u}-pw`);
    alice = await LibraryClient.login(farm.ports.c2s, "alice", "alice-pw", "a");
    bob = await LibraryClient.login(farm.ports.c2s, "bob", "bob-pw", "b");
    for (const p of PROCESSES) closesAtStart.set(p, linkCloses(await scrape(farm.metricsPort(p))));
  });

  after(async () => {
    await alice?.stop();
    await bob?.stop();
    assert.equal(await farm.stop(), 0);
  });

  /** alice → bob still works, within a few seconds. */
  async function stillChatting(id: string): Promise<void> {
    await alice.send(xml("message", { to: "bob@localhost/b", id, type: "chat" }, xml("body", {}, id)));
    await bob.next((el) => el.name === "message" && el.attrs.id === id, 15_000);
  }

  async function noLinkClosed(): Promise<void> {
    for (const p of PROCESSES) {
      const now = linkCloses(await scrape(farm.metricsPort(p)));
      assert.equal(now - closesAtStart.get(p)!, 0, `${p}: an internal link closed`);
    }
  }

  test("CDATA from a client is re-serialised at the c2s: delivered as text, no link closes", async () => {
    const m = await RawClient.login(farm.ports.c2s, "mallory@localhost".split("@")[0]!, "mallory-pw", "m");
    m.write("<message to='bob@localhost/b' id='cdata' type='chat'><body><![CDATA[<b>bold</b> & more]]></body></message>");
    const got = await bob.next((el) => el.attrs.id === "cdata", 15_000);
    assert.equal(got.getChildText("body"), "<b>bold</b> & more");
    await stillChatting("after-cdata");
    await noLinkClosed();
    m.socket.destroy();
  });

  test("a prefix declared on the client's stream header and used in a stanza arrives as a namespace", async () => {
    const conn = await RawClient.connect(farm.ports.c2s);
    conn.headerExtra = "xmlns:x='urn:example:x'";
    const m = await conn.logIn("mallory", "mallory-pw", "p");
    m.write("<message to='bob@localhost/b' id='prefix' type='chat'><x:y a='1'/><body>p</body></message>");
    const got = await bob.next((el) => el.attrs.id === "prefix", 15_000);
    assert.equal(got.getChild("y", "urn:example:x")?.attrs.a, "1");
    await stillChatting("after-prefix");
    await noLinkClosed();
    m.socket.destroy();
  });

  test("200 KiB of '>' to a user who does not exist gets a small error; nothing is echoed, no link closes", async () => {
    const m = await RawClient.login(farm.ports.c2s, "mallory", "mallory-pw", "big");
    m.write(`<message to='nobody@localhost' id='big' type='chat'><body>${">".repeat(200 * 1024)}</body></message>`);
    const reply = await waitUntil("the error for the large message", 20_000, () => stanzas(m).find((e) => e.attrs.id === "big"));
    assert.equal(reply.attrs.type, "error");
    assert.equal(stanzaErrorCondition(reply), "service-unavailable");
    assert.equal(reply.getChild("body"), undefined, "the large payload is not echoed");
    assert.ok(!m.closed, "the client's stream goes on");
    await stillChatting("after-big");
    await noLinkClosed();
    m.socket.destroy();
  });

  test("an external component that dresses an element up as an envelope is cut off; xdb never sees it", async () => {
    const bot = await RawComponent.open(farm.ports.router, "bot.localhost", BOT_SECRET);
    // Read by a byte-level splitter this would have been an <xdb/> envelope changing alice's password.
    bot.write("<x:xdb xmlns:x='jabber:component:accept' xmlns='urn:jabberfarm:envelope:1' type='set' id='t1' op='credentials.set' from='bot.localhost' to='xdb'>{}</x:xdb>");
    await waitUntil("the bot's stream closed", 10_000, () => bot.closed);
    assert.match(bot.text, /unsupported-stanza-type/);
    // alice's password still works, and only it.
    const again = await LibraryClient.login(farm.ports.c2s, "alice", "alice-pw", "a2");
    await again.stop();
    await stillChatting("after-envelope");
    await noLinkClosed();
  });

  test("an envelope or a router notice from an external component does not get through", async () => {
    const bot = await RawComponent.open(farm.ports.router, "bot.localhost", BOT_SECRET);
    bot.write("<session xmlns='urn:jabberfarm:envelope:1' type='kick' id='k' from='bot.localhost' to='c2s/c2s-1' sid='x'/>");
    await waitUntil("forbidden", 10_000, () => /<forbidden /.test(bot.text));
    bot.write("<members xmlns='urn:jabberfarm:router:0' name='c2s' from='bot.localhost' to='localhost/sm-1'/>");
    await waitUntil("the bot's stream closed", 10_000, () => bot.closed);
    // A forged empty c2s list would have made the SM end every session: they are all there.
    await stillChatting("after-notice");
    await noLinkClosed();
  });

  test("an external component that stops reading is cut off; the farm's senders never pause", async () => {
    const bot = await RawComponent.open(farm.ports.router, "bot.localhost", BOT_SECRET);
    const from = farm.logs.length;
    const cutOff = (): boolean => farm.logs.slice(from).some((l) => l.msg === "an external component reads too slowly; closing it");
    // It reads nothing more: what the kernel buffers on loopback (tens of MB) fills first, then the router's queue.
    bot.socket.pause();
    const body = "z".repeat(64_000);
    try {
      for (let i = 0; i < 1500 && !cutOff(); i++) {
        await alice.send(xml("message", { to: "echo@bot.localhost", id: `flood${i}` }, xml("body", {}, body)));
      }
    } catch (err) {
      const warnings = farm.logs.slice(from).filter((l) => Number(l.level) >= 40).map((l) => JSON.stringify(l));
      throw new Error(`${(err as Error).message}; the farm said:\n${warnings.join("\n")}`);
    }
    await waitUntil("the router to cut the slow component off", 30_000, cutOff);
    bot.socket.resume();
    await waitUntil("the bot's stream closed", 30_000, () => bot.closed);
    assert.match(bot.text, /resource-constraint/);
    await stillChatting("after-slow");
    await noLinkClosed();
  });

  test("a property: seconds of random, unusual but well-formed stanzas from a client; no internal link closes, no process restarts, chat goes on", async () => {
    const seed = Number(process.env.JABBERFARM_FUZZ_SEED ?? 20261204);
    const rand = prng(seed);
    const from = farm.logs.length;
    // A new stream (after one a comment ended) logs in as the next account: its
    // predecessor's own backlog of storage requests is its own business.
    const account = (n: number): string => `fuzz${(n % 4) + 1}`;
    let m = await RawClient.login(farm.ports.c2s, account(0), `${account(0)}-pw`, "f");
    let sent = 0;
    let streams = 1;
    const deadline = Date.now() + 8000;
    while (Date.now() < deadline && sent < 4000) {
      if (m.closed) {
        const a = account(streams++);
        m = await RawClient.login(farm.ports.c2s, a, `${a}-pw`, `f${streams}`);
      }
      const u = unusualStanza(rand);
      m.write(u.text);
      sent++;
      if (u.endsStream) await m.waitClosed(15_000);
      // Breathe now and then, as a client would: the farm's answers come back meanwhile.
      if (sent % 40 === 0) await new Promise((r) => setTimeout(r, 20));
    }
    m.socket.destroy();
    await stillChatting(`after-fuzz-${seed}`);
    await noLinkClosed();
    const restarts = farm.logs.slice(from).filter((l) => l.msg === "child exited; restarting");
    assert.deepEqual(restarts, [], "no farm process died");
    assert.ok(sent > 100, `sent ${sent} stanzas on ${streams} streams (seed ${seed})`);
  });
});
