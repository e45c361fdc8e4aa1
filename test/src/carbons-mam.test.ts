/**
 * Carbons (XEP-0280) and the message archive (XEP-0313) end to end, in one
 * farm started as an admin would (`jabberfarm up --sm 2 --c2s 2` on
 * Postgres and a private Redis): real clients (@xmpp/client, then Debian's
 * slixmpp with its xep_0280 and xep_0313 plugins) with a user's two
 * resources on the two c2s and their contact owned by the other SM.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import type { Element } from "@jabberfarm/xml";
import { Farm, freshDatabase, waitUntil } from "./farm.js";
import { LibraryClient, xml } from "./clients.js";
import { nameOn } from "./fleet.js";
import { PrivateRedis } from "./redis-server.js";
import { PYTHON, runInterop } from "./interop.js";

const CARBONS = "urn:xmpp:carbons:2";
const MAM = "urn:xmpp:mam:2";
const RSM = "http://jabber.org/protocol/rsm";
const SID = "urn:xmpp:sid:0";

const chat = (to: string, body: string, id: string) => xml("message", { type: "chat", to, id }, xml("body", {}, body));
const isBody = (body: string) => (e: Element): boolean => e.name === "message" && e.getChildText("body") === body;
const isCarbon = (dir: "sent" | "received", body: string) => (e: Element): boolean =>
  e.name === "message" && e.getChild(dir, CARBONS)?.getChild("forwarded", "urn:xmpp:forward:0")?.getChild("message", "jabber:client")?.getChildText("body") === body;

interface Archived {
  id: string;
  from: string;
  body: string;
}

/** Pages through the client's whole archive, `max` per page, forwards (RSM after) or backwards (RSM before); in time order. */
async function pageAll(c: LibraryClient, max: number, backwards = false, form: Record<string, string> = {}): Promise<{ items: Archived[]; pages: number; count: string | undefined }> {
  const items: Archived[] = [];
  let pos: string | undefined;
  let pages = 0;
  let count: string | undefined;
  const fields = Object.entries(form).map(([k, v]) => xml("field", { var: k }, xml("value", {}, v)));
  for (;;) {
    const queryid = `q${Math.random().toString(36).slice(2)}`;
    const position = backwards ? [xml("before", {}, pos ?? "")] : pos === undefined ? [] : [xml("after", {}, pos)];
    const form = fields.length === 0 ? [] : [xml("x", { xmlns: "jabber:x:data", type: "submit" }, xml("field", { var: "FORM_TYPE", type: "hidden" }, xml("value", {}, MAM)), ...fields)];
    const fin = await c.iq(xml("iq", { type: "set" }, xml("query", { xmlns: MAM, queryid },
      ...form, xml("set", { xmlns: RSM }, xml("max", {}, String(max)), ...position))));
    pages++;
    // The results came before the iq's answer, on the same stream.
    const page: Archived[] = [];
    for (let i; (i = c.received.findIndex((e) => e.getChild("result", MAM)?.attrs.queryid === queryid)) >= 0;) {
      const r = c.received.splice(i, 1)[0]!.getChild("result", MAM)!;
      const m = r.getChild("forwarded", "urn:xmpp:forward:0")!.getChild("message", "jabber:client")!;
      page.push({ id: r.attrs.id!, from: m.attrs.from ?? "", body: m.getChildText("body") ?? "" });
    }
    items.splice(backwards ? 0 : items.length, 0, ...page);
    const set = fin.getChild("fin", MAM)?.getChild("set", RSM);
    count = set?.getChildText("count") ?? undefined;
    if (fin.getChild("fin", MAM)?.attrs.complete === "true" || page.length === 0) return { items, pages, count };
    pos = backwards ? set?.getChildText("first") ?? undefined : set?.getChildText("last") ?? undefined;
  }
}

describe("carbons and the message archive across two c2s and two SMs", () => {
  let farm: Farm;
  let redis: PrivateRedis;
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  const clients: LibraryClient[] = [];
  // ann owned by sm-1, bob by sm-2: every message between them crosses SMs.
  const ann = nameOn("ann", "sm-1");
  const bob = nameOn("bob", "sm-2");

  before(async () => {
    [redis, db] = await Promise.all([PrivateRedis.start(), freshDatabase()]);
    farm = await Farm.start({ databaseUrl: db.url, upArgs: ["--sm", "2", "--c2s", "2", "--redis-url", redis.url] });
    for (const u of [ann, bob]) await farm.addUser(`${u}@localhost`, `${u}-pw`);
  });
  after(async () => {
    for (const c of clients) await c.stop();
    assert.equal(await farm?.stop(), 0, "the farm stops cleanly");
    await redis?.kill();
    await db?.drop();
  });

  async function online(user: string, resource: string, host: string, carbons: boolean): Promise<LibraryClient> {
    const c = await LibraryClient.login(farm.ports.c2s, user, `${user}-pw`, resource, host);
    clients.push(c);
    if (carbons) await c.iq(xml("iq", { type: "set" }, xml("enable", { xmlns: CARBONS })));
    await c.send(xml("presence"));
    // Available once the SM says so (RFC 6121 §4.2.2: its own presence comes back): a message to
    // the bare JID sent before that would rightly go to offline storage, not to this client.
    await c.next((e) => e.name === "presence" && e.attrs.from === c.jid && e.attrs.type === undefined);
    return c;
  }

  test("a user's two resources on two c2s see both sides; a late resource pages through the archive once, offline message included", { timeout: 120_000 }, async () => {
    const phone = await online(ann, "phone", "127.0.0.1", true);
    const laptop = await online(ann, "laptop", "127.0.0.2", true);
    const pc = await online(bob, "pc", "127.0.0.1", false);
    const annJid = `${ann}@localhost`;
    const bobJid = `${bob}@localhost`;

    // Received: to the phone; the laptop gets the carbon. The phone's copy carries ann's archive id.
    await pc.send(chat(`${annJid}/phone`, "b1 to the phone", "b1"));
    const got = await phone.next(isBody("b1 to the phone"));
    assert.equal(got.getChild("stanza-id", SID)?.attrs.by, annJid);
    await laptop.next(isCarbon("received", "b1 to the phone"));
    // Sent: from the laptop; the phone gets the carbon.
    await laptop.send(chat(bobJid, "a1 from the laptop", "a1"));
    await pc.next(isBody("a1 from the laptop"));
    await phone.next(isCarbon("sent", "a1 from the laptop"));
    await phone.send(chat(bobJid, "a2 from the phone", "a2"));
    await pc.next(isBody("a2 from the phone"));
    await laptop.next(isCarbon("sent", "a2 from the phone"));
    // To ann's bare JID both resources (same priority) get the message itself, and no carbon.
    await pc.send(chat(annJid, "b2 to both", "b2"));
    await phone.next(isBody("b2 to both"));
    await laptop.next(isBody("b2 to both"));
    assert.ok(!phone.received.some(isCarbon("received", "b2 to both")) && !laptop.received.some(isCarbon("received", "b2 to both")));

    // bob goes away; ann writes to him: offline storage, and his archive.
    await pc.stop();
    clients.splice(clients.indexOf(pc), 1);
    // Whether the sm still knows the session or not, the message ends in offline storage (the c2s bounces it back).
    await phone.send(chat(bobJid, "a3 while bob is away", "a3"));
    await laptop.next(isCarbon("sent", "a3 while bob is away"));

    // bob's tablet on the other c2s: the offline message arrives, with its archive id; the archive pages whole.
    const tablet = await online(bob, "tablet", "127.0.0.2", false);
    const offline = await tablet.next(isBody("a3 while bob is away"), 15_000);
    const offlineId = offline.getChild("stanza-id", SID)?.attrs.id;
    assert.ok(offlineId, "the offline message carries its archive id");
    const expected = ["b1 to the phone", "a1 from the laptop", "a2 from the phone", "b2 to both", "a3 while bob is away"];
    const forwards = await pageAll(tablet, 2);
    assert.deepEqual(forwards.items.map((i) => i.body), expected, "every message once, in order, both directions");
    assert.equal(forwards.pages, 3);
    assert.equal(forwards.count, "5");
    assert.equal(new Set(forwards.items.map((i) => i.id)).size, 5);
    assert.equal(forwards.items[4]!.id, offlineId);
    const backwards = await pageAll(tablet, 2, true);
    assert.deepEqual(backwards.items.map((i) => i.id), forwards.items.map((i) => i.id));
    // With a contact and with ids.
    const withAnn = await pageAll(tablet, 10, false, { with: annJid });
    assert.deepEqual(withAnn.items.map((i) => i.body), expected);
    const byIds = await pageAll(tablet, 10, false, { ids: forwards.items[1]!.id });
    assert.deepEqual(byIds.items.map((i) => i.body), ["a1 from the laptop"]);
    // ann's archive: the same conversation, her own ids (the one her phone was told among them).
    const annArchive = await pageAll(laptop, 3);
    assert.deepEqual(annArchive.items.map((i) => i.body), expected);
    assert.equal(annArchive.items[0]!.id, got.getChild("stanza-id", SID)?.attrs.id);
  });

  test("kill -9 of the recipient's SM during a burst: both archives hold each message exactly once", { timeout: 180_000 }, async (t) => {
    const sender = nameOn("kan", "sm-1");
    const recipient = nameOn("kbo", "sm-2");
    for (const u of [sender, recipient]) await farm.addUser(`${u}@localhost`, `${u}-pw`);
    const from = await online(sender, "burst", "127.0.0.1", false);
    const to = await online(recipient, "burst", "127.0.0.2", false);
    const N = 150;
    const got = new Set<string>();
    let deliveries = 0;
    const seen = (): void => {
      for (const e of to.received.splice(0)) {
        if (e.name !== "message" || !e.getChildText("body")?.startsWith("k")) continue;
        got.add(e.getChildText("body")!);
        deliveries++;
      }
    };
    const pid = farm.childPidById("sm-2")!;
    const logsFrom = farm.logs.length;
    // One burst, not awaited message by message: when the SM dies, relays to it and its archive batches are in flight.
    const sends: Array<Promise<void>> = [];
    for (let i = 0; i < N; i++) {
      if (i === N / 3) {
        // The first third on the wire, the rest right behind it.
        await Promise.all(sends);
        process.kill(pid, "SIGKILL");
      }
      sends.push(from.send(chat(`${recipient}@localhost`, `k${i}`, `k${i}`)));
    }
    await Promise.all(sends);
    // Delivered at least once (the recipient's session moves to sm-1 through Redis, and back once sm-2 is restarted).
    await waitUntil("every message reached the recipient", 60_000, () => (seen(), got.size === N)).catch((err: Error) => {
      // Which ones, and what the farm said meanwhile: a relay bounced, a session not adopted, a route given up.
      const missing = Array.from({ length: N }, (_, i) => `k${i}`).filter((b) => !got.has(b));
      const said = farm.logs.slice(logsFrom).filter((l) => Number(l.level) >= 40 || /took sessions|changed|adopt|lost/.test(String(l.msg)))
        .map((l) => JSON.stringify(l)).slice(0, 40);
      assert.fail(`${err.message}: missing ${missing.join(" ")}; ${to.received.length} other stanzas held; the farm logged:\n${said.join("\n")}`);
    });
    t.diagnostic(`${deliveries} deliveries of ${N} messages (more: redelivered after the kill)`);
    await farm.restarted("sm-2", pid);
    // The archives, once the restarted SM serves its users again: every message, each once.
    const bodies = (items: Archived[]) => items.map((i) => i.body).filter((b) => /^k\d+$/.test(b));
    const expected = Array.from({ length: N }, (_, i) => `k${i}`).sort();
    for (const c of [to, from]) {
      // What the last query said, for the failure message: a slow archive and a lost item read differently.
      let last = "no answer yet";
      const items = await waitUntil(`${c.jid}'s archive holds all ${N}`, 60_000, async () => {
        const r = await pageAll(c, 100).catch((err: Error) => ((last = `query failed: ${err.message}`), undefined));
        if (r === undefined) return undefined;
        const have = new Set(bodies(r.items));
        last = `${have.size} distinct of ${N}; missing ${expected.filter((b) => !have.has(b)).join(" ")}`;
        return have.size === N ? r.items : undefined;
      }, 500).catch((err: Error) => assert.fail(`${err.message} (${last})`));
      t.diagnostic(`${c.jid}: ${bodies(items).length} archived for ${N} sent`);
      assert.deepEqual(bodies(items).sort(), expected, "each message exactly once");
    }
  });

  test("slixmpp: carbons and archive paging with its own plugins", { timeout: 180_000 }, async (t) => {
    assert.ok(existsSync(PYTHON), "Debian's python3 is installed (.ci/run installs python3-slixmpp)");
    const user = nameOn("sli", "sm-2");
    const contact = nameOn("slc", "sm-1");
    for (const u of [user, contact]) await farm.addUser(`${u}@localhost`, `${u}-pw`);
    const { code, out, steps } = await runInterop("slixmpp_carbons_mam.py",
      [String(farm.ports.c2s), `${user}@localhost/${user}-pw/127.0.0.1/127.0.0.2`, `${contact}@localhost/${contact}-pw/127.0.0.2`]);
    for (const s of steps) t.diagnostic(s);
    assert.equal(code, 0, `slixmpp scenario failed:\n${out}`);
    assert.equal(steps.length, 6, out);
  });
});
