/**
 * Group chat and file sharing end to end, in one farm started as an admin
 * would (`jabberfarm up --sm 2 --c2s 2 --muc 2` on Postgres and a private
 * Redis, with the upload service): slixmpp's xep_0045 and xep_0363 plugins
 * (Debian's python3-slixmpp, test/interop/slixmpp_muc_upload.py) do the
 * XEP work with three users spread over both c2s and both SMs; then
 * @xmpp/client users chat in a room while the muc process that holds it
 * is killed with SIGKILL, and every message the room accepted must reach
 * every occupant.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { rendezvousPick, rendezvousSeed } from "@jabberfarm/component";
import type { Element } from "@jabberfarm/xml";
import { Farm, freshDatabase, waitUntil } from "./farm.js";
import { LibraryClient, xml } from "./clients.js";
import { PrivateRedis } from "./redis-server.js";
import { PYTHON, runInterop } from "./interop.js";

const MUC_USER = "http://jabber.org/protocol/muc#user";
const SERVICE = "conference.localhost";

const owner = (key: string, ids: string[]): string =>
  rendezvousPick(ids.map((id) => ({ rendezvousId: id, rendezvousSeed: rendezvousSeed(id) })), key)!.rendezvousId;

/** `n` user names, the first half owned by sm-1 and the rest by sm-2. */
function spreadUsers(prefix: string, n: number): string[] {
  const out: string[] = [];
  const want = (i: number): string => (i < Math.ceil(n / 2) ? "sm-1" : "sm-2");
  for (let k = 0; out.length < n && k < 10_000; k++) {
    const name = `${prefix}${k}`;
    if (owner(`${name}@localhost`, ["sm-1", "sm-2"]) === want(out.length)) out.push(name);
  }
  return out;
}

describe("group chat and upload with real clients, across two c2s, two SMs and two muc processes", () => {
  let farm: Farm;
  let redis: PrivateRedis;
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  const saved: Record<string, string | undefined> = {};
  const limits: Record<string, string> = {
    // Small limits so the quota is reached with small files.
    JABBERFARM__UPLOAD__LIMITS__MAX_FILE_BYTES: "2000",
    JABBERFARM__UPLOAD__LIMITS__USER_QUOTA_BYTES: "2500",
  };

  before(async () => {
    [redis, db] = await Promise.all([PrivateRedis.start(), freshDatabase()]);
    for (const [k, v] of Object.entries(limits)) {
      saved[k] = process.env[k];
      process.env[k] = v;
    }
    farm = await Farm.start({
      services: true, databaseUrl: db.url, upTimeoutMs: 120_000,
      upArgs: ["--sm", "2", "--c2s", "2", "--muc", "2", "--redis-url", redis.url],
    });
  });

  after(async () => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    assert.equal(await farm?.stop(), 0, "the farm stops cleanly");
    await redis?.kill();
    await db?.drop();
  });

  test("slixmpp: a room with three users (history, subject, private message, config change, kick, ban) and an upload", { timeout: 180_000 }, async (t) => {
    assert.ok(existsSync(PYTHON), "Debian's python3 is installed (.ci/run installs python3-slixmpp)");
    const [ann, carol, bob] = spreadUsers("u", 3) as [string, string, string];
    for (const u of [ann, bob, carol]) await farm.addUser(`${u}@localhost`, `${u}-pw`);
    const cert = join(farm.dataDir, "upload-tls", "localhost.crt");
    await waitUntil("the upload certificate", 30_000, () => existsSync(cert));
    const room = `interop${Date.now()}@${SERVICE}`;
    // ann and carol on sm-1, bob on sm-2; ann and carol on the first c2s, bob on the second.
    const { code, out, steps } = await runInterop("slixmpp_muc_upload.py", [String(farm.ports.c2s), room,
      `${ann}@localhost/${ann}-pw/127.0.0.1`, `${bob}@localhost/${bob}-pw/127.0.0.2`, `${carol}@localhost/${carol}-pw/127.0.0.1`],
    { ...process.env, SSL_CERT_FILE: cert });
    for (const s of steps) t.diagnostic(s);
    const mucLog = farm.logs.filter((l) => l.process === "muc" && Number(l.level) >= 30 && !/linked|serving|connected/.test(String(l.msg)))
      .map((l) => JSON.stringify(l)).slice(-30).join("\n");
    assert.equal(code, 0, `slixmpp scenario failed:\n${out.split("\n").filter((l) => !l.startsWith("None")).join("\n")}\nmuc log:\n${mucLog}`);
    assert.equal(steps.length, 12, out);
  });

  test("kill -9 of the muc process holding a room: occupants keep chatting, no accepted message is lost", { timeout: 180_000 }, async (t) => {
    const names = spreadUsers("k", 3);
    for (const u of names) await farm.addUser(`${u}@localhost`, "pw");
    const hosts = ["127.0.0.1", "127.0.0.2", "127.0.0.1"];
    const clients = await Promise.all(names.map((u, i) => LibraryClient.login(farm.ports.c2s, u, "pw", "r", hosts[i])));
    try {
      let room = "";
      for (let k = 0; room === ""; k++) if (owner(`relay${k}@${SERVICE}`, ["muc-1", "muc-2"]) === "muc-1") room = `relay${k}@${SERVICE}`;
      // The first occupant creates the room and takes the default configuration (an instant room).
      const [first] = clients;
      await first!.send(xml("presence", { to: `${room}/${names[0]}` }, xml("x", { xmlns: "http://jabber.org/protocol/muc" })));
      await first!.next((e) => e.name === "presence" && e.attrs.from === `${room}/${names[0]}`, 20_000);
      await first!.iq(xml("iq", { type: "set", to: room }, xml("query", { xmlns: "http://jabber.org/protocol/muc#owner" }, xml("x", { xmlns: "jabber:x:data", type: "submit" }))));
      for (const [i, c] of clients.entries()) {
        if (i > 0) await c.send(xml("presence", { to: `${room}/${names[i]}` }, xml("x", { xmlns: "http://jabber.org/protocol/muc" })));
        await c.next((e) => e.name === "message" && e.attrs.from?.startsWith(room) === true && e.getChild("subject") !== undefined, 20_000);
      }

      const isRoomMessage = (e: Element): boolean => e.name === "message" && e.attrs.type === "groupchat" && e.getChild("body") !== undefined;
      const sentAt = new Map<string, number>();
      let sending = true;
      const senders = clients.map(async (c, i) => {
        for (let n = 0; sending && n < 400; n++) {
          const id = `${names[i]}-${n}`;
          sentAt.set(id, Date.now());
          await c.send(xml("message", { to: room, type: "groupchat", id }, xml("body", {}, id))).catch(() => undefined);
          await new Promise((r) => setTimeout(r, 40));
        }
      });
      const pid = farm.childPidById("muc-1")!;
      await waitUntil("messages flowing before the kill", 30_000, () => clients.every((c) => c.received.filter(isRoomMessage).length >= 30));
      const killedAt = Date.now();
      process.kill(pid, "SIGKILL");
      t.diagnostic(`killed muc-1 (pid ${pid}), which held ${room}`);
      await farm.restarted("muc-1", pid, 30_000);
      // Keep chatting through the takeover by muc-2 and the move back to the restarted muc-1.
      await waitUntil("messages after the restart", 60_000, () =>
        clients.every((c, i) => c.received.some((e) => isRoomMessage(e) && e.attrs.from === `${room}/${names[i]}` && (sentAt.get(e.attrs.id ?? "") ?? 0) > killedAt + 3000)));
      sending = false;
      await Promise.all(senders);
      // Each sender's last message, once reflected, was handled after all it sent before (the room's order).
      for (const [i, c] of clients.entries()) await c.send(xml("message", { to: room, type: "groupchat", id: `${names[i]}-end` }, xml("body", {}, "end")));
      await waitUntil("the last messages reflected", 60_000, () =>
        clients.every((c, i) => c.received.some((e) => isRoomMessage(e) && e.attrs.id === `${names[i]}-end` && e.attrs.from === `${room}/${names[i]}`)));

      // Accepted: reflected to its sender. Each must reach every other occupant.
      const ids = (c: LibraryClient): Set<string> => new Set(c.received.filter(isRoomMessage).map((e) => e.attrs.id ?? ""));
      const accepted = new Set<string>();
      clients.forEach((c, i) => {
        for (const e of c.received) if (isRoomMessage(e) && e.attrs.from === `${room}/${names[i]}`) accepted.add(e.attrs.id!);
      });
      const missing = await waitUntil("every accepted message delivered", 30_000, () => {
        const m = clients.map((c) => [...accepted].filter((id) => !ids(c).has(id)));
        return m.every((x) => x.length === 0) ? m : undefined;
      }).catch(() => clients.map((c) => [...accepted].filter((id) => !ids(c).has(id))));
      const sent = sentAt.size;
      const stanzaIds = new Set(clients[1]!.received.filter(isRoomMessage).map((e) => e.getChild("stanza-id", "urn:xmpp:sid:0")?.attrs.id));
      const copies = clients[1]!.received.filter(isRoomMessage).length;
      const after = [...accepted].filter((id) => sentAt.get(id)! > killedAt).map((id) => sentAt.get(id)!);
      const firstAfter = after.length > 0 ? Math.min(...after) - killedAt : -1;
      const notAccepted = [...sentAt.keys()].filter((id) => !accepted.has(id));
      const errors = new Map<string, number>();
      for (const c of clients) for (const e of c.received) if (e.name === "message" && e.attrs.type === "error") {
        const cond = e.getChild("error")?.children.find((x) => typeof x !== "string" && x.name !== "text");
        const key = typeof cond === "string" || cond === undefined ? "?" : `${cond.name} ${e.getChild("error")?.getChildText("text") ?? ""}`;
        errors.set(key, (errors.get(key) ?? 0) + 1);
      }
      t.diagnostic(`errors: ${JSON.stringify([...errors])}`);
      if (process.env.MUC_TEST_LOG) (await import("node:fs")).writeFileSync(process.env.MUC_TEST_LOG, farm.logs.map((l) => JSON.stringify(l)).join("\n"));
      t.diagnostic(`sent ${sent}, accepted ${accepted.size}, not accepted ${notAccepted.length} (${notAccepted.join(" ")}), ` +
        `first accepted message sent ${firstAfter} ms after the kill, copies at one occupant ${copies} for ${stanzaIds.size} stanza ids`);
      assert.deepEqual(missing, [[], [], []], "every accepted message reached every occupant");
      assert.ok(after.length > 0, "the room carried on after the kill");
      // No occupant was dropped: all three are still in the room without having rejoined.
      for (const c of clients) assert.ok(!c.received.some((e) => e.name === "presence" && e.attrs.type === "unavailable" && e.getChild("x", MUC_USER) !== undefined && e.attrs.from === `${room}/${names[clients.indexOf(c)]}`));
    } finally {
      for (const c of clients) await c.stop();
    }
  });
});
