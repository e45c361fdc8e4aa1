/**
 * Resource binding (RFC 6120 §7) through the owner SM: the c2s picks the
 * full JID and a farm-wide session id, asks the SM that owns the user to
 * register the session (`<session type='start'/>`, docs/envelope.md), and
 * answers the client's bind only once the SM said `started`, so the SM
 * knows the session before any of its stanzas arrives.
 */
import { randomToken } from "@jabberfarm/sasl";
import { sessionEnvelope } from "@jabberfarm/envelope";
import { Jid } from "@jabberfarm/jid";
import { NS, errorElement, stanzaCondition, xml, type Element, type StanzaErrorType } from "@jabberfarm/xml";
import type { ClientStream } from "./client-stream.js";


interface PendingBind {
  sid: string;
  iq: Element;
  jid: Jid;
  timer: NodeJS.Timeout | undefined;
}

export class ResourceBinding {
  private pending: PendingBind | undefined;

  constructor(private readonly stream: ClientStream) {}

  onBind(iq: Element): void {
    const stream = this.stream;
    const { ctx } = stream;
    const user = stream.user!;
    if (iq.attrs.id === undefined) {
      stream.stanzaError(iq, "bad-request", { text: "an iq needs an id" });
      return;
    }
    const requested = iq.getChild("bind", NS.BIND)!.getChildText("resource");
    let jid: Jid;
    if (requested) {
      try {
        jid = Jid.of(user.local, user.domain, requested);
      } catch {
        stream.stanzaError(iq, "bad-request", { text: "the resource is not a valid JID resourcepart" });
        return;
      }
    } else {
      jid = Jid.of(user.local, user.domain, randomToken(9));
    }
    const sid = ctx.newSid();
    const pending: PendingBind = { sid, iq, jid, timer: undefined };
    this.pending = pending;
    ctx.track(sid, stream);
    stream.setBusy(true);
    const sent = ctx.outlet.send(sessionEnvelope({
      type: "start", id: sid, from: ctx.address, to: jid.bareString(), sid, jid: jid.toString(),
    }));
    if (!sent) {
      this.failed(sid, "internal-server-error", "wait", "no router reachable");
      return;
    }
    pending.timer = setTimeout(() => {
      stream.log.warn({ sid }, "the session manager did not answer the session start");
      // It may still register the session later; make sure it forgets it.
      ctx.outlet.send(sessionEnvelope({ type: "end", from: ctx.address, to: jid.bareString(), sid, reason: "bind timed out" }));
      this.failed(sid, "internal-server-error", "wait", "the session manager did not answer");
    }, ctx.config.limits.bindTimeoutMs);
  }

  /** The SM registered the session: answer the bind. False when no bind waits for `sid`. */
  started(sid: string): boolean {
    const stream = this.stream;
    const b = this.pending;
    if (!b || b.sid !== sid || !stream.conn.isOpen) return false;
    clearTimeout(b.timer);
    this.pending = undefined;
    const full = b.jid.toString();
    stream.adoptSession(sid, b.jid);
    stream.log.info({ jid: full }, "session started");
    stream.reply(xml("iq", { type: "result", id: b.iq.attrs.id }, xml("bind", { xmlns: NS.BIND }, xml("jid", {}, full))));
    stream.setBusy(false);
    return true;
  }

  /** The SM (or the router) refused the session start. */
  failed(sid: string, condition: string | undefined, type?: StanzaErrorType, text?: string): void {
    const stream = this.stream;
    const b = this.pending;
    if (!b || b.sid !== sid) return;
    clearTimeout(b.timer);
    this.pending = undefined;
    stream.ctx.untrack(sid, stream);
    if (!stream.conn.isOpen) return;
    stream.log.info({ sid, condition, text }, "resource binding failed");
    const err = errorElement(stanzaCondition(condition), { ...(type ? { type } : {}), ...(text ? { text } : {}) });
    stream.reply(xml("iq", { type: "error", id: b.iq.attrs.id }, err));
    stream.setBusy(false);
  }

  /** The stream is closing: a bind still waiting is given up; returns it, so the SM can be told. */
  abandon(): { sid: string; jid: Jid } | undefined {
    const b = this.pending;
    if (!b) return undefined;
    clearTimeout(b.timer);
    this.pending = undefined;
    return b;
  }
}
