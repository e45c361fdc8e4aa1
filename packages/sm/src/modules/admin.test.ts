import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { rawText } from "@jabberfarm/component";
import { adminRequest, readAdminReply, type AdminOp, type AdminReply } from "@jabberfarm/envelope";
import { NS, parseElement, type Element } from "@jabberfarm/xml";
import { startSmFarm, type SmTestFarm } from "../testing.js";
import { availableSession, eventually } from "./module-testing.js";

describe("admin module (operator queries)", () => {
  let farm: SmTestFarm;
  const answers: Element[] = [];
  let n = 0;
  before(async () => {
    farm = await startSmFarm({ modules: ["roster", "subscription", "presence", "admin"] });
    farm.driver.component.on("stanza", (el, raw) => {
      if (el.local === "admin") answers.push(parseElement(rawText(raw), NS.COMPONENT));
    });
  });
  after(async () => farm.stop());

  /** Asks as the trusted c2s component would; the SM answers to its address. */
  async function ask<O extends AdminOp>(op: O, to: string, params: object): Promise<AdminReply<O>> {
    const id = `a${++n}`;
    farm.driver.component.send(adminRequest(id, op, farm.driver.address, to, params as never));
    let el: Element | undefined;
    await eventually(() => (el = answers.find((a) => a.attrs.id === id)) !== undefined, 3000, `the answer to ${op}`);
    return readAdminReply(op, el!);
  }

  test("status, a user's sessions, and a kick that ends the session like any other end", async () => {
    const a = await farm.addUser("adm-a");
    const b = await farm.addUser("adm-b");
    await farm.storage.setRosterItem(a, { jid: b, subscription: "both", groups: [] });
    await farm.storage.setRosterItem(b, { jid: a, subscription: "both", groups: [] });
    const as = await availableSession(farm, `${a}/phone`, 3);
    const bs = await availableSession(farm, `${b}/pc`);

    const status = await ask("status", "localhost/sm-1", {});
    assert.equal(status.type, "result");
    if (status.type !== "result" || status.result.process !== "sm") throw new Error("an sm status was expected");
    assert.equal(status.from, "localhost/sm-1");
    assert.deepEqual([status.result.instance, status.result.domain, status.result.sessions, status.result.users], ["sm-1", "localhost", 2, 2]);
    assert.equal(status.result.pid, process.pid);

    const listed = await ask("sessions", a, { user: a });
    if (listed.type !== "result") throw new Error(`sessions failed: ${listed.condition}`);
    assert.equal(listed.result.sessions.length, 1);
    const s = listed.result.sessions[0]!;
    assert.deepEqual([s.jid, s.sid, s.c2s, s.sm, s.available, s.priority], [as.full, as.sid, farm.driver.address, "localhost/sm-1", true, 3]);
    assert.ok(Date.now() - Date.parse(s.since) < 60_000);

    const kicked = await ask("kick", a, { jid: as.full });
    assert.equal(kicked.type === "result" && kicked.result.kicked.sid, as.sid);
    await eventually(() => as.kicked !== undefined, 3000, "the kick envelope to c2s");
    assert.equal(as.kicked, "policy-violation");
    const gone = await bs.next((e) => e.name === "presence" && e.attrs.type === "unavailable" && e.attrs.from === as.full);
    assert.equal(gone.attrs.to, b);

    const again = await ask("kick", a, { jid: as.full });
    assert.equal(again.type === "error" && again.condition, "item-not-found");
    const none = await ask("sessions", a, { user: a });
    assert.deepEqual(none.type === "result" && none.result.sessions, []);
  });

  test("a request that does not validate is answered bad-request", async () => {
    const bad = await ask("kick", "adm-a@localhost", { jid: "adm-a@localhost" });
    assert.equal(bad.type === "error" && bad.condition, "bad-request");
  });
});
