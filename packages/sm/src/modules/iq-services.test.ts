import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { stanzaErrorCondition, type Element } from "@jabberfarm/xml";
import { startSmFarm, type SmTestFarm } from "../testing.js";
import { keyedStore } from "./module-testing.js";
/** The default vcard.maxBytes. */
const MAX_VCARD_BYTES = 64 * 1024;

const INFO = "http://jabber.org/protocol/disco#info";
const ITEMS = "http://jabber.org/protocol/disco#items";

const features = (reply: Element): string[] =>
  (reply.getChild("query", INFO)?.getChildren("feature") ?? []).map((f) => f.attrs.var ?? "");
const identities = (reply: Element): string[] =>
  (reply.getChild("query", INFO)?.getChildren("identity") ?? []).map((i) => `${i.attrs.category}/${i.attrs.type}`);

function ok(reply: Element): Element {
  assert.equal(reply.attrs.type, "result", `expected a result, got ${reply.toString()}`);
  return reply;
}

describe("iq services: disco, ping, version, vcard, private", () => {
  let farm: SmTestFarm;
  before(async () => {
    farm = await startSmFarm();
    for (const u of ["ann", "ben", "cid", "deb", "vic", "wes", "pat", "quin"]) await farm.addUser(u);
    // ben may see ann's presence (from ann's point of view: 'from'), cid only sent a request ('none' on ann's side);
    // deb sees ann's presence the other way round, which does not count.
    await farm.storage.setRosterItem("ann@localhost", { jid: "ben@localhost", subscription: "from", groups: [] });
    await farm.storage.setRosterItem("ann@localhost", { jid: "cid@localhost", subscription: "none", groups: [] });
    await farm.storage.setRosterItem("ann@localhost", { jid: "deb@localhost", subscription: "to", groups: [] });
  });
  after(async () => farm.stop());

  describe("disco", () => {
    test("the server's info: identity and the features of the loaded modules", async () => {
      const s = await farm.driver.open("pat@localhost/d1");
      const reply = ok(await s.iq(`<iq type='get' to='localhost'><query xmlns='${INFO}'/></iq>`));
      assert.equal(reply.attrs.from, "localhost");
      assert.deepEqual(identities(reply), ["server/im"]);
      const f = features(reply);
      for (const ns of [INFO, ITEMS, "urn:xmpp:ping", "jabber:iq:version", "vcard-temp", "jabber:iq:private", "jabber:iq:register", "msgoffline"]) {
        assert.ok(f.includes(ns), `feature ${ns} in ${f.join(", ")}`);
      }
      assert.equal(new Set(f).size, f.length, "no feature twice");
      assert.deepEqual(f, [...farm.sm.sm.features()].sort());
      const node = await s.iq(`<iq type='get' to='localhost'><query xmlns='${INFO}' node='urn:example:nothing'/></iq>`);
      assert.equal(stanzaErrorCondition(node), "item-not-found");
      const items = ok(await s.iq(`<iq type='get' to='localhost'><query xmlns='${ITEMS}'/></iq>`));
      assert.equal(items.getChild("query", ITEMS)?.getChildren().length, 0);
      s.end();
    });

    test("a user's own bare JID: the account identity", async () => {
      const a = await farm.driver.open("ann@localhost/self");
      for (const to of ["to='ann@localhost'", ""]) {
        const reply = ok(await a.iq(`<iq type='get' ${to}><query xmlns='${INFO}'/></iq>`));
        // With PEP loaded, every account is a pubsub service too (XEP-0163 §1).
        assert.deepEqual(identities(reply), ["account/registered", "pubsub/pep"]);
        assert.equal(reply.attrs.from, "ann@localhost");
      }
      ok(await a.iq(`<iq type='get' to='ann@localhost'><query xmlns='${ITEMS}'/></iq>`));
      a.end();
    });

    test("another user's bare JID: answered for a presence subscriber, service-unavailable for anyone else", async () => {
      const ben = await farm.driver.open("ben@localhost/x");
      const info = ok(await ben.iq(`<iq type='get' to='ann@localhost'><query xmlns='${INFO}'/></iq>`));
      assert.deepEqual(identities(info), ["account/registered", "pubsub/pep"]);
      assert.equal(info.attrs.from, "ann@localhost");
      const items = ok(await ben.iq(`<iq type='get' to='ann@localhost'><query xmlns='${ITEMS}'/></iq>`));
      assert.equal(items.getChild("query", ITEMS)?.getChildren().length, 0);
      const node = await ben.iq(`<iq type='get' to='ann@localhost'><query xmlns='${INFO}' node='n'/></iq>`);
      assert.equal(stanzaErrorCondition(node), "item-not-found");
      for (const who of ["cid", "deb", "pat"]) {
        const s = await farm.driver.open(`${who}@localhost/x`);
        for (const ns of [INFO, ITEMS]) {
          const denied = await s.iq(`<iq type='get' to='ann@localhost'><query xmlns='${ns}'/></iq>`);
          assert.equal(stanzaErrorCondition(denied), "service-unavailable", `${who} ${ns}`);
        }
        s.end();
      }
      // Indistinguishable from an account that does not exist.
      const nobody = await ben.iq(`<iq type='get' to='nobody@localhost'><query xmlns='${INFO}'/></iq>`);
      assert.equal(stanzaErrorCondition(nobody), "service-unavailable");
      ben.end();
    });
  });

  test("ping: the server and one's own account answer", async () => {
    const s = await farm.driver.open("pat@localhost/ping");
    const host = ok(await s.iq("<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>"));
    assert.equal(host.attrs.from, "localhost");
    assert.equal(host.children.length, 0);
    ok(await s.iq("<iq type='get' to='pat@localhost'><ping xmlns='urn:xmpp:ping'/></iq>"));
    ok(await s.iq("<iq type='get'><ping xmlns='urn:xmpp:ping'/></iq>"));
    s.end();
  });

  test("version: name and the package's version, no os", async () => {
    const s = await farm.driver.open("pat@localhost/version");
    const reply = ok(await s.iq("<iq type='get' to='localhost'><query xmlns='jabber:iq:version'/></iq>"));
    const q = reply.getChild("query", "jabber:iq:version");
    assert.ok(q);
    const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };
    assert.equal(q.getChildText("name"), "jabberfarm");
    assert.equal(q.getChildText("version"), pkg.version);
    assert.equal(q.getChild("os"), undefined);
    const set = await s.iq("<iq type='set' to='localhost'><query xmlns='jabber:iq:version'/></iq>");
    assert.equal(stanzaErrorCondition(set), "service-unavailable");
    s.end();
  });

  describe("vcard", () => {
    test("set and get one's own; others read it; nobody else may set it", async () => {
      const v = await farm.driver.open("vic@localhost/a");
      const empty = ok(await v.iq("<iq type='get'><vCard xmlns='vcard-temp'/></iq>"));
      const none = empty.getChild("vCard", "vcard-temp");
      assert.ok(none);
      assert.equal(none.children.length, 0);
      ok(await v.iq("<iq type='set'><vCard xmlns='vcard-temp'><FN>Vic Tor</FN><NICKNAME>v &amp; t</NICKNAME></vCard></iq>"));
      const mine = ok(await v.iq("<iq type='get' to='vic@localhost'><vCard xmlns='vcard-temp'/></iq>"));
      assert.equal(mine.getChild("vCard", "vcard-temp")?.getChildText("FN"), "Vic Tor");
      assert.equal(mine.getChild("vCard", "vcard-temp")?.getChildText("NICKNAME"), "v & t");

      const w = await farm.driver.open("wes@localhost/b");
      const theirs = ok(await w.iq("<iq type='get' to='vic@localhost'><vCard xmlns='vcard-temp'/></iq>"));
      assert.equal(theirs.attrs.from, "vic@localhost");
      assert.equal(theirs.getChild("vCard", "vcard-temp")?.getChildText("FN"), "Vic Tor");
      const forbidden = await w.iq("<iq type='set' to='vic@localhost'><vCard xmlns='vcard-temp'><FN>Evil</FN></vCard></iq>");
      assert.equal(stanzaErrorCondition(forbidden), "forbidden");
      // Someone without a vCard has an empty one.
      const blank = ok(await v.iq("<iq type='get' to='wes@localhost'><vCard xmlns='vcard-temp'/></iq>"));
      assert.equal(blank.getChild("vCard", "vcard-temp")?.children.length, 0);
      assert.equal((await keyedStore(farm, "vcard").get("vic@localhost", ""))?.includes("Vic Tor"), true);
      v.end();
      w.end();
    });

    test("a prefixed vCard is stored so that it reads back on its own; an oversized one is refused", async () => {
      const v = await farm.driver.open("vic@localhost/c");
      ok(await v.iq("<iq type='set'><v:vCard xmlns:v='vcard-temp'><v:FN>Prefixed</v:FN><x:X xmlns:x='urn:example:x'/></v:vCard></iq>"));
      const got = ok(await v.iq("<iq type='get'><vCard xmlns='vcard-temp'/></iq>"));
      const card = got.getChild("vCard", "vcard-temp");
      assert.equal(card?.getChildText("FN", "vcard-temp"), "Prefixed");
      assert.ok(card?.getChild("X", "urn:example:x"));
      assert.match((await keyedStore(farm, "vcard").get("vic@localhost", "")) ?? "", /^<vCard xmlns='vcard-temp'[^>]*><FN>Prefixed<\/FN><X xmlns='urn:example:x'/);
      const big = "x".repeat(MAX_VCARD_BYTES);
      const tooBig = await v.iq(`<iq type='set'><vCard xmlns='vcard-temp'><DESC>${big}</DESC></vCard></iq>`);
      assert.equal(stanzaErrorCondition(tooBig), "not-acceptable");
      const still = ok(await v.iq("<iq type='get'><vCard xmlns='vcard-temp'/></iq>"));
      assert.equal(still.getChild("vCard", "vcard-temp")?.getChildText("FN"), "Prefixed");
      v.end();
    });
  });

  describe("private storage", () => {
    const NS = "jabber:iq:private";

    test("set, get, and the empty element for what was never stored", async () => {
      const p = await farm.driver.open("quin@localhost/a");
      ok(await p.iq(`<iq type='set'><query xmlns='${NS}'><prefs xmlns='urn:example:prefs'><nick>Q</nick></prefs></query></iq>`));
      const got = ok(await p.iq(`<iq type='get'><query xmlns='${NS}'><prefs xmlns='urn:example:prefs'/></query></iq>`));
      const prefs = got.getChild("query", NS)?.getChild("prefs", "urn:example:prefs");
      assert.equal(prefs?.getChildText("nick"), "Q");
      // Same namespace, another element name: another key.
      const other = ok(await p.iq(`<iq type='get'><query xmlns='${NS}'><other xmlns='urn:example:prefs'/></query></iq>`));
      const empty = other.getChild("query", NS)?.getChild("other", "urn:example:prefs");
      assert.ok(empty);
      assert.equal(empty.children.length, 0);
      // Several elements in one set (XEP-0049 allows it), each stored under its own key.
      ok(await p.iq(`<iq type='set' to='quin@localhost'><query xmlns='${NS}'><a xmlns='urn:example:a'>1</a><b xmlns='urn:example:b'>2</b></query></iq>`));
      assert.equal(ok(await p.iq(`<iq type='get'><query xmlns='${NS}'><b xmlns='urn:example:b'/></query></iq>`))
        .getChild("query", NS)?.getChild("b", "urn:example:b")?.text(), "2");
      assert.match((await keyedStore(farm, "private").get("quin@localhost", "a urn:example:a")) ?? "", /^<a xmlns='urn:example:a'>1<\/a>$/);
      p.end();
    });

    test("another user's private data is forbidden, read or write", async () => {
      const p = await farm.driver.open("pat@localhost/priv");
      for (const type of ["get", "set"]) {
        const r = await p.iq(`<iq type='${type}' to='quin@localhost'><query xmlns='${NS}'><prefs xmlns='urn:example:prefs'/></query></iq>`);
        assert.equal(stanzaErrorCondition(r), "forbidden", type);
      }
      p.end();
    });

    test("reserved namespaces are not-acceptable; an empty query or a get for two is bad-request", async () => {
      const p = await farm.driver.open("quin@localhost/b");
      for (const child of ["<x/>", "<x xmlns='jabber:client'/>", "<x xmlns='jabber:server'/>", `<query xmlns='${NS}'/>`]) {
        for (const type of ["get", "set"]) {
          const r = await p.iq(`<iq type='${type}'><query xmlns='${NS}'>${child}</query></iq>`);
          assert.equal(stanzaErrorCondition(r), "not-acceptable", `${type} ${child}`);
        }
      }
      for (const type of ["get", "set"]) {
        const r = await p.iq(`<iq type='${type}'><query xmlns='${NS}'/></iq>`);
        assert.equal(stanzaErrorCondition(r), "bad-request", type);
      }
      const two = await p.iq(`<iq type='get'><query xmlns='${NS}'><a xmlns='urn:example:a'/><b xmlns='urn:example:b'/></query></iq>`);
      assert.equal(stanzaErrorCondition(two), "bad-request");
      p.end();
    });
  });
});
