/**
 * A message to an offline user survives a stop and start of the whole farm
 * and arrives with an XEP-0203 delay at the next login: on the embedded
 * PGlite storage and on PostgreSQL.
 */
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Farm, freshDatabase } from "./farm.js";
import { LibraryClient, xml } from "./clients.js";

for (const backend of ["pglite", "postgres"] as const) {
  describe(`offline messages across a farm restart (${backend})`, () => {
    const cleanups: Array<() => Promise<unknown>> = [];
    after(async () => {
      for (const f of cleanups.reverse()) await f();
    });

    test("stored while the recipient is away, delivered after the restart", async () => {
      let databaseUrl: string | undefined;
      if (backend === "postgres") {
        const db = await freshDatabase();
        cleanups.push(() => db.drop());
        databaseUrl = db.url;
      }
      const farm = await Farm.start({ databaseUrl });
      cleanups.push(() => farm.stop());
      await farm.addUser("erin@localhost", "erin-pw");
      await farm.addUser("frank@localhost", "frank-pw");

      const erin = await LibraryClient.login(farm.ports.c2s, "erin", "erin-pw", "desk");
      await erin.send(xml("message", { to: "frank@localhost", type: "chat", id: "off1" }, xml("body", {}, "see you later")));
      await erin.send(xml("message", { to: "frank@localhost", type: "chat", id: "off2" }, xml("body", {}, "second")));
      // A round trip through the farm makes sure both were handled before the stop.
      await erin.iq(xml("iq", { type: "get", to: "localhost" }, xml("ping", { xmlns: "urn:xmpp:ping" })));
      await erin.stop();

      assert.equal(await farm.stop(), 0);
      await farm.up();

      const frank = await LibraryClient.login(farm.ports.c2s, "frank", "frank-pw", "phone");
      await frank.send(xml("presence"));
      const m1 = await frank.next((e) => e.name === "message" && e.attrs.id === "off1");
      const m2 = await frank.next((e) => e.name === "message" && e.attrs.id === "off2");
      assert.equal(m1.getChildText("body"), "see you later");
      assert.equal(m2.getChildText("body"), "second");
      assert.equal(m1.attrs.from, "erin@localhost/desk");
      const delay = m1.getChild("delay", "urn:xmpp:delay");
      assert.ok(delay, "XEP-0203 delay element");
      assert.match(delay.attrs.stamp ?? "", /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
      await frank.stop();

      // delivered once: a second login finds nothing waiting
      const again = await LibraryClient.login(farm.ports.c2s, "frank", "frank-pw", "phone2");
      await again.send(xml("presence"));
      await new Promise((r) => setTimeout(r, 500));
      assert.ok(!again.received.some((e) => e.name === "message"), "offline messages are not delivered twice");
      await again.stop();
    });
  });
}
