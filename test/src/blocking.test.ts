/**
 * Blocking (XEP-0191, packages/sm/src/modules/blocking.ts) across a farm of
 * 2 routers, 2 SMs and 3 c2s on PostgreSQL and a private Redis: two users
 * owned by different SMs block each other, a third user on the second SM is
 * the control that shows delivery works; then the first user's SM is killed
 * (-9) and the other SM takes the user over, and the blocks still hold both
 * ways; an unblock lets traffic through again.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Farm, freshDatabase, waitUntil } from "./farm.js";
import { HOSTS, TOPOLOGY, nameOn, ownerOf } from "./fleet.js";
import { LibraryClient, xml } from "./clients.js";
import { PrivateRedis } from "./redis-server.js";
import { parseElement, readError, type Element } from "@jabberfarm/xml";

const NS = "urn:xmpp:blocking";

describe("blocking across two SMs, and after a takeover", { timeout: 240_000 }, () => {
  let farm: Farm;
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  let redis: PrivateRedis;
  // a on sm-1; b (the one blocked) and c (the control) on sm-2.
  const a = nameOn("blk-a", "sm-1");
  const b = nameOn("blk-b", "sm-2");
  const c = nameOn("blk-c", "sm-2");
  const jid = (u: string): string => `${u}@localhost`;
  let ca: LibraryClient;
  let cb: LibraryClient;
  let cc: LibraryClient;
  let seq = 0;

  before(async () => {
    db = await freshDatabase();
    redis = await PrivateRedis.start();
    farm = await Farm.start({ databaseUrl: db.url, upArgs: [...TOPOLOGY, "--redis-url", redis.url] });
    for (const u of [a, b, c]) await farm.addUser(jid(u), `${u}-pw`);
    ca = await LibraryClient.login(farm.ports.c2s, a, `${a}-pw`, "desk", HOSTS[0]);
    cb = await LibraryClient.login(farm.ports.c2s, b, `${b}-pw`, "desk", HOSTS[1]);
    cc = await LibraryClient.login(farm.ports.c2s, c, `${c}-pw`, "desk", HOSTS[2]);
  });
  after(async () => {
    for (const cl of [ca, cb, cc]) await cl?.stop();
    assert.equal(await farm.stop(), 0);
    await redis.kill();
    await db.drop();
  });

  const isMessage = (id: string) => (el: Element): boolean => el.name === "message" && el.attrs.id === id;
  const condition = (el: Element): string | undefined => readError(el.getChild("error")).condition;

  async function send(from: LibraryClient, to: string): Promise<string> {
    const id = `blk-${++seq}`;
    await from.send(xml("message", { to, id, type: "chat" }, xml("body", {}, id)));
    return id;
  }

  /** `from` → `to` is refused: the sender gets `cond` back; `toClient` gets nothing (checked after a control message reached it). */
  async function refused(from: LibraryClient, to: string, toClient: LibraryClient, cond: string, control: LibraryClient): Promise<Element> {
    const id = await send(from, to);
    const err = await from.next(isMessage(id), 10_000);
    assert.equal(err.attrs.type, "error", `${from.jid} → ${to}: ${err.toString()}`);
    assert.equal(condition(err), cond, err.toString());
    // The control's message arrives, so the blocked one would have been there by now if it went through.
    const ok = await send(control, toClient.jid);
    await toClient.next(isMessage(ok), 10_000);
    assert.ok(!toClient.received.some(isMessage(id)), `${to} got a message from a JID it blocked (or that blocked it)`);
    return err;
  }

  async function delivered(from: LibraryClient, to: LibraryClient): Promise<void> {
    const id = await send(from, to.jid);
    const got = await to.next(isMessage(id), 10_000);
    assert.notEqual(got.attrs.type, "error");
  }

  async function blockIq(cl: LibraryClient, verb: "block" | "unblock", who: string): Promise<void> {
    const r = await cl.iq(xml("iq", { type: "set", id: `${verb}-${++seq}` }, xml(verb, { xmlns: NS }, xml("item", { jid: who }))));
    assert.equal(r.attrs.type, "result", r.toString());
  }

  test("the users are where the test needs them", () => {
    assert.equal(ownerOf(jid(a)), "sm-1");
    assert.equal(ownerOf(jid(b)), "sm-2");
    assert.equal(ownerOf(jid(c)), "sm-2");
  });

  test("users on different SMs block each other: nothing passes either way, a third user still gets through", async () => {
    await delivered(cb, ca);
    await blockIq(ca, "block", jid(b));
    // To a user from a JID it blocked: service-unavailable, as if offline (XEP-0191 §3.5).
    await refused(cb, ca.jid, ca, "service-unavailable", cc);
    // From a user to a JID it blocked: not-acceptable, with the blocking error (§3.6).
    const err = await refused(ca, cb.jid, cb, "not-acceptable", cc);
    assert.ok(err.getChild("error")?.getChild("blocked", `${NS}:errors`), err.toString());
    await blockIq(cb, "block", jid(a));
    await refused(cb, ca.jid, ca, "not-acceptable", cc);
    await refused(ca, cb.jid, cb, "not-acceptable", cc);
    // The lists are what was set.
    const list = await ca.iq(xml("iq", { type: "get", id: `list-${++seq}` }, xml("blocklist", { xmlns: NS })));
    const items = parseElement(list.toString(), "jabber:client").getChild("blocklist", NS)?.getChildren("item").map((i) => i.attrs.jid);
    assert.deepEqual(items, [jid(b)]);
  });

  test("after kill -9 of the first user's SM the other takes it over, and both blocks still hold", async () => {
    const pid = farm.childPidById("sm-1")!;
    const fromLog = farm.logs.length;
    process.kill(pid, "SIGKILL");
    await farm.waitLog("sm-2 took sm-1's sessions over", (l) => l.msg === "took sessions over" && l.from === "sm-1", 20_000, fromLog);
    // The taken-over user is served again (the control reaches it), and the blocks hold both ways on the new SM.
    await waitUntil("the control reaches the taken-over user", 15_000, async () => {
      try {
        await delivered(cc, ca);
        return true;
      } catch {
        return false;
      }
    });
    await refused(cb, ca.jid, ca, "not-acceptable", cc);
    await refused(ca, cb.jid, cb, "not-acceptable", cc);
    await farm.restarted("sm-1", pid);
  });

  test("unblocking both ways lets messages through again", async () => {
    await blockIq(ca, "unblock", jid(b));
    await blockIq(cb, "unblock", jid(a));
    await delivered(cb, ca);
    await delivered(ca, cb);
  });
});
