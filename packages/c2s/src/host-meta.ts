/**
 * XEP-0156 discovery: `/.well-known/host-meta` (XRD, RFC 6415) and
 * `/.well-known/host-meta.json` (JRD) naming the WebSocket endpoint, so a
 * web client given only the domain finds where to connect.
 */
import { escapeAttr } from "@jabberfarm/xml";

export const REL_WEBSOCKET = "urn:xmpp:alt-connections:websocket";

export function hostMetaXrd(websocketUrl: string): string {
  return "<?xml version='1.0' encoding='utf-8'?>\n" +
    "<XRD xmlns='http://docs.oasis-open.org/ns/xri/xrd-1.0'>\n" +
    `  <Link rel='${REL_WEBSOCKET}' href='${escapeAttr(websocketUrl)}'/>\n` +
    "</XRD>\n";
}

export function hostMetaJson(websocketUrl: string): string {
  return JSON.stringify({ links: [{ rel: REL_WEBSOCKET, href: websocketUrl }] }, null, 2) + "\n";
}
