/**
 * The operator's commands on a farm of several processes (`jabberfarm up
 * --routers 2 --sm 2 --c2s 2`), run as an operator would, as child
 * processes: `status` sees every process and its load, `sessions` finds a
 * user's session on its c2s and SM, `kick` ends it for the client and its
 * contact, and fails for a session that is not there; a process that does
 * not answer is reported, not waited for.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { rendezvousPick, rendezvousSeed } from "@jabberfarm/component";
import type { Element } from "@jabberfarm/xml";
import { Farm } from "./farm.js";
import { LibraryClient, xml } from "./clients.js";

const SMS = ["sm-1", "sm-2"].map((id) => ({ rendezvousId: id, rendezvousSeed: rendezvousSeed(id) }));
const ownerOf = (bare: string): string => rendezvousPick(SMS, bare)!.rendezvousId;

/** A name whose owner is the other SM than alice's, so both SMs hold a session. */
function contactOnTheOtherSm(): string {
  for (let i = 0; ; i++) if (ownerOf(`bob${i}@localhost`) !== ownerOf("alice@localhost")) return `bob${i}`;
}

interface StatusJson {
  routers: Array<{ router: string; status?: { instance: string; connections: Array<{ name: string; instance: string }> } }>;
  processes: Array<{ address: string; kind: string; routers: string[]; status?: Record<string, unknown> }>;
}

describe("jabberfarm status, sessions and kick on --routers 2 --sm 2 --c2s 2", () => {
  let farm: Farm;
  const bob = contactOnTheOtherSm();
  let alice: LibraryClient;
  let contact: LibraryClient;
  before(async () => {
    farm = await Farm.start({ upArgs: ["--routers", "2", "--sm", "2", "--c2s", "2"] });
    await Promise.all([farm.addUser("alice@localhost", "pw-a"), farm.addUser(`${bob}@localhost`, "pw-b")]);
    // alice on the second c2s, her contact on the first.
    [alice, contact] = await Promise.all([
      LibraryClient.login(farm.ports.c2s, "alice", "pw-a", "phone", "127.0.0.2"),
      LibraryClient.login(farm.ports.c2s, bob, "pw-b", "pc", "127.0.0.1"),
    ]);
    for (const c of [alice, contact]) await c.iq(xml("iq", { type: "get" }, xml("query", { xmlns: "jabber:iq:roster" })));
    await Promise.all([alice.send(xml("presence", {}, xml("priority", {}, "7"))), contact.send(xml("presence"))]);
    // The contact subscribes to alice's presence: alice's unavailable reaches it when her session ends.
    await contact.send(xml("presence", { type: "subscribe", to: "alice@localhost" }));
    await alice.next((e) => e.name === "presence" && e.attrs.type === "subscribe");
    await alice.send(xml("presence", { type: "subscribed", to: `${bob}@localhost` }));
    await contact.next((e) => e.name === "presence" && e.attrs.type === undefined && e.attrs.from === "alice@localhost/phone");
  });
  after(async () => {
    await alice?.stop();
    await contact?.stop();
    assert.equal(await farm.stop(), 0);
  });

  test("status lists both routers, both c2s, both SMs and xdb, with their connections and sessions", async () => {
    const [json, text] = await Promise.all([farm.admin(["status", "--json"]), farm.admin(["status"])]);
    assert.equal(json.code, 0, json.stderr);
    const s = JSON.parse(json.stdout) as StatusJson;
    assert.deepEqual(s.routers.map((r) => r.status?.instance), ["router-1", "router-2"]);
    for (const r of s.routers) {
      const names = r.status!.connections.filter((c) => c.name !== "cli").map((c) => `${c.name}/${c.instance}`).sort();
      assert.deepEqual(names, ["c2s/c2s-1", "c2s/c2s-2", "localhost/sm-1", "localhost/sm-2", "xdb/xdb-1"], "every process is linked to every router");
    }
    const byAddress = new Map(s.processes.map((p) => [p.address, p]));
    assert.deepEqual([...byAddress.keys()], ["c2s/c2s-1", "c2s/c2s-2", "localhost/sm-1", "localhost/sm-2", "xdb/xdb-1"]);
    for (const p of s.processes) {
      assert.deepEqual(p.routers.sort(), ["router-1", "router-2"]);
      assert.equal(p.status?.pid, farm.childPidById(p.kind === "xdb" ? "xdb" : p.address.replace(/^.*\//, "")), `${p.address}'s pid`);
      assert.ok((p.status?.rssBytes as number) > 0);
    }
    // One client with one session on each c2s; one session on each SM (alice's and her contact's owners differ).
    for (const c of ["c2s/c2s-1", "c2s/c2s-2"]) assert.deepEqual([byAddress.get(c)!.status!.clients, byAddress.get(c)!.status!.sessions], [1, 1], c);
    for (const sm of ["localhost/sm-1", "localhost/sm-2"]) assert.equal(byAddress.get(sm)!.status!.sessions, 1, sm);
    assert.equal(byAddress.get("xdb/xdb-1")!.status!.backend, "pglite");

    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^ {2}router-2 +127\.0\.0\.1:\d+ +\d+ +\d+m\d\ds +[\d.]+ MiB +\d+$/m);
    assert.match(text.stdout, /^ {2}c2s\/c2s-2 +\d+ .* 1 client, 1 session +2\/2 +127\.0\.0\.2:\d+ starttls/m);
  });

  test("sessions shows alice's resource, her c2s and the SM that owns her", async () => {
    const [r, text] = await Promise.all([farm.admin(["sessions", "alice@localhost", "--json"]), farm.admin(["sessions", "alice@localhost"])]);
    assert.equal(r.code, 0, r.stderr);
    const { sessions } = JSON.parse(r.stdout) as { sessions: Array<Record<string, unknown>> };
    assert.equal(sessions.length, 1);
    assert.deepEqual(
      [sessions[0]!.jid, sessions[0]!.c2s, sessions[0]!.sm, sessions[0]!.available, sessions[0]!.priority],
      ["alice@localhost/phone", "c2s/c2s-2", `localhost/${ownerOf("alice@localhost")}`, true, 7],
    );
    assert.match(text.stdout, /alice@localhost\/phone +c2s-2\.\S+ +c2s\/c2s-2 +localhost\/sm-\d +yes +7 /);
  });

  test("kick ends the session: the client gets policy-violation, the contact unavailable presence; a second kick fails", async () => {
    const streamError = new Promise<{ condition: string; text: string }>((resolve) => {
      alice.xmpp.on("error", (e: { condition?: string; text?: string }) => {
        if (e.condition) resolve({ condition: e.condition, text: e.text ?? "" });
      });
    });
    const r = await farm.admin(["kick", "alice@localhost/phone"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /kicked alice@localhost\/phone \(session c2s-2\.\S+ on c2s\/c2s-2\)/);
    assert.deepEqual(await streamError, { condition: "policy-violation", text: "kicked by the operator" });
    const gone = await contact.next((e: Element) => e.name === "presence" && e.attrs.type === "unavailable" && e.attrs.from === "alice@localhost/phone");
    assert.equal(gone.attrs.to, `${bob}@localhost`);

    const [again, none] = await Promise.all([farm.admin(["kick", "alice@localhost/phone"]), farm.admin(["sessions", "alice@localhost"])]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /no session alice@localhost\/phone/);
    assert.match(none.stdout, /alice@localhost has no session/);
  });

  test("a process that does not answer is shown as such, in bounded time, and status exits 1", async () => {
    const pid = farm.childPidById("c2s-1")!;
    process.kill(pid, "SIGSTOP"); // its router links stay up, it just never answers
    try {
      const started = Date.now();
      const r = await farm.admin(["status"]);
      assert.equal(r.code, 1);
      assert.match(r.stdout, /^ {2}c2s\/c2s-1 +no answer$/m);
      assert.match(r.stdout, /^ {2}c2s\/c2s-2 +\d+ /m, "the others are still shown");
      assert.ok(Date.now() - started < 15_000, "bounded by the CLI's timeouts");
    } finally {
      process.kill(pid, "SIGCONT");
    }
  });
});
