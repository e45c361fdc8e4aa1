/**
 * The group chat service against a real router and real Postgres storage
 * (a fresh schema), with the users' side played by a trusted component
 * named `localhost` that sends what an SM would send for its users.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import pg from "pg";
import { pino } from "pino";
import { Component } from "@jabberfarm/component";
import { Router } from "@jabberfarm/router";
import { openPostgres } from "@jabberfarm/xdb";
import { NS, parseElement, parseTrusted, type Element } from "@jabberfarm/xml";
import { startMuc, type MucProcess } from "./process.js";

const DATABASE_URL = process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const SERVICE = "conference.localhost";
const MUC_USER = "http://jabber.org/protocol/muc#user";

class Users {
  readonly got: Element[] = [];
  private waiters: Array<() => void> = [];
  constructor(readonly component: Component) {
    component.on("stanza", (el, raw) => {
      this.got.push(typeof raw === "string" ? el : parseTrusted(raw.toString("utf8"), NS.COMPONENT));
      for (const w of this.waiters.splice(0)) w();
    });
  }
  send(text: string): void {
    this.component.send(parseElement(text).toString());
  }
  async next(pred: (el: Element) => boolean, ms = 5000): Promise<Element> {
    const deadline = Date.now() + ms;
    for (;;) {
      const i = this.got.findIndex(pred);
      if (i >= 0) return this.got.splice(i, 1)[0]!;
      if (Date.now() > deadline) throw new Error(`no matching stanza within ${ms} ms; have: ${this.got.map((e) => e.toString()).join("\n")}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.max(1, deadline - Date.now()));
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }
  /** Everything that arrives for `to` within a moment after the last stanza matching `done`. */
  async drain(): Promise<void> {
    this.got.length = 0;
  }
}

const to = (jid: string) => (el: Element): boolean => el.attrs.to === jid;
const statuses = (el: Element): string[] => el.getChild("x", MUC_USER)?.getChildren("status").map((s) => s.attrs.code!) ?? [];

describe("muc: rooms through a real router and Postgres", () => {
  let router: Router;
  let storage: Awaited<ReturnType<typeof openPostgres>>;
  let muc: MucProcess;
  let users: Users;
  const schema = `muc_test_${randomBytes(5).toString("hex")}`;

  before(async () => {
    router = new Router({
      host: "127.0.0.1", port: 0, domains: ["localhost"],
      components: { [SERVICE]: { secret: "muc-secret-1", trusted: true }, localhost: { secret: "users-secret-1", trusted: true } },
    }, { logger: pino({ level: "silent" }) });
    const { port } = await router.start();
    storage = await openPostgres(DATABASE_URL, { schema });
    muc = await startMuc({ service: SERVICE, secret: "muc-secret-1", routers: [{ host: "127.0.0.1", port }], history: { default: 5, max: 10 } },
      { logger: pino({ level: "silent" }), storage });
    users = new Users(new Component({ name: "localhost", secret: "users-secret-1", routers: [{ host: "127.0.0.1", port }], settleMs: 0 }));
    await users.component.start();
  });

  after(async () => {
    await users.component.stop();
    await muc.stop();
    await storage.close();
    await router.stop();
    const c = new pg.Client({ connectionString: DATABASE_URL });
    await c.connect();
    await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await c.end();
  });

  async function join(room: string, nick: string, jid: string, extra = ""): Promise<Element> {
    users.send(`<presence from='${jid}' to='${room}/${nick}'><x xmlns='http://jabber.org/protocol/muc'>${extra}</x></presence>`);
    const self = await users.next((e) => e.name === "presence" && e.attrs.to === jid && e.attrs.from === `${room}/${nick}` && statuses(e).includes("110"));
    await users.next((e) => e.name === "message" && e.attrs.to === jid && e.getChild("subject") !== undefined);
    return self;
  }

  test("a room is created locked, configured, entered, and carries messages, history and subject", async () => {
    const room = `lounge@${SERVICE}`;
    const self = await join(room, "ann", "ann@localhost/a");
    assert.deepEqual(statuses(self).sort(), ["110", "170", "201"]);
    assert.equal(self.getChild("x", MUC_USER)?.getChild("item")?.attrs.affiliation, "owner");
    // Locked: nobody else gets in yet.
    users.send(`<presence from='bob@localhost/b' to='${room}/bob'><x xmlns='http://jabber.org/protocol/muc'/></presence>`);
    const locked = await users.next((e) => e.attrs.to === "bob@localhost/b" && e.attrs.type === "error");
    assert.ok(locked.getChild("error")?.getChild("item-not-found"));
    // The owner asks for the form and accepts it as it is (an instant room would submit an empty form).
    users.send(`<iq type='get' id='c1' from='ann@localhost/a' to='${room}'><query xmlns='http://jabber.org/protocol/muc#owner'/></iq>`);
    const form = await users.next((e) => e.attrs.id === "c1");
    assert.ok(form.toString().includes("muc#roomconfig_persistentroom"));
    users.send(`<iq type='set' id='c2' from='ann@localhost/a' to='${room}'><query xmlns='http://jabber.org/protocol/muc#owner'>
      <x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig</value></field>
      <field var='muc#roomconfig_persistentroom'><value>1</value></field><field var='muc#roomconfig_roomname'><value>The Lounge</value></field></x></query></iq>`);
    assert.equal((await users.next((e) => e.attrs.id === "c2")).attrs.type, "result");

    await join(room, "bob", "bob@localhost/b");
    const bobSeen = await users.next((e) => e.name === "presence" && to("ann@localhost/a")(e) && e.attrs.from === `${room}/bob`);
    // Semi-anonymous: the owner (a moderator) sees bob's real JID.
    assert.equal(bobSeen.getChild("x", MUC_USER)?.getChild("item")?.attrs.jid, "bob@localhost/b");

    users.send(`<message type='groupchat' id='m1' from='bob@localhost/b' to='${room}'><body>hello</body></message>`);
    const toAnn = await users.next((e) => e.name === "message" && to("ann@localhost/a")(e) && e.attrs.id === "m1");
    const toBob = await users.next((e) => e.name === "message" && to("bob@localhost/b")(e) && e.attrs.id === "m1");
    assert.equal(toAnn.attrs.from, `${room}/bob`);
    const sid = toAnn.getChild("stanza-id", "urn:xmpp:sid:0");
    assert.equal(sid?.attrs.by, room);
    assert.equal(toBob.getChild("stanza-id", "urn:xmpp:sid:0")?.attrs.id, sid?.attrs.id);

    users.send(`<message type='groupchat' id='s1' from='ann@localhost/a' to='${room}'><subject>Tea time</subject></message>`);
    await users.next((e) => to("bob@localhost/b")(e) && e.getChildText("subject") === "Tea time");

    // Carol enters and gets the history (with delay) and then the subject.
    users.send(`<presence from='carol@localhost/c' to='${room}/carol'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='5'/></x></presence>`);
    const hist = await users.next((e) => to("carol@localhost/c")(e) && e.name === "message" && e.getChildText("body") === "hello");
    assert.ok(hist.getChild("delay", "urn:xmpp:delay"));
    const subj = await users.next((e) => to("carol@localhost/c")(e) && e.getChild("subject") !== undefined && e.getChild("body") === undefined);
    assert.equal(subj.getChildText("subject"), "Tea time");
    // Nobody but occupants sends to the room.
    users.send(`<message type='groupchat' id='x1' from='eve@localhost/e' to='${room}'><body>spam</body></message>`);
    const refused = await users.next((e) => e.attrs.id === "x1" && to("eve@localhost/e")(e));
    assert.ok(refused.getChild("error")?.getChild("not-acceptable"));
  });

  test("private messages, kick, ban, self-ping and the archive", async () => {
    const room = `lounge@${SERVICE}`;
    users.send(`<message type='chat' id='p1' from='bob@localhost/b' to='${room}/carol'><body>psst</body></message>`);
    const pm = await users.next((e) => e.attrs.id === "p1" && to("carol@localhost/c")(e));
    assert.equal(pm.attrs.from, `${room}/bob`);
    assert.ok(pm.getChild("x", MUC_USER));

    users.send(`<iq type='get' id='ping1' from='carol@localhost/c' to='${room}/carol'><ping xmlns='urn:xmpp:ping'/></iq>`);
    assert.equal((await users.next((e) => e.attrs.id === "ping1")).attrs.type, "result");
    users.send(`<iq type='get' id='ping2' from='eve@localhost/e' to='${room}/carol'><ping xmlns='urn:xmpp:ping'/></iq>`);
    assert.ok((await users.next((e) => e.attrs.id === "ping2")).getChild("error")?.getChild("not-acceptable"), "a non-occupant's self-ping fails");

    // The owner kicks carol: she and the others get unavailable with 307.
    users.send(`<iq type='set' id='k1' from='ann@localhost/a' to='${room}'><query xmlns='http://jabber.org/protocol/muc#admin'><item nick='carol' role='none'><reason>enough</reason></item></query></iq>`);
    const kicked = await users.next((e) => e.name === "presence" && to("carol@localhost/c")(e) && e.attrs.type === "unavailable");
    assert.deepEqual(statuses(kicked).sort(), ["110", "307"]);
    await users.next((e) => e.name === "presence" && to("bob@localhost/b")(e) && e.attrs.type === "unavailable" && statuses(e).includes("307"));
    assert.equal((await users.next((e) => e.attrs.id === "k1")).attrs.type, "result");
    // A participant may not kick.
    users.send(`<iq type='set' id='k2' from='bob@localhost/b' to='${room}'><query xmlns='http://jabber.org/protocol/muc#admin'><item nick='ann' role='none'/></query></iq>`);
    assert.ok((await users.next((e) => e.attrs.id === "k2")).getChild("error")?.getChild("not-allowed"));

    // Ban bob: out with 301, and he cannot come back.
    users.send(`<iq type='set' id='b1' from='ann@localhost/a' to='${room}'><query xmlns='http://jabber.org/protocol/muc#admin'><item jid='bob@localhost' affiliation='outcast'/></query></iq>`);
    const banned = await users.next((e) => e.name === "presence" && to("bob@localhost/b")(e) && e.attrs.type === "unavailable");
    assert.ok(statuses(banned).includes("301"));
    await users.next((e) => e.attrs.id === "b1");
    users.send(`<presence from='bob@localhost/b2' to='${room}/bobby'><x xmlns='http://jabber.org/protocol/muc'/></presence>`);
    assert.ok((await users.next((e) => to("bob@localhost/b2")(e) && e.attrs.type === "error")).getChild("error")?.getChild("forbidden"));

    // MAM on the room: the message is there, with the same id as its stanza-id.
    users.send(`<iq type='set' id='q1' from='ann@localhost/a' to='${room}'><query xmlns='urn:xmpp:mam:2' queryid='qq'/></iq>`);
    const result = await users.next((e) => e.name === "message" && e.getChild("result", "urn:xmpp:mam:2")?.attrs.queryid === "qq");
    const fwd = result.getChild("result", "urn:xmpp:mam:2")!.getChild("forwarded", "urn:xmpp:forward:0")!;
    assert.equal(fwd.getChild("message")?.getChildText("body"), "hello");
    const fin = await users.next((e) => e.attrs.id === "q1");
    assert.equal(fin.getChild("fin", "urn:xmpp:mam:2")?.attrs.complete, "true");

    // The room is public: it is listed in the service's disco#items, and its disco#info says what it is.
    users.send(`<iq type='get' id='d1' from='eve@localhost/e' to='${SERVICE}'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>`);
    const items = await users.next((e) => e.attrs.id === "d1");
    assert.ok(items.toString().includes(`jid='${room}'`) && items.toString().includes("The Lounge"));
    users.send(`<iq type='get' id='d2' from='eve@localhost/e' to='${room}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`);
    const info = (await users.next((e) => e.attrs.id === "d2")).toString();
    assert.ok(info.includes("muc_persistent") && info.includes("urn:xmpp:mam:2"));
  });

  test("a room survives its process: config, affiliations and history come back from storage", async () => {
    const room = `lounge@${SERVICE}`;
    // Drop it from memory as if another process had owned it, then use it again.
    muc.service.rooms.delete(room);
    users.send(`<presence from='bob@localhost/b3' to='${room}/bob'><x xmlns='http://jabber.org/protocol/muc'/></presence>`);
    assert.ok((await users.next((e) => to("bob@localhost/b3")(e) && e.attrs.type === "error")).getChild("error")?.getChild("forbidden"), "still banned");
    users.send(`<iq type='get' id='d3' from='eve@localhost/e' to='${room}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`);
    assert.ok((await users.next((e) => e.attrs.id === "d3")).toString().includes("The Lounge"));
    // Destroy: occupants leave with <destroy/>, the room is gone from storage.
    users.send(`<iq type='set' id='z1' from='ann@localhost/a' to='${room}'><query xmlns='http://jabber.org/protocol/muc#owner'><destroy><reason>closing</reason></destroy></query></iq>`);
    await users.next((e) => e.attrs.id === "z1" && e.attrs.type === "result");
    assert.equal(await storage.accountExists(room), false);
  });
});
