/**
 * PEP (XEP-0163) end to end, in one farm started as an admin would
 * (`jabberfarm up --sm 2 --c2s 3` on Postgres and a private Redis): the
 * owner on one SM, contacts on the other and on the same one, each client
 * on its own c2s. @xmpp/client clients advertise `+notify` through entity
 * capabilities (XEP-0115) and answer the server's disco#info about their
 * hash; then Debian's slixmpp with its xep_0163 / xep_0060 / xep_0115
 * plugins publishes and fetches an OMEMO-style device list and bundle.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { parseElement, type Element } from "@jabberfarm/xml";
import { Farm, freshDatabase, waitUntil } from "./farm.js";
import { LibraryClient, xml } from "./clients.js";
import { nameOn } from "./fleet.js";
import { PrivateRedis } from "./redis-server.js";
import { PYTHON, runInterop } from "./interop.js";

const PUBSUB = "http://jabber.org/protocol/pubsub";
const EVENT = `${PUBSUB}#event`;
const CAPS = "http://jabber.org/protocol/caps";
const INFO = "http://jabber.org/protocol/disco#info";
const METADATA = "urn:xmpp:avatar:metadata";
const NICK = "http://jabber.org/protocol/nick";
const CLIENT_NODE = "https://jabberfarm.test/e2e";

/**
 * XEP-0115 §5.1 for one identity and features (no forms): written again here,
 * apart from the server's, so that the two must agree.
 */
function verOf(features: readonly string[]): string {
  const s = "client/pc//e2e<" + [...features].sort().map((f) => `${f}<`).join("");
  return createHash("sha1").update(s, "utf8").digest("base64");
}

const isEvent = (node: string, id?: string) => (e: Element): boolean => {
  const items = e.name === "message" ? e.getChild("event", EVENT)?.getChild("items") : undefined;
  return items?.attrs.node === node && (id === undefined || items.getChild("item")?.attrs.id === id);
};
const metadata = (id: string) => xml("metadata", { xmlns: METADATA }, xml("info", { id, bytes: "1024", type: "image/png", width: "64", height: "64" }));
const publish = (node: string, id: string, payload: ReturnType<typeof xml>) =>
  xml("iq", { type: "set" }, xml("pubsub", { xmlns: PUBSUB }, xml("publish", { node }, xml("item", { id }, payload))));
const itemsOf = (to: string, node: string) => xml("iq", { type: "get", to }, xml("pubsub", { xmlns: PUBSUB }, xml("items", { node })));
/** The item ids of an items answer (read with our parser, as LibraryClient does with what it receives). */
const ids = (r: { toString(): string }): string[] =>
  parseElement(r.toString(), "jabber:client").getChild("pubsub", PUBSUB)?.getChild("items")?.getChildren("item").map((i) => i.attrs.id ?? "") ?? [];

describe("PEP across two SMs and three c2s", () => {
  let farm: Farm;
  let redis: PrivateRedis;
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  const clients: LibraryClient[] = [];
  // The owner on sm-1; one contact on sm-2, another on sm-1.
  const ann = nameOn("pepann", "sm-1");
  const ben = nameOn("pepben", "sm-2");
  const cat = nameOn("pepcat", "sm-1");

  before(async () => {
    [redis, db] = await Promise.all([PrivateRedis.start(), freshDatabase()]);
    farm = await Farm.start({ databaseUrl: db.url, upArgs: ["--sm", "2", "--c2s", "3", "--redis-url", redis.url] });
    for (const u of [ann, ben, cat]) await farm.addUser(`${u}@localhost`, `${u}-pw`);
  });
  after(async () => {
    for (const c of clients) await c.stop();
    assert.equal(await farm?.stop(), 0, "the farm stops cleanly");
    await redis?.kill();
    await db?.drop();
  });

  /** Logs in; answers disco#info about its caps with `notify` (nodes it wants notifications of) and sends presence with the hash. */
  async function online(user: string, resource: string, host: string, notify: readonly string[]): Promise<LibraryClient> {
    const c = await LibraryClient.login(farm.ports.c2s, user, `${user}-pw`, resource, host);
    clients.push(c);
    const features = [INFO, CAPS, ...notify.map((n) => `${n}+notify`)];
    c.xmpp.iqCallee.get(INFO, "query", (ctx) =>
      xml("query", { xmlns: INFO, node: (ctx as { element: { attrs: { node?: string } } }).element.attrs.node }, xml("identity", { category: "client", type: "pc", name: "e2e" }), ...features.map((f) => xml("feature", { var: f }))));
    await c.send(xml("presence", {}, xml("c", { xmlns: CAPS, hash: "sha-1", node: CLIENT_NODE, ver: verOf(features) })));
    return c;
  }

  /** `a` and `b` subscribe to each other (each approves the other's request). */
  async function befriend(a: LibraryClient, b: LibraryClient): Promise<void> {
    for (const [x, y] of [[a, b], [b, a]] as const) {
      const yBare = y.jid.split("/")[0]!;
      const xBare = x.jid.split("/")[0]!;
      await x.send(xml("presence", { type: "subscribe", to: yBare }));
      await y.next((e) => e.name === "presence" && e.attrs.type === "subscribe" && e.attrs.from === xBare, 15_000);
      await y.send(xml("presence", { type: "subscribed", to: xBare }));
      await x.next((e) => e.name === "presence" && e.attrs.type === "subscribed" && e.attrs.from === yBare, 15_000);
    }
  }

  test("an avatar update reaches the contact whose caps say +notify and not the one whose caps do not; last item at login; kept across kill -9 of the owner's SM",
    { timeout: 180_000 }, async (t) => {
      const a = await online(ann, "pc", "127.0.0.1", [METADATA]);
      const b = await online(ben, "pc", "127.0.0.2", [METADATA, NICK]);
      const c = await online(cat, "pc", "127.0.0.3", [NICK]);
      await befriend(a, b);
      await befriend(a, c);
      // ann's SM has seen both contacts' presence (with their caps) once ann's client has.
      await a.next((e) => e.name === "presence" && e.attrs.from === b.jid && e.attrs.type === undefined, 15_000);
      await a.next((e) => e.name === "presence" && e.attrs.from === c.jid && e.attrs.type === undefined, 15_000);

      const annJid = `${ann}@localhost`;
      assert.equal((await a.iq(publish(METADATA, "sha1-v1", metadata("sha1-v1")))).attrs.type, "result");
      assert.equal((await a.iq(publish(NICK, "current", xml("nick", { xmlns: NICK }, "Ann")))).attrs.type, "result");
      const told = await b.next(isEvent(METADATA, "sha1-v1"), 15_000);
      assert.equal(told.attrs.from, annJid);
      await b.next(isEvent(NICK), 15_000);
      // cat wants the nickname only: it comes, and the avatar (sent before it, on the same path) did not.
      await c.next(isEvent(NICK), 15_000);
      assert.ok(!c.received.some(isEvent(METADATA)), "no avatar event for a client without +notify for it");
      // ann's own client asked for it too.
      await a.next(isEvent(METADATA, "sha1-v1"), 15_000);

      // ben's tablet logs in (on the third c2s): it gets the last items at once.
      const tablet = await online(ben, "tablet", "127.0.0.3", [METADATA]);
      await tablet.next(isEvent(METADATA, "sha1-v1"), 15_000);
      assert.ok(!tablet.received.some(isEvent(NICK)), "no nick: not in its caps");

      // kill -9 of ann's SM: sm-2 takes ann over and reads her nodes from storage.
      const pid = farm.childPidById("sm-1")!;
      process.kill(pid, "SIGKILL");
      const read = async (): Promise<string[] | undefined> => {
        const r = await b.iq(itemsOf(annJid, METADATA)).catch(() => undefined);
        return r === undefined ? undefined : ids(r);
      };
      assert.deepEqual(await waitUntil("ben reads ann's avatar metadata after the kill", 60_000, read, 500), ["sha1-v1"]);
      await farm.restarted("sm-1", pid);
      // And once the restarted SM owns her again; a new avatar is still notified.
      assert.deepEqual(await waitUntil("ben reads it from the restarted SM", 60_000, read, 500), ["sha1-v1"]);
      let tries = 0;
      await waitUntil("a new avatar after the restart reaches ben", 60_000, async () => {
        tries++;
        await a.iq(publish(METADATA, "sha1-v2", metadata("sha1-v2"))).catch(() => undefined);
        return b.next(isEvent(METADATA, "sha1-v2"), 3000).then(() => true, () => false);
      }, 0);
      t.diagnostic(`notified after ${tries} publish(es) of the new avatar`);
    });

  test("slixmpp: an OMEMO device list and bundle published with its PEP plugins are notified to and fetched by a contact on the other SM", { timeout: 120_000 }, async (t) => {
    assert.ok(existsSync(PYTHON), "Debian's python3 is installed (.ci/run installs python3-slixmpp)");
    const owner = nameOn("slpo", "sm-2");
    const contact = nameOn("slpc", "sm-1");
    for (const u of [owner, contact]) await farm.addUser(`${u}@localhost`, `${u}-pw`);
    const { code, out, steps } = await runInterop("slixmpp_pep.py",
      [String(farm.ports.c2s), `${owner}@localhost/${owner}-pw/127.0.0.1`, `${contact}@localhost/${contact}-pw/127.0.0.2`]);
    for (const s of steps) t.diagnostic(s);
    assert.equal(code, 0, `slixmpp scenario failed:\n${out}`);
    assert.equal(steps.length, 6, out);
  });
});
