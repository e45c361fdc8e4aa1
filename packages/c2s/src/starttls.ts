/**
 * STARTTLS (RFC 6120 §5): `<proceed/>`, then the same stream continues over
 * a TLS socket layered on the plain one, and the client opens a new stream
 * header on it. TCP only: a WebSocket's TLS is wss.
 */
import { TLSSocket } from "node:tls";
import { NS, StreamError } from "@jabberfarm/xml";
import type { ClientStream } from "./client-stream.js";
import { TcpTransport } from "./tcp-transport.js";

export function startTls(stream: ClientStream): void {
  const conn = stream.conn;
  if (!(conn instanceof TcpTransport)) {
    stream.fail(new StreamError("unsupported-stanza-type", "no STARTTLS here: TLS is the WebSocket's (wss)"));
    return;
  }
  if (stream.secure || stream.user !== undefined) {
    // RFC 6120 §5.4.2.2: <failure/>, then the stream ends.
    stream.send(`<failure xmlns='${NS.TLS}'/>`);
    conn.close();
    return;
  }
  if (stream.queue.length > 0) {
    // Sent in the clear after <starttls/> while an answer was pending (CVE-2011-0411):
    // never to be obeyed as if it came over TLS.
    stream.log.warn({ queued: stream.queue.length }, "data after <starttls/>; dropping the connection");
    stream.queue.length = 0;
    conn.destroy();
    return;
  }
  stream.tlsPending = true;
  stream.streamOpen = false;
  conn.sendNow(`<proceed xmlns='${NS.TLS}'/>`);
  stream.lastWrite = Date.now();
  const plain = conn.socket;
  // After the parser has finished the current read, so that whatever
  // followed <starttls/> in it is discarded with the old stream.
  queueMicrotask(() => {
    if (!conn.isOpen) return;
    const tlsSocket = new TLSSocket(plain, { isServer: true, secureContext: stream.ctx.secureContext });
    tlsSocket.once("secure", () => {
      stream.log.debug({ protocol: tlsSocket.getProtocol(), cipher: tlsSocket.getCipher().name }, "STARTTLS complete");
    });
    conn.upgrade(tlsSocket);
    conn.tls = true;
    conn.headerDue = stream.header();
    if (stream.pauses.size > 0) tlsSocket.pause();
  });
}
