/**
 * The server's disco#items lists the services linked under its domain
 * (fed by the routers' membership notices; the end-to-end test finds the
 * farm's conference and upload services this way), and its disco#info
 * carries the XEP-0157 contact addresses from the config.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { startSmFarm, type SmTestFarm } from "../testing.js";

const INFO = "http://jabber.org/protocol/disco#info";
const ITEMS = "http://jabber.org/protocol/disco#items";

describe("disco: linked services and contact addresses", () => {
  let farm: SmTestFarm;
  before(async () => {
    farm = await startSmFarm({ contactAddresses: { abuse: ["mailto:abuse@localhost"], admin: ["xmpp:admin@localhost", "mailto:admin@localhost"] } });
    await farm.addUser("pat");
  });
  after(async () => farm.stop());

  test("services come and go with the routers' membership lists; other names are not listed", async () => {
    const s = await farm.driver.open("pat@localhost/d");
    const items = async (): Promise<string[]> =>
      ((await s.iq(`<iq type='get' to='localhost'><query xmlns='${ITEMS}'/></iq>`)).getChild("query", ITEMS)?.getChildren("item") ?? []).map((i) => i.attrs.jid!);
    const services = farm.sm.sm.services;
    services.update("upload.localhost", new Set(["upload-1"]));
    services.update("conference.localhost", new Set(["muc-1", "muc-2"]));
    services.update("c2s", new Set(["c2s-1"]));
    services.update("conference.example.org", new Set(["x"]));
    assert.deepEqual(await items(), ["conference.localhost", "upload.localhost"]);
    services.update("upload.localhost", new Set());
    assert.deepEqual(await items(), ["conference.localhost"]);
    s.end();
  });

  test("contact addresses (XEP-0157) in the server's disco#info", async () => {
    const s = await farm.driver.open("pat@localhost/e");
    const reply = await s.iq(`<iq type='get' to='localhost'><query xmlns='${INFO}'/></iq>`);
    const form = reply.getChild("query", INFO)?.getChild("x", "jabber:x:data");
    assert.equal(form?.attrs.type, "result");
    const values = (v: string): string[] => form?.getChildren("field").find((f) => f.attrs.var === v)?.getChildren("value").map((x) => x.text()) ?? [];
    assert.deepEqual(values("FORM_TYPE"), ["http://jabber.org/network/serverinfo"]);
    assert.deepEqual(values("abuse-addresses"), ["mailto:abuse@localhost"]);
    assert.deepEqual(values("admin-addresses"), ["xmpp:admin@localhost", "mailto:admin@localhost"]);
    assert.equal(values("support-addresses").length, 0, "kinds without addresses are left out");
    s.end();
  });
});
