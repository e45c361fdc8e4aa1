/**
 * Stream management (XEP-0198) and client state (XEP-0352), the c2s's half
 * (docs/stream-management.md). The protocol is spoken here; what must
 * outlive this process (the stanzas the client has not acknowledged, the
 * counts) lives with the session in its SM, which this side keeps informed
 * with `<session/>` envelopes: `sm-enable`, `sm-ack`, `detach`, `resume`,
 * `csi`.
 *
 * - The client's count (our `<a h/>`): stanzas of the client that the SM
 *   confirmed (handled), in order; one still in flight is not counted, so
 *   a client never believes something handled that a crash could lose.
 * - Our count: stanzas written to the client since `<enabled/>`, to check
 *   its `<a h/>` and to ask for acknowledgements (`<r/>`) every few
 *   stanzas and when it stays quiet.
 * - A stanza this c2s answers itself for a managed session (an error) goes
 *   through the SM (`<route type='reflect'/>`), so the SM's numbering stays
 *   the client's.
 */
import { sessionEnvelope, type SessionEnvelope } from "@jabberfarm/envelope";
import { Jid } from "@jabberfarm/jid";
import { NS, StreamError, escapeAttr, type Element } from "@jabberfarm/xml";
import type { ClientStream } from "./client-stream.js";

export const NS_SM = "urn:xmpp:sm:3";
export const NS_CSI = "urn:xmpp:csi:0";
const MOD = 2 ** 32;
const diff = (a: number, b: number): number => (((a - b) % MOD) + MOD) % MOD;
/** Ask the client for an acknowledgement after this many unacknowledged stanzas. */
const ACK_EVERY = 5;
/** ...or when some have waited this long. */
const ACK_AFTER_MS = 30_000;

function failed(condition: string, h?: number, extra = ""): string {
  return `<failed xmlns='${NS_SM}'${h === undefined ? "" : ` h='${h}'`}><${condition} xmlns='${NS.STANZA_ERRORS}'/>${extra}</failed>`;
}

export class StreamManagement {
  /** `<enabled/>` was sent: our count and the client's run. */
  enabled = false;
  resumable = false;
  private enabling = false;
  /** Stanzas written to the client since `<enabled/>` (the last one's number). */
  private out = 0;
  /** The client's last `<a h/>`. */
  private acked = 0;
  private requested = false;
  private oldestUnackedAt = 0;
  /** The client's stanzas handled before `routes[0]`... */
  private inBase = 0;
  /** ...and those routed since, by their route number (0: handled here at once), in order. */
  private readonly routes: number[] = [];
  private resuming: { sid: string; previd: string; h: number; timer: NodeJS.Timeout } | undefined;

  constructor(private readonly stream: ClientStream) {}

  /** A nonza of XEP-0198 or XEP-0352; true when it was one. */
  onNonza(el: Element): boolean {
    // Only what the SMs' modules offer (their stream features) is spoken.
    const offered = this.stream.ctx.smStreamFeatures;
    if (el.ns === NS_CSI) {
      if (!offered.includes(NS_CSI)) return false;
      this.csi(el);
      return true;
    }
    if (el.ns !== NS_SM) return false;
    if (!offered.includes(NS_SM)) {
      this.stream.send(failed("feature-not-implemented"));
      return true;
    }
    switch (el.local) {
      case "enable":
        this.enable(el);
        return true;
      case "resume":
        this.resume(el);
        return true;
      case "r":
        if (this.enabled) this.stream.send(`<a xmlns='${NS_SM}' h='${this.handled()}'/>`);
        else this.stream.send(failed("unexpected-request"));
        return true;
      case "a":
        this.ack(el);
        return true;
      default:
        this.stream.fail(new StreamError("unsupported-stanza-type", `<${el.local}/> is not part of stream management`));
        return true;
    }
  }

  // ---- enabling ------------------------------------------------------------------------

  private enable(el: Element): void {
    const stream = this.stream;
    const s = stream.bound;
    // XEP-0198 §3: after resource binding, once.
    if (s === undefined || this.enabled || this.enabling) {
      stream.send(failed("unexpected-request"));
      return;
    }
    this.enabling = true;
    const resume = el.attrs.resume === "true" || el.attrs.resume === "1";
    stream.ctx.outlet.send(sessionEnvelope({
      type: "sm-enable", id: s.sid, from: stream.ctx.address, to: s.bare, sid: s.sid, resume: resume ? "true" : undefined, max: el.attrs.max,
    }));
  }

  /** The SM answered `sm-enabled` (in order with the routes before it): from now on everything counts. */
  enabledBySm(e: SessionEnvelope): void {
    const stream = this.stream;
    if (!this.enabling || !stream.conn.isOpen) return;
    this.enabling = false;
    this.enabled = true;
    this.resumable = e.previd !== undefined;
    const resume = this.resumable ? ` id='${escapeAttr(e.previd!)}' resume='true' max='${escapeAttr(e.max ?? "300")}'` : "";
    stream.send(`<enabled xmlns='${NS_SM}'${resume}/>`);
    stream.log.info({ resumable: this.resumable, max: e.max }, "stream management enabled");
  }

  refusedBySm(condition: string | undefined): void {
    this.enabling = false;
    this.stream.send(failed(condition === "unexpected-request" ? "unexpected-request" : "undefined-condition"));
  }

  // ---- counting --------------------------------------------------------------------------

  /** A client stanza went to the SM as route number `n` (0 when answered here). */
  routed(n: number): void {
    if (this.enabled) this.routes.push(n);
  }

  /** How many of the client's stanzas are handled: confirmed by the SM, in order. */
  private handled(): number {
    const ctx = this.stream.ctx;
    while (this.routes.length > 0 && (this.routes[0] === 0 || ctx.isConfirmed(this.routes[0]!))) {
      this.routes.shift();
      this.inBase = (this.inBase + 1) % MOD;
    }
    return this.inBase;
  }

  /** A stanza was written to the client. */
  written(): void {
    if (!this.enabled) return;
    if (this.out === this.acked) this.oldestUnackedAt = Date.now();
    this.out = (this.out + 1) % MOD;
    if (!this.requested && diff(this.out, this.acked) >= ACK_EVERY) this.request();
  }

  private request(): void {
    this.requested = true;
    this.stream.send(`<r xmlns='${NS_SM}'/>`);
  }

  /** From the stream's timer: stanzas that waited too long for an acknowledgement are asked about. */
  tick(now: number): void {
    if (this.enabled && !this.requested && this.out !== this.acked && now - this.oldestUnackedAt > ACK_AFTER_MS) this.request();
  }

  private ack(el: Element): void {
    const stream = this.stream;
    const h = Number(el.attrs.h);
    if (!this.enabled || !Number.isInteger(h) || h < 0 || h >= MOD) {
      stream.fail(new StreamError("undefined-condition", "an <a/> needs stream management enabled and an h of 0 to 2^32-1"));
      return;
    }
    if (diff(h, this.acked) > diff(this.out, this.acked)) {
      // XEP-0198 §5: acknowledging more than was sent is an error of the client's.
      stream.log.warn({ h, sent: this.out }, "client acknowledged more than it was sent");
      stream.conn.close(new StreamError("undefined-condition", `h ${h} is more than the ${this.out} stanzas sent`));
      return;
    }
    this.requested = false;
    this.acked = h;
    this.oldestUnackedAt = Date.now();
    const s = stream.bound!;
    stream.ctx.outlet.send(sessionEnvelope({ type: "sm-ack", from: stream.ctx.address, to: s.bare, sid: s.sid, h: String(h) }));
  }

  // ---- resuming --------------------------------------------------------------------------

  private resume(el: Element): void {
    const stream = this.stream;
    const previd = el.attrs.previd;
    const h = Number(el.attrs.h);
    // XEP-0198 §5: after authentication, instead of binding.
    if (stream.user === undefined || stream.bound !== undefined || this.resuming !== undefined || this.enabling) {
      stream.send(failed("unexpected-request"));
      return;
    }
    if (!previd || !Number.isInteger(h) || h < 0 || h >= MOD) {
      stream.send(failed("bad-request"));
      return;
    }
    const { ctx } = stream;
    const sid = ctx.newSid();
    ctx.track(sid, stream);
    stream.setBusy(true);
    const timer = setTimeout(() => this.resumeFailed(sid, "remote-server-timeout"), ctx.config.limits.bindTimeoutMs);
    this.resuming = { sid, previd, h, timer };
    const sent = ctx.outlet.send(sessionEnvelope({
      type: "resume", id: sid, from: ctx.address, to: stream.user.bareString(), sid, previd, h: String(h),
    }));
    if (!sent) this.resumeFailed(sid, "remote-server-timeout");
  }

  /** The SM moved the session here: it answers for the client's stanzas with `h`, and sends what was not acknowledged after this. */
  resumedBySm(e: SessionEnvelope): boolean {
    const stream = this.stream;
    const r = this.resuming;
    if (r === undefined || r.sid !== e.sid || !stream.conn.isOpen) return false;
    clearTimeout(r.timer);
    this.resuming = undefined;
    const jid = Jid.tryParse(e.jid ?? "");
    if (jid === null) {
      this.resumeFailed(e.sid, "undefined-condition");
      return false;
    }
    stream.adoptSession(e.sid, jid);
    this.enabled = true;
    this.resumable = true;
    this.out = r.h;
    this.acked = r.h;
    this.inBase = Number(e.h ?? 0) % MOD;
    stream.send(`<resumed xmlns='${NS_SM}' previd='${escapeAttr(r.previd)}' h='${this.inBase}'/>`);
    stream.log.info({ jid: jid.toString(), h: r.h }, "stream resumed");
    stream.setBusy(false);
    return true;
  }

  resumeFailed(sid: string, condition: string | undefined, sent?: string): void {
    const stream = this.stream;
    const r = this.resuming;
    if (r === undefined || r.sid !== sid) return;
    clearTimeout(r.timer);
    this.resuming = undefined;
    stream.ctx.untrack(sid, stream);
    if (!stream.conn.isOpen) return;
    stream.log.info({ condition }, "stream resumption failed");
    if (condition === "handled-count-too-high") {
      stream.send(failed("undefined-condition", undefined, `<handled-count-too-high xmlns='${NS_SM}' h='${r.h}' send-count='${escapeAttr(sent ?? "0")}'/>`));
    } else {
      stream.send(failed(condition === "bad-request" || condition === "remote-server-timeout" ? condition : "item-not-found"));
    }
    stream.setBusy(false);
  }

  // ---- client state ------------------------------------------------------------------------

  private csi(el: Element): void {
    const stream = this.stream;
    const s = stream.bound;
    if (s === undefined || (el.local !== "active" && el.local !== "inactive")) return;
    stream.ctx.outlet.send(sessionEnvelope({ type: "csi", from: stream.ctx.address, to: s.bare, sid: s.sid, state: el.local }));
  }

  /** The stream ends: whether the SM should keep the session for the client to resume (else it ends). */
  keepForResumption(reason: { clean?: boolean; error?: { condition: string }; remote?: boolean; socketError?: string }): boolean {
    if (!this.enabled || !this.resumable || reason.clean) return false;
    if (reason.socketError !== undefined || reason.error === undefined) return true;
    // Ended by us for the farm's sake (a drain, a redirect) or because the client fell silent: it may come back.
    return !reason.remote && ["see-other-host", "system-shutdown", "connection-timeout"].includes(reason.error.condition);
  }

  stop(): void {
    if (this.resuming) clearTimeout(this.resuming.timer);
  }
}
