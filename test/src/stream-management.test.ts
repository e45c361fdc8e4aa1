/**
 * Stream management across the farm (XEP-0198, docs/stream-management.md),
 * with a real client library (@xmpp/client, whose stream-management package
 * enables and resumes by itself) on `jabberfarm up --routers 2 --sm 2 --c2s 3`
 * on PostgreSQL and a private Redis: while two users chat at a steady rate,
 * the c2s of one of them is killed (-9), or stopped (SIGTERM), or its SM is
 * killed while its session waits detached; the client resumes on another
 * c2s. A ledger of message ids shows what was lost (nothing), what came
 * twice (only what XEP-0198 allows: stanzas the client had not acknowledged)
 * and how long the client was away.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { client, xml, type XmppClient, type XmppElement } from "@xmpp/client";
import { Farm, freshDatabase, waitUntil } from "./farm.js";
import { HOSTS, TOPOLOGY, ownerOf, sleep } from "./fleet.js";
import { RawClient } from "./clients.js";
import { PrivateRedis } from "./redis-server.js";

/** A user of these tests: an @xmpp/client that reconnects and resumes by itself, with what it received. */
class Mobile {
  readonly xmpp: XmppClient;
  readonly received = new Map<string, number>();
  resumedAt: number[] = [];
  enabledCount = 0;

  constructor(readonly user: string, password: string, public host: string, readonly port: number) {
    this.xmpp = client({ service: `xmpp://${host}:${port}`, domain: "localhost", username: user, password, resource: "phone" });
    (this.xmpp as unknown as { timeout: number }).timeout = 15_000;
    (this.xmpp as unknown as { reconnect: { delay: number } }).reconnect.delay = 200;
    this.xmpp.on("error", (e: Error) => { if (process.env.SM_DEBUG) process.stdout.write(`# ${user} error ${e.message}\n`); });
    if (process.env.SM_DEBUG) {
      this.xmpp.on("status", (s: string) => process.stdout.write(`# ${user} status ${s} ${Date.now() % 100000}\n`));
      this.xmpp.on("nonza", (el: XmppElement) => process.stdout.write(`# ${user} nonza ${el.toString().slice(0, 200)}\n`));
      this.xmpp.on("connecting", (s: string) => process.stdout.write(`# ${user} connecting ${s}\n`));
    }
    this.xmpp.on("stanza", (el: XmppElement) => {
      const id = el.attrs.id as string | undefined;
      if (el.is("message") && id?.startsWith("t-")) this.received.set(id, (this.received.get(id) ?? 0) + 1);
    });
    const sm = (this.xmpp as unknown as { streamManagement: NodeJS.EventEmitter }).streamManagement;
    sm.on("resumed", () => this.resumedAt.push(Date.now()));
  }

  /** Where the library goes next time it (re)connects: another c2s of the farm, as DNS would give it. */
  moveTo(host: string): void {
    this.host = host;
    (this.xmpp as unknown as { options: { service: string } }).options.service = `xmpp://${host}:${this.port}`;
  }

  get smId(): string {
    return (this.xmpp as unknown as { streamManagement: { id: string } }).streamManagement.id;
  }

  async start(): Promise<void> {
    await this.xmpp.start();
    await this.xmpp.send(xml("presence"));
    await waitUntil(`${this.user}: stream management enabled`, 15_000, () => this.smId !== "");
  }

  /** Resolves when the stream is up (at once if it is). */
  online(): Promise<void> {
    if ((this.xmpp as unknown as { status: string }).status === "online") return Promise.resolve();
    // A resumption makes the library online without an "online" event: its stream management says "resumed".
    const sm = (this.xmpp as unknown as { streamManagement: NodeJS.EventEmitter }).streamManagement;
    return new Promise((resolve) => {
      const done = (): void => {
        this.xmpp.off("online", done);
        sm.off("resumed", done);
        resolve();
      };
      this.xmpp.on("online", done);
      sm.on("resumed", done);
    });
  }

  send(to: string, id: string): Promise<void> {
    return this.xmpp.send(xml("message", { to, id, type: "chat" }, xml("body", {}, id)));
  }
}

/** Sends `t-<tag>-N` from `from` to `to` every `everyMs` until `stop` resolves; returns the ids sent. */
async function steady(from: Mobile, to: string, tag: string, everyMs: number, stop: Promise<unknown>): Promise<string[]> {
  const sent: string[] = [];
  let done = false;
  void stop.then(() => (done = true));
  for (let n = 0; !done; n++) {
    const id = `t-${tag}-${n}`;
    // Like an app, it writes only on a stream that is up: stanzas written
    // during a reconnection's SASL step would be refused (RFC 6120 §6.4.x,
    // not-authorized) and end that stream.
    await from.online();
    try {
      await from.send(to, id);
      sent.push(id);
    } catch {
      // The library queues while it is away; a send it refused was not sent.
    }
    await sleep(everyMs);
  }
  return sent;
}

function tally(sent: string[], got: Map<string, number>): { lost: string[]; duplicates: number } {
  const lost = sent.filter((id) => !got.has(id));
  let duplicates = 0;
  for (const id of sent) duplicates += Math.max(0, (got.get(id) ?? 0) - 1);
  return { lost, duplicates };
}

describe("stream management across a farm of 2 routers, 2 SMs and 3 c2s", { timeout: 300_000 }, () => {
  let farm: Farm;
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  let redis: PrivateRedis;
  const users = ["sm-a", "sm-b", "sm-c", "sm-d", "sm-e"];

  before(async () => {
    db = await freshDatabase();
    redis = await PrivateRedis.start();
    farm = await Farm.start({ metrics: true, databaseUrl: db.url, upArgs: [...TOPOLOGY, "--redis-url", redis.url], env: { JABBERFARM__SM__STREAM_MANAGEMENT__RESUME_TIMEOUT_SECONDS: "120" } });
    for (const u of users) await farm.addUser(`${u}@localhost`, `${u}-pw`);
  });
  after(async () => {
    assert.equal(await farm.stop(), 0);
    await redis.kill();
    await db.drop();
  });

  /** Two users on different c2s chatting both ways; `fault` happens to the first one's c2s mid-way. */
  async function chatThrough(a: Mobile, b: Mobile, tag: string, fault: () => Promise<void>): Promise<{ awayMs: number }> {
    let stopChat!: () => void;
    const stop = new Promise<void>((r) => (stopChat = r));
    const sentAB = steady(a, `${b.user}@localhost/phone`, `${tag}ab`, 40, stop);
    const sentBA = steady(b, `${a.user}@localhost/phone`, `${tag}ba`, 40, stop);
    await sleep(1500);
    const resumesBefore = a.resumedAt.length;
    const faultAt = Date.now();
    await fault();
    await waitUntil(`${a.user} resumed`, 60_000, () => a.resumedAt.length > resumesBefore);
    const awayMs = a.resumedAt.at(-1)! - faultAt;
    await sleep(1500);
    stopChat();
    const [ab, ba] = await Promise.all([sentAB, sentBA]);
    // Whatever is still on its way arrives.
    await waitUntil("every message delivered", 30_000, () => tally(ba, a.received).lost.length === 0 && tally(ab, b.received).lost.length === 0).catch(() => {});
    const toA = tally(ba, a.received);
    const toB = tally(ab, b.received);
    const report = `${tag}: ${a.user} away ${awayMs} ms; to it ${ba.length} sent, lost ${toA.lost.length}, twice ${toA.duplicates}; from it ${ab.length} sent, lost ${toB.lost.length}, twice ${toB.duplicates}`;
    process.stdout.write(`# ${report}\n`);
    assert.deepEqual(toA.lost, [], report);
    // In order: the first arrival of each message follows the order it was sent in.
    const arrivedAtA = [...a.received.keys()].filter((id) => id.startsWith(`t-${tag}ba-`));
    assert.deepEqual(arrivedAtA, ba, `${report}: out of order`);
    assert.deepEqual(toB.lost, [], report);
    // XEP-0198 repeats only what the receiver had not acknowledged (the library acks when asked, every few stanzas).
    assert.ok(toA.duplicates <= 20 && toB.duplicates <= 20, report);
    return { awayMs };
  }

  test("kill -9 of the c2s of a client: it resumes on another c2s and gets everything, in order", async () => {
    const a = new Mobile("sm-a", "sm-a-pw", HOSTS[0], farm.ports.c2s);
    const b = new Mobile("sm-b", "sm-b-pw", HOSTS[1], farm.ports.c2s);
    await a.start();
    await b.start();
    const pid = farm.childPidById("c2s-1")!;
    await chatThrough(a, b, "kill", async () => {
      a.moveTo(HOSTS[2]);
      process.kill(pid, "SIGKILL");
    });
    await farm.restarted("c2s-1", pid);
    await a.xmpp.stop();
    await b.xmpp.stop();
  });

  test("SIGTERM of the c2s of a client: see-other-host, and it resumes where it was sent", async () => {
    const a = new Mobile("sm-c", "sm-c-pw", HOSTS[1], farm.ports.c2s);
    const b = new Mobile("sm-d", "sm-d-pw", HOSTS[2], farm.ports.c2s);
    await a.start();
    await b.start();
    const pid = farm.childPidById("c2s-2")!;
    await chatThrough(a, b, "term", async () => {
      // The library follows see-other-host by itself; no move needed.
      process.kill(pid, "SIGTERM");
    });
    await farm.restarted("c2s-2", pid);
    await a.xmpp.stop();
    await b.xmpp.stop();
  });

  test("kill -9 of the SM while the session waits detached: the next SM holds it, queue and all", async () => {
    const a = new Mobile("sm-e", "sm-e-pw", HOSTS[0], farm.ports.c2s);
    const b = new Mobile("sm-b", "sm-b-pw", HOSTS[2], farm.ports.c2s);
    await a.start();
    await b.start();
    const owner = ownerOf("sm-e@localhost");
    // The client loses its connection and stays away a while.
    (a.xmpp as unknown as { reconnect: { delay: number } }).reconnect.delay = 4000;
    const c2s = farm.childPidById("c2s-1")!;
    process.kill(c2s, "SIGKILL");
    await sleep(800);
    const sent: string[] = [];
    for (let n = 0; n < 10; n++) {
      const id = `t-det-${n}`;
      await b.send("sm-e@localhost/phone", id);
      sent.push(id);
    }
    await sleep(500);
    const sm = farm.childPidById(owner)!;
    process.kill(sm, "SIGKILL");
    a.moveTo(HOSTS[1]);
    await waitUntil("sm-e resumed", 60_000, () => a.resumedAt.length > 0);
    await waitUntil("every held message delivered", 20_000, () => tally(sent, a.received).lost.length === 0).catch(() => {});
    const t = tally(sent, a.received);
    process.stdout.write(`# detached through an SM kill: ${sent.length} sent, lost ${t.lost.length}, twice ${t.duplicates}\n`);
    assert.deepEqual(t.lost, []);
    await farm.restarted(owner, sm);
    await farm.restarted("c2s-1", c2s);
    await a.xmpp.stop();
    await b.xmpp.stop();
  });

  test("a wrong, another user's, or an over-counted resumption is refused with <failed/>, and nothing leaks", async () => {
    const a = new Mobile("sm-a", "sm-a-pw", HOSTS[2], farm.ports.c2s);
    await a.start();
    const previd = a.smId;
    const resume = async (user: string, id: string, h: number): Promise<string> => {
      const c = await RawClient.connect(farm.ports.c2s, HOSTS[1]);
      await c.authenticate(user, `${user}-pw`);
      c.write(`<resume xmlns='urn:xmpp:sm:3' previd='${id}' h='${h}'/>`);
      const m = await c.until(/<failed[^>]*\/>|<failed[\s\S]*?<\/failed>|<resumed[^>]*>/);
      c.socket.destroy();
      return m[0];
    };
    assert.match(await resume("sm-a", previd.slice(0, -4) + "AAAA", 0), /<failed[^>]*><item-not-found/);
    assert.match(await resume("sm-d", previd, 0), /<failed[^>]*><item-not-found/, "another user's session");
    assert.match(await resume("sm-a", previd, 9999), /<failed[^>]*><undefined-condition[^>]*\/><handled-count-too-high/);
    // The session was not disturbed: it still gets messages.
    const b = new Mobile("sm-b", "sm-b-pw", HOSTS[0], farm.ports.c2s);
    await b.start();
    await b.send("sm-a@localhost/phone", "t-after-failed");
    await waitUntil("the message after the failed resumptions", 15_000, () => a.received.has("t-after-failed"));
    await a.xmpp.stop();
    await b.xmpp.stop();
  });
});
