import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { stanzaErrorCondition, type Element } from "@jabberfarm/xml";
import { startSmFarm, type SmTestFarm } from "../testing.js";
import { eventually } from "./module-testing.js";
import { NS_LAST } from "./last.js";

const seconds = (e: Element): number => Number(e.getChild("query", NS_LAST)!.attrs.seconds);

describe("last activity (XEP-0012)", () => {
  let farm: SmTestFarm;
  before(async () => {
    farm = await startSmFarm();
  });
  after(async () => farm.stop());

  test("the server answers its uptime, and advertises the feature", async () => {
    const u = await farm.addUser("lhost");
    const s = await farm.driver.open(`${u}/r`);
    const r = await s.iq(`<iq type='get' to='localhost'><query xmlns='${NS_LAST}'/></iq>`);
    assert.equal(r.attrs.type, "result");
    assert.ok(seconds(r) >= 0 && Number.isInteger(seconds(r)));
    const info = await s.iq("<iq type='get' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
    assert.ok(info.getChild("query")!.getChildren("feature").some((f) => f.attrs.var === NS_LAST));
    s.end();
  });

  test("a contact learns how long ago the user logged out and with which status; others are refused", async () => {
    const gone = await farm.addUser("lgone");
    const friend = await farm.addUser("lfriend");
    const stranger = await farm.addUser("lstranger");
    await farm.storage.setRosterItem(gone, { jid: friend, subscription: "from", groups: [] });
    await farm.storage.setRosterItem(friend, { jid: gone, subscription: "to", groups: [] });
    const f = await farm.driver.online(`${friend}/pc`);
    const st = await farm.driver.online(`${stranger}/pc`);

    // Never logged in: nothing on record.
    assert.equal(stanzaErrorCondition(await f.iq(`<iq type='get' to='${gone}'><query xmlns='${NS_LAST}'/></iq>`)), "item-not-found");

    const g = await farm.driver.online(`${gone}/phone`);
    const online = await f.iq(`<iq type='get' to='${gone}'><query xmlns='${NS_LAST}'/></iq>`);
    assert.equal(seconds(online), 0, "online: 0 seconds");
    g.send("<presence type='unavailable'><status>Heading home</status></presence>");
    g.end();
    await eventually(() => farm.sm.sm.sessions.of(gone).length === 0, 3000, "the session to end");
    await eventually(async () => (await f.iq(`<iq type='get' to='${gone}'><query xmlns='${NS_LAST}'/></iq>`)).attrs.type === "result", 3000, "the logout on record");
    const r = await f.iq(`<iq type='get' to='${gone}'><query xmlns='${NS_LAST}'/></iq>`);
    assert.ok(seconds(r) >= 0 && seconds(r) < 60);
    assert.equal(r.getChildText("query", NS_LAST), "Heading home");

    assert.equal(stanzaErrorCondition(await st.iq(`<iq type='get' to='${gone}'><query xmlns='${NS_LAST}'/></iq>`)), "forbidden");
    f.end();
    st.end();
  });
});
