/**
 * The small web client page the WebSocket end-to-end test serves and loads
 * in Chromium: @xmpp/client's browser build (its dist bundle, served from
 * node_modules as it is), discovery through host-meta (XEP-0156), login,
 * messages and presence, and RFC 7395 redirection (`<close
 * see-other-host='...'/>`), which xmpp.js 0.14 does not follow by itself.
 */
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { ROOT } from "./farm.js";

const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>jabberfarm on the web</title>
<style>body{font:14px sans-serif;margin:2em} li{margin:.2em 0} .me{color:#06c} .err{color:#c00}</style>
<script src="/xmpp.js"></script></head>
<body><h1>jabberfarm over WebSocket</h1><ul id="log"></ul>
<script>
"use strict";
function log(text, cls) {
  const li = document.createElement("li");
  li.textContent = text;
  if (cls) li.className = cls;
  document.getElementById("log").append(li);
}
// RFC 7395 §3.6.1: a server that sends a client elsewhere says so in <close/>.
// Watch the frames to learn where; the page follows it (reconnectTo).
window.redirects = [];
const NativeWebSocket = window.WebSocket;
window.WebSocket = class extends NativeWebSocket {
  constructor(url, protocols) {
    super(url, protocols);
    if (window.location.hash === "#trace") {
      const send = this.send.bind(this);
      this.send = (d) => { console.log("OUT " + d); send(d); };
      this.addEventListener("message", (e) => console.log("IN " + e.data));
    }
    this.addEventListener("message", (e) => {
      const m = /^<close\\b[^>]*\\bsee-other-host=(?:'([^']*)'|"([^"]*)")/.exec(String(e.data));
      if (m) window.redirects.push(m[1] ?? m[2]);
    });
  }
};
window.received = [];
window.disconnects = 0;
// XEP-0156: the WebSocket endpoint from host-meta (JSON), fetched across origins (CORS).
async function discover(origin) {
  const res = await fetch(origin + "/.well-known/host-meta.json");
  const jrd = await res.json();
  const link = jrd.links.find((l) => l.rel === "urn:xmpp:alt-connections:websocket");
  if (!link) throw new Error("no WebSocket link in host-meta");
  return link.href;
}
window.connect = async function ({ hostMetaOrigin, service, username, password, resource }) {
  const url = service ?? (await discover(hostMetaOrigin));
  const xmpp = XMPP.client({ service: url, domain: "localhost", username, password, resource });
  xmpp.reconnect.stop();
  xmpp.on("error", (e) => log("error: " + e.message, "err"));
  xmpp.on("disconnect", () => window.disconnects++);
  xmpp.on("stanza", (st) => {
    window.received.push(st.toString());
    if (st.is("message") && st.getChildText("body")) log(st.attrs.from + ": " + st.getChildText("body"));
    if (st.is("presence")) log("presence from " + st.attrs.from + (st.attrs.type ? " (" + st.attrs.type + ")" : ""));
  });
  await xmpp.start();
  window.xmpp = xmpp;
  // Available (initial presence), as a web client is once online: messages to the bare JID come here.
  await xmpp.send(XMPP.xml("presence"));
  log("online as " + xmpp.jid + " via " + url, "me");
  return { jid: xmpp.jid.toString(), url };
};
window.sendMessage = async function (to, body) {
  await window.xmpp.send(XMPP.xml("message", { to, type: "chat" }, XMPP.xml("body", {}, body)));
  log("to " + to + ": " + body, "me");
};
window.sendPresence = async function (to) {
  await window.xmpp.send(XMPP.xml("presence", to ? { to } : {}));
  log("presence sent" + (to ? " to " + to : ""), "me");
};
</script></body></html>
`;

/** Serves the page and the library bundle on loopback, on a port from the OS. */
export async function startPageServer(): Promise<{ origin: string; server: Server }> {
  const bundle = readFileSync(join(ROOT, "node_modules/@xmpp/client/dist/xmpp.js"));
  const server = createServer((req, res) => {
    if (req.url === "/") res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" }).end(PAGE);
    else if (req.url === "/xmpp.js") res.writeHead(200, { "Content-Type": "text/javascript" }).end(bundle);
    else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}
