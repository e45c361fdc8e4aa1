/**
 * A bigger farm on one machine as plain processes: `jabberfarm up --routers 2
 * --sm 2 --c2s 2`. Users homed on different SMs and connected to different
 * c2s subscribe, see presence and chat through the routers; with one router
 * killed, the others carry the traffic.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { rendezvousPick, rendezvousSeed } from "@jabberfarm/component";
import { Farm } from "./farm.js";
import { scrape } from "./prometheus.js";
import { LibraryClient, RawClient, xml } from "./clients.js";
import type { Element } from "@jabberfarm/xml";

const SMS = ["sm-1", "sm-2"].map((id) => ({ rendezvousId: id, rendezvousSeed: rendezvousSeed(id) }));
const ownerOf = (bare: string): string => rendezvousPick(SMS, bare)!.rendezvousId;

/** Two account names whose owners (by the routers' rule) are different SMs. */
function usersOnDifferentSms(): [string, string] {
  const first = "ivy";
  for (let i = 0; ; i++) {
    const other = `jack${i}`;
    if (ownerOf(`${other}@localhost`) !== ownerOf(`${first}@localhost`)) return [first, other];
  }
}

describe("jabberfarm up --routers 2 --sm 2 --c2s 2", () => {
  let farm: Farm;
  const clients: LibraryClient[] = [];
  before(async () => {
    farm = await Farm.start({ upArgs: ["--routers", "2", "--sm", "2", "--c2s", "2"], metrics: true });
  });
  after(async () => {
    for (const c of clients) await c.stop();
    assert.equal(await farm.stop(), 0);
  });

  test("both routers carry traffic: each user's stanzas take the router their destination hashes to", async () => {
    // The components' rule (packages/component pool.ts): rendezvous hashing
    // of the destination over the routers' addresses. A route from a c2s is
    // addressed to its user's bare JID, a relay between SMs to the
    // recipient's; so two users who hash to different routers send through
    // different routers, whichever router the farm's processes linked first.
    const routers = farm.farmPorts!.routers.map((r) => ({ id: r.id, rendezvousId: `${r.host}:${r.port}`, rendezvousSeed: rendezvousSeed(`${r.host}:${r.port}`) }));
    assert.equal(routers.length, 2);
    const via = (bare: string): string => rendezvousPick(routers, bare)!.id;
    const names: Record<string, string> = {};
    for (let i = 0; Object.keys(names).length < 2; i++) names[via(`lena${i}@localhost`)] ??= `lena${i}`;
    const [u1, u2] = routers.map((r) => `${names[r.id]!}@localhost`) as [string, string];
    for (const u of [u1, u2]) await farm.addUser(u, "pw-lena");
    const c1 = await LibraryClient.login(farm.ports.c2s, u1.split("@")[0]!, "pw-lena", "one", "127.0.0.1");
    const c2 = await LibraryClient.login(farm.ports.c2s, u2.split("@")[0]!, "pw-lena", "two", "127.0.0.2");
    clients.push(c1, c2);
    /** Messages each router read (a route counts as the message it carries). */
    const routed = async (): Promise<number[]> => Promise.all(routers.map(async (r) => {
      let n = 0;
      for (const [k, v] of await scrape(farm.metricsPort(r.id))) if (k.startsWith("jabberfarm_stanzas_in_total{") && k.includes("kind=message")) n += v;
      return n;
    }));
    const before = await routed();
    const N = 20;
    for (let i = 0; i < N; i++) {
      await c1.send(xml("message", { to: `${u2}/two`, type: "chat", id: `a${i}` }, xml("body", {}, `a${i}`)));
      await c2.send(xml("message", { to: `${u1}/one`, type: "chat", id: `b${i}` }, xml("body", {}, `b${i}`)));
    }
    // In order, each way.
    for (let i = 0; i < N; i++) {
      assert.equal((await c2.next((e) => e.name === "message" && e.attrs.id?.startsWith("a") === true)).attrs.id, `a${i}`);
      assert.equal((await c1.next((e) => e.name === "message" && e.attrs.id?.startsWith("b") === true)).attrs.id, `b${i}`);
    }
    const carried = (await routed()).map((n, i) => n - before[i]!);
    // Each message: c2s → sender's SM (keyed by the sender), SM → SM when
    // they differ (keyed by the recipient), SM → recipient's c2s (keyed by
    // that c2s's address, so on either router).
    const crossing = ownerOf(u1) !== ownerOf(u2);
    const least = routers.map((r) => (r.id === via(u1) ? N : 0) + (r.id === via(u2) ? N : 0) + (crossing ? N : 0));
    for (const [i, r] of routers.entries()) {
      assert.ok(carried[i]! >= least[i]!, `${r.id} carried the messages whose hops hash to it: at least ${least[i]}, carried ${carried.join(" / ")}`);
    }
    assert.equal(carried[0]! + carried[1]!, 2 * N * (crossing ? 3 : 2), "each message crossed the routers once per hop, no more");
  });

  test("users on different SMs and c2s subscribe, see presence and chat; a router dies and traffic goes on", async () => {
    const [a, b] = usersOnDifferentSms();
    await farm.addUser(`${a}@localhost`, "pw-a");
    await farm.addUser(`${b}@localhost`, "pw-b");
    // For the next test: made now, while both routers serve (a restarted
    // router needs a moment before every component has linked to it again).
    await farm.addUser("kim@localhost", "pw-k");
    assert.ok(farm.stderr.includes("127.0.0.2"), "the banner names the second c2s address");
    const ca = await LibraryClient.login(farm.ports.c2s, a, "pw-a", "one", "127.0.0.1");
    const cb = await LibraryClient.login(farm.ports.c2s, b, "pw-b", "two", "127.0.0.2");
    clients.push(ca, cb);
    for (const c of [ca, cb]) {
      await c.iq(xml("iq", { type: "get" }, xml("query", { xmlns: "jabber:iq:roster" })));
      await c.send(xml("presence"));
    }
    const presenceFrom = (jid: string) => (e: Element) => e.name === "presence" && e.attrs.type === undefined && e.attrs.from === jid;
    await ca.send(xml("presence", { type: "subscribe", to: `${b}@localhost` }));
    await cb.next((e) => e.name === "presence" && e.attrs.type === "subscribe");
    await cb.send(xml("presence", { type: "subscribed", to: `${a}@localhost` }));
    await ca.next(presenceFrom(`${b}@localhost/two`));
    await cb.send(xml("presence", { type: "subscribe", to: `${a}@localhost` }));
    await ca.next((e) => e.name === "presence" && e.attrs.type === "subscribe");
    await ca.send(xml("presence", { type: "subscribed", to: `${b}@localhost` }));
    await cb.next(presenceFrom(`${a}@localhost/one`));

    await ca.send(xml("message", { to: `${b}@localhost`, type: "chat", id: "x1" }, xml("body", {}, "across SMs")));
    assert.equal((await cb.next((e) => e.attrs.id === "x1")).getChildText("body"), "across SMs");

    // kill -9 one router: every component is linked to both, so traffic goes on
    const pid = farm.childPidById("router-1");
    assert.ok(pid, "router-1's pid is in the supervisor's log");
    process.kill(pid, "SIGKILL");
    const deadline = Date.now() + 5000;
    let delivered = false;
    for (let n = 0; !delivered && Date.now() < deadline; n++) {
      await cb.send(xml("message", { to: `${a}@localhost/one`, type: "chat", id: `after${n}` }, xml("body", {}, "still")));
      delivered = await ca.next((e) => e.name === "message" && e.attrs.id?.startsWith("after") === true, 400).then(() => true, () => false);
    }
    assert.ok(delivered, "messages flow through the remaining router within 5 s");
  });

  test("the same full JID bound on two c2s at once is a conflict across the farm: the older one goes", async () => {
    const first = await RawClient.login(farm.ports.c2s, "kim", "pw-k", "desk");
    const firstOn = first.socket.remoteAddress;
    const secondHost = firstOn === "127.0.0.1" ? "127.0.0.2" : "127.0.0.1";
    const second = await RawClient.loginAt(secondHost, farm.ports.c2s, "kim", "pw-k", "desk");
    await first.until(/<conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'\/>/);
    await first.waitClosed();
    second.write("<iq type='get' id='still'><ping xmlns='urn:xmpp:ping'/></iq>");
    await second.until(/id='still'/);
    second.socket.destroy();
  });
});
