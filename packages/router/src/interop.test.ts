/**
 * Interoperability: @xmpp/component (xmpp.js, a library this project did not
 * write) connects to our router with its own XEP-0114 handshake and
 * exchanges messages with one of our components.
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { Component } from "@jabberfarm/component";
import type { Element } from "@jabberfarm/xml";
import { SECRETS, startRouter } from "./testing.js";

// xmpp.js ships CommonJS without type declarations; this is the part we use.
interface XmppJsElement {
  name: string;
  attrs: Record<string, string>;
  getChildText(name: string): string | null;
}
interface XmppJsComponent {
  on(event: "stanza", fn: (el: XmppJsElement) => void): void;
  on(event: "error", fn: (err: Error) => void): void;
  on(event: "online", fn: () => void): void;
  start(): Promise<unknown>;
  stop(): Promise<unknown>;
  send(el: unknown): Promise<void>;
}
const require = createRequire(import.meta.url);
const xmppjs = require("@xmpp/component") as {
  component(o: { service: string; domain: string; password: string }): XmppJsComponent;
  xml(name: string, attrs?: Record<string, string>, ...children: unknown[]): unknown;
};

test("@xmpp/component talks to one of our components through the router", async () => {
  const { router, port } = await startRouter();
  const ours = new Component({
    name: "b.test", secret: SECRETS["b.test"], routers: [{ host: "127.0.0.1", port }],
  });
  const theirs = xmppjs.component({ service: `xmpp://127.0.0.1:${port}`, domain: "ext.test", password: SECRETS["ext.test"] });
  after(async () => {
    await theirs.stop().catch(() => {});
    await ours.stop();
    await router.stop();
  });
  theirs.on("error", () => {});
  await ours.start();

  const oursGot = new Promise<Element>((resolve) => ours.once("stanza", (el) => resolve(el)));
  const theirsGot = new Promise<XmppJsElement>((resolve) => theirs.on("stanza", (el) => {
    if (el.name === "message") resolve(el);
  }));
  const online = new Promise<void>((resolve) => theirs.on("online", () => resolve()));
  await theirs.start();
  await online;

  await theirs.send(xmppjs.xml("message", { from: "bot@ext.test", to: "bob@b.test", id: "x1" },
    xmppjs.xml("body", {}, "hello from xmpp.js")));
  const m = await oursGot;
  assert.equal(m.attrs.from, "bot@ext.test");
  assert.equal(m.getChildText("body"), "hello from xmpp.js");

  ours.send("<message from='bob@b.test' to='bot@ext.test' id='x2'><body>hello back</body></message>");
  const reply = await theirsGot;
  assert.equal(reply.attrs.id, "x2");
  assert.equal(reply.getChildText("body"), "hello back");
});
