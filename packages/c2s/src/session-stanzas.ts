/**
 * The stanzas of a bound session, from the client to its SM: checked
 * (`from` is the client's own address), stamped, re-serialised from the
 * canonical element (docs/security.md), sized, and routed confirmed in a
 * `<route/>` envelope (docs/envelope.md).
 */
import { ENVELOPE_ROOM } from "@jabberfarm/component";
import { routeEnvelope } from "@jabberfarm/envelope";
import { Jid } from "@jabberfarm/jid";
import { NS, StreamError, canBounce, stanzaErrorReply, type Element, type StanzaErrorCondition, type StanzaErrorType } from "@jabberfarm/xml";
import { NS_SESSION } from "./client-context.js";
import { isStanza, type ClientStream } from "./client-stream.js";

function isRequest(el: Element): boolean {
  return el.local === "iq" && (el.attrs.type === "get" || el.attrs.type === "set");
}

export class SessionStanzas {
  constructor(private readonly stream: ClientStream) {}

  fromClient(el: Element): void {
    const stream = this.stream;
    const { ctx } = stream;
    const s = stream.bound!;
    if (!isStanza(el)) {
      stream.fail(new StreamError("unsupported-stanza-type", `<${el.name}/> is not a stanza`));
      return;
    }
    if (el.local === "iq" && el.attrs.type === "set" && stream.isServer(el.attrs.to)) {
      if (el.getChild("bind", NS.BIND)) {
        stream.sm.routed(0);
        stream.stanzaError(el, "not-allowed", { text: "a resource is already bound to this stream" });
        return;
      }
      if (el.getChild("session", NS_SESSION)) {
        stream.sm.routed(0);
        stream.iqResult(el);
        return;
      }
    }
    const from = el.attrs.from;
    if (from !== undefined && from !== s.full) {
      // RFC 6120 §8.1.2.1: the server stamps the full JID; a from that is
      // some other address than the client's own is refused.
      const j = Jid.tryParse(from);
      if (j === null || j.local !== s.jid.local || j.domain !== s.jid.domain || (j.resource !== "" && j.resource !== s.jid.resource)) {
        stream.log.warn({ from }, "stanza with a spoofed from");
        stream.fail(new StreamError("invalid-from", "from must be your own address"));
        return;
      }
    }
    // The canonical element (the parser's `canonical` option), its namespace
    // explicit as envelopes require, stamped with the session's address.
    el.attrs.xmlns = NS.CLIENT;
    el.attrs.from = s.full;
    const text = el.toString();
    // A router refuses a larger element by closing the whole link, with every
    // session on it; only this stanza may pay for its size. The room covers
    // this route's envelope and those the farm puts around it later (the
    // SM's route to another session, a delay stamp): once in, it fits every
    // hop. (The envelope is built once, in the send.)
    const max = Math.min(ctx.config.limits.maxRoutedBytes, ctx.outlet.maxElementBytes) - Math.max(s.routeOverhead, ENVELOPE_ROOM);
    if (text.length * 3 > max && Buffer.byteLength(text) > max) {
      stream.log.info({ bytes: Buffer.byteLength(text), max }, "stanza too large once re-serialised; refused");
      stream.sm.routed(0);
      this.undeliverable(el, "policy-violation", `the stanza is larger than ${max} bytes once re-serialised`, "modify");
      return;
    }
    const n = ctx.routeToSm((c) => routeEnvelope(ctx.address, s.bare, s.sid, text, c));
    if (n === 0) {
      this.undeliverable(el, "remote-server-timeout", "the server cannot route stanzas right now; try again");
      return;
    }
    stream.sm.routed(n);
    if (ctx.outlet.congested && !stream.pauses.has("router")) {
      stream.pause("router");
      ctx.outlet.onceDrained(() => stream.resume("router"));
    }
    // The SMs are behind (acknowledgements wait on their work, the archive's
    // writes among it): read no more from this session until they catch up.
    if (ctx.routesWindow.full && !stream.pauses.has("window")) {
      stream.pause("window");
      void ctx.routesWindow.whenOpen().then(() => stream.resume("window"));
    }
  }

  /** An error for a stanza of this session that could not be routed (iq requests and messages; presence is dropped). */
  undeliverable(el: Element, condition: StanzaErrorCondition, text?: string, type?: StanzaErrorType): void {
    const stream = this.stream;
    if (!stream.conn.isOpen || !canBounce(el)) return;
    if (!isRequest(el) && el.local !== "message") return;
    const reply = stanzaErrorReply(el, condition, { ...(text ? { text } : {}), ...(type ? { type } : condition === "remote-server-timeout" ? { type: "wait" } : {}) });
    if (stream.bound) reply.attrs.to = stream.bound.full;
    // The reply goes to the client stream, whose default namespace is jabber:client.
    delete reply.attrs.xmlns;
    stream.reply(reply);
  }
}
