/**
 * Rooms moving between muc processes (rendezvous hashing of the room JID):
 * a second process joining takes over the rooms the rule gives it, with
 * their occupants from Redis, and a process that crashes leaves its rooms
 * to the other; messages sent throughout all reach every occupant.
 * Real router, real Postgres (fresh schema), real Redis.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import pg from "pg";
import { pino } from "pino";
import { Component, rendezvousPick, rendezvousSeed } from "@jabberfarm/component";
import { Router } from "@jabberfarm/router";
import { openPostgres } from "@jabberfarm/xdb";
import { NS, parseElement, parseTrusted, type Element } from "@jabberfarm/xml";
import { startMuc, type MucProcess } from "./process.js";

const DATABASE_URL = process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";
const SERVICE = "conference.localhost";

describe("muc: rooms move between processes with their occupants", () => {
  let router: Router;
  let port: number;
  let storage: Awaited<ReturnType<typeof openPostgres>>;
  const mucs: MucProcess[] = [];
  let users: Component;
  const got: Element[] = [];
  const schema = `muc_takeover_${randomBytes(5).toString("hex")}`;
  const tag = randomBytes(4).toString("hex");

  const start = async (instance: string): Promise<MucProcess> => {
    const m = await startMuc({
      service: SERVICE, instance, secret: "muc-secret-1", routers: [{ host: "127.0.0.1", port }], redisUrl: REDIS_URL,
    }, { logger: pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" }).child({ instance }), storage });
    mucs.push(m);
    return m;
  };

  before(async () => {
    router = new Router({
      host: "127.0.0.1", port: 0, domains: ["localhost"],
      components: { [SERVICE]: { secret: "muc-secret-1", trusted: true }, localhost: { secret: "users-secret-1", trusted: true } },
    }, { logger: pino({ level: "silent" }) });
    port = (await router.start()).port;
    storage = await openPostgres(DATABASE_URL, { schema });
    users = new Component({ name: "localhost", secret: "users-secret-1", routers: [{ host: "127.0.0.1", port }], settleMs: 0 });
    users.on("stanza", (el, raw) => got.push(typeof raw === "string" ? el : parseTrusted(raw.toString("utf8"), NS.COMPONENT)));
    await users.start();
  });

  after(async () => {
    await users.stop();
    for (const m of mucs) await m.stop();
    await storage.close();
    await router.stop();
    const c = new pg.Client({ connectionString: DATABASE_URL });
    await c.connect();
    await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await c.end();
  });

  const until = async (what: string, check: () => boolean, ms = 10_000): Promise<void> => {
    const end = Date.now() + ms;
    while (!check()) {
      if (Date.now() > end) throw new Error(`not within ${ms} ms: ${what}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };

  test("a joining process takes its rooms over, a crashed one leaves them; no accepted message is lost", async () => {
    const first = await start("muc-a");
    const owner = (jid: string): string => rendezvousPick(["muc-a", "muc-b"].map((id) => ({ rendezvousId: id, rendezvousSeed: rendezvousSeed(id) })), jid)!.rendezvousId;
    let room = "";
    for (let k = 0; room === ""; k++) if (owner(`r${tag}${k}@${SERVICE}`) === "muc-b") room = `r${tag}${k}@${SERVICE}`;
    const people = ["ann", "bob", "cat"];
    for (const p of people) {
      users.send(parseElement(`<presence from='${p}@localhost/x' to='${room}/${p}'><x xmlns='http://jabber.org/protocol/muc'/></presence>`).toString());
      await until(`${p} in`, () => got.some((e) => e.attrs.to === `${p}@localhost/x` && e.getChild("subject") !== undefined));
      if (p === "ann") users.send(parseElement(`<iq type='set' id='cfg' from='ann@localhost/x' to='${room}'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'/></query></iq>`).toString());
    }
    let n = 0;
    const say = (): void => {
      for (const p of people) users.send(parseElement(`<message type='groupchat' id='${p}-${n}' from='${p}@localhost/x' to='${room}'><body>${n}</body></message>`).toString());
      n++;
    };
    const delivered = (id: string, to: string): boolean => got.some((e) => e.name === "message" && e.attrs.id === id && e.attrs.to === to);
    let marks = 0;
    /** Each sender's next message, once reflected, was handled after all it sent before (the room's order). */
    const settle = async (): Promise<void> => {
      const m = marks++;
      for (const p of people) users.send(parseElement(`<message type='groupchat' id='${p}-mark${m}' from='${p}@localhost/x' to='${room}'><body>mark</body></message>`).toString());
      await until("the marks reflected", () => people.every((p) => delivered(`${p}-mark${m}`, `${p}@localhost/x`)), 20_000);
    };
    const accepted = (from: number, to: number): string[] => {
      const out: string[] = [];
      for (let i = from; i < to; i++) for (const p of people) if (delivered(`${p}-${i}`, `${p}@localhost/x`)) out.push(`${p}-${i}`);
      return out;
    };
    const everywhere = (ids: string[]): Promise<void> =>
      until("every accepted message at every occupant", () => ids.every((id) => people.every((p) => delivered(id, `${p}@localhost/x`))));

    // 1. muc-b joins while messages flow; the room is its by the rule and moves with its occupants. Nothing is lost.
    for (let i = 0; i < 5; i++) say();
    const second = await start("muc-b");
    for (let i = 0; i < 20; i++) {
      say();
      await new Promise((r) => setTimeout(r, 20));
    }
    await settle();
    assert.ok(second.service.rooms.has(room), "muc-b holds the room");
    assert.equal(second.service.rooms.get(room)?.occupants.size, 3, "with its three occupants");
    const moved = accepted(0, n);
    assert.equal(moved.length, n * 3, "a move between two live processes loses nothing");
    await everywhere(moved);

    // 2. muc-b crashes mid-flow: back to muc-a; every message accepted (reflected) reaches everyone.
    const before = n;
    for (let i = 0; i < 20; i++) {
      if (i === 5) second.crash();
      say();
      await new Promise((r) => setTimeout(r, 20));
    }
    await settle();
    assert.ok(first.service.rooms.has(room), "muc-a holds the room again");
    const kept = accepted(before, n);
    await everywhere(kept);
    assert.ok(kept.length > 0 && delivered(`ann-${n - 1}`, "bob@localhost/x"), "the room carried on after the crash");
  });
});
