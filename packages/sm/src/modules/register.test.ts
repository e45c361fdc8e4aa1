import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { verifyPlain } from "@jabberfarm/sasl";
import { stanzaErrorCondition, type Element } from "@jabberfarm/xml";
import { startSmFarm, type SmTestFarm } from "../testing.js";
import { archiveStore, availableSession, eventually, isMessage, keyedStore } from "./module-testing.js";

const NS = "jabber:iq:register";

function ok(reply: Element): Element {
  assert.equal(reply.attrs.type, "result", `expected a result, got ${reply.toString()}`);
  return reply;
}

describe("in-band registration for logged-in users", () => {
  let farm: SmTestFarm;
  before(async () => {
    farm = await startSmFarm();
    for (const u of ["rita", "sam", "tom", "uma", "val", "other"]) await farm.addUser(u);
  });
  after(async () => farm.stop());

  /** Runs `fn` with a registration setting changed, as a deployment's config would. */
  async function withSetting(key: "passwordChange" | "cancel", value: boolean, fn: () => Promise<void>): Promise<void> {
    const reg = farm.sm.sm.config.registration;
    const old = reg[key];
    reg[key] = value;
    try {
      await fn();
    } finally {
      reg[key] = old;
    }
  }

  test("get: registered, with the username, to the server or to no one", async () => {
    const r = await farm.driver.open("rita@localhost/a");
    for (const to of ["to='localhost'", ""]) {
      const reply = ok(await r.iq(`<iq type='get' ${to}><query xmlns='${NS}'/></iq>`));
      const q = reply.getChild("query", NS);
      assert.ok(q?.getChild("registered"), to);
      assert.equal(q?.getChildText("username"), "rita");
    }
    r.end();
  });

  test("password change: new credentials stored, the old password no longer verifies", async () => {
    const s = await farm.driver.open("sam@localhost/a");
    const before = await farm.storage.getCredentials("sam@localhost");
    assert.ok(before);
    assert.ok(before.every((c) => verifyPlain("pw", c)));
    ok(await s.iq(`<iq type='set' to='localhost'><query xmlns='${NS}'><username>sam</username><password>n3w-secret</password></query></iq>`));
    const after = await farm.storage.getCredentials("sam@localhost");
    assert.ok(after);
    assert.deepEqual(after.map((c) => c.mechanism).sort(), ["SCRAM-SHA-1", "SCRAM-SHA-256"]);
    for (const c of after) {
      assert.ok(!before.some((b) => b.storedKey === c.storedKey), "a new storedKey");
      assert.equal(verifyPlain("pw", c), false);
      assert.equal(verifyPlain("n3w-secret", c), true);
    }
    // The username is compared after normalisation; to-less works as well.
    ok(await s.iq(`<iq type='set'><query xmlns='${NS}'><username>SAM</username><password>third</password></query></iq>`));
    assert.ok((await farm.storage.getCredentials("sam@localhost"))?.every((c) => verifyPlain("third", c)));
    s.end();
  });

  test("password change refused: someone else's username, no password, disabled by config", async () => {
    const t = await farm.driver.open("tom@localhost/a");
    const creds = await farm.storage.getCredentials("tom@localhost");
    const wrong = await t.iq(`<iq type='set' to='localhost'><query xmlns='${NS}'><username>other</username><password>x</password></query></iq>`);
    assert.equal(stanzaErrorCondition(wrong), "bad-request");
    const missing = await t.iq(`<iq type='set' to='localhost'><query xmlns='${NS}'><username>tom</username></query></iq>`);
    assert.equal(stanzaErrorCondition(missing), "bad-request");
    const empty = await t.iq(`<iq type='set' to='localhost'><query xmlns='${NS}'><username>tom</username><password/></query></iq>`);
    assert.equal(stanzaErrorCondition(empty), "not-acceptable");
    await withSetting("passwordChange", false, async () => {
      const off = await t.iq(`<iq type='set' to='localhost'><query xmlns='${NS}'><username>tom</username><password>x</password></query></iq>`);
      assert.equal(stanzaErrorCondition(off), "not-allowed");
    });
    assert.deepEqual(await farm.storage.getCredentials("tom@localhost"), creds);
    assert.deepEqual(await farm.storage.getCredentials("other@localhost") !== null, true);
    t.end();
  });

  test("removal: result, data deleted, every session kicked with not-authorized", async () => {
    const user = "uma@localhost";
    const u1 = await availableSession(farm, "uma@localhost/one");
    const u2 = await farm.driver.open("uma@localhost/two");
    ok(await u1.iq("<iq type='set'><vCard xmlns='vcard-temp'><FN>Uma</FN></vCard></iq>"));
    ok(await u1.iq("<iq type='set'><query xmlns='jabber:iq:private'><p xmlns='urn:example:p'/></query></iq>"));
    await archiveStore(farm, "offline").append(user, "<message xmlns='jabber:client' to='uma@localhost'><body>old</body></message>");
    const reply = ok(await u1.iq(`<iq type='set' to='localhost'><query xmlns='${NS}'><remove/></query></iq>`));
    assert.equal(reply.attrs.from, "localhost");
    await eventually(() => u1.kicked !== undefined && u2.kicked !== undefined, 3000, "both kicks");
    assert.equal(u1.kicked, "not-authorized");
    assert.equal(u2.kicked, "not-authorized");
    assert.equal(farm.sm.sm.sessions.of(user).length, 0);
    assert.equal(await farm.storage.accountExists(user), false);
    assert.equal(await farm.storage.getCredentials(user), null);
    assert.equal(await keyedStore(farm, "vcard").get(user, ""), null);
    assert.equal(await keyedStore(farm, "private").get(user, "p urn:example:p"), null);
    assert.equal((await archiveStore(farm, "offline").count(user)).count, 0);
    // Gone for everyone else too.
    const o = await farm.driver.open("other@localhost/x");
    o.send("<message type='chat' to='uma@localhost' id='late'><body>hello?</body></message>");
    assert.equal(stanzaErrorCondition(await o.next((e) => isMessage(e) && e.attrs.id === "late")), "service-unavailable");
    o.end();
  });

  test("removal disabled by config: not-allowed, nothing deleted", async () => {
    const v = await farm.driver.open("val@localhost/a");
    await withSetting("cancel", false, async () => {
      const r = await v.iq(`<iq type='set'><query xmlns='${NS}'><remove/></query></iq>`);
      assert.equal(stanzaErrorCondition(r), "not-allowed");
    });
    assert.equal(await farm.storage.accountExists("val@localhost"), true);
    await v.nothing(() => false, 50);
    assert.equal(v.kicked, undefined);
    v.end();
  });
});
