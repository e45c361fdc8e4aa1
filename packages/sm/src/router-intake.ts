/**
 * What arrives from the routers (docs/envelope.md, the SM's side): routes
 * from sessions, relays from other SMs, acknowledgements, session control,
 * storage answers, and plain stanzas from components and other domains.
 * Never throws: a failure is logged and answered.
 */
import type { Logger } from "pino";
import { Jid } from "@jabberfarm/jid";
import {
  ENVELOPE_NS, EnvelopeError, type SessionEnvelope as Control, explicitClientStanza, readAck, readRelay, readRoute, readSession, sessionEnvelope, type SessionEnvelope,
  type ConfirmedReceiver, type ConfirmedSender,
} from "@jabberfarm/envelope";
import { stanzaErrorReply, type Element } from "@jabberfarm/xml";
import { isPromise, type ConfirmHolds } from "./events.js";
import { Session } from "./session.js";
import type { SessionRegistry } from "./session-registry.js";
import type { Ownership } from "./ownership.js";
import type { StanzaPath } from "./stanza-path.js";
import type { UserQueue } from "./user-queue.js";

/** What the intake needs from the SM around it. */
export interface IntakeCore {
  readonly domain: string;
  readonly address: string;
  readonly log: Logger;
  /** Sessions one account may have at once (config `maxSessionsPerUser`). */
  readonly maxSessionsPerUser: number;
  readonly queue: UserQueue;
  readonly sessions: SessionRegistry;
  readonly ownership: Ownership;
  readonly path: StanzaPath;
  readonly confirmed: ConfirmedSender;
  readonly receiver: ConfirmedReceiver;
  toRouter(text: string): void;
  error(stanza: Element, condition: "service-unavailable"): void;
  failed(stanza: Element, err: unknown): void;
  /**
   * Registers a new session (kicking one with the same full JID), calls
   * `started` (c2s may answer the bind), then fires `session/bound`.
   */
  startSession(session: Session, started: () => void): Promise<void>;
  /** A session is gone from the registry: Redis, `session/ended`. */
  ended(session: Session): Promise<void>;
  /** The handler a module registered for a session control type (ModuleApi.onSessionControl). */
  sessionControl(type: string): ((e: Control, session: Session | undefined) => void | Promise<void>) | undefined;
  /** Ends, in its user's queue, a session whose client cannot be reached any more. */
  endLost(session: Session, why: string): void;
  endLostNow(session: Session, why: string): Promise<void>;
  /** Handlers of envelope elements the core does not know (ModuleApi.onEnvelope). */
  envelopeHandler(local: string): ((el: Element) => void) | undefined;
  /** Storage answers, when storage goes through xdb. */
  onXdb: ((el: Element) => void) | undefined;
}

export class RouterIntake {
  constructor(private readonly core: IntakeCore) {}

  /** One element from a router link. */
  handle(el: Element, raw: string): void {
    if (el.ns === ENVELOPE_NS) {
      this.envelope(el, raw);
      return;
    }
    if (el.name !== "message" && el.name !== "presence" && el.name !== "iq") {
      this.core.log.warn({ element: el.name, from: el.attrs.from }, "dropped an unknown element from the router");
      return;
    }
    const to = el.attrs.to === undefined ? null : Jid.tryParse(el.attrs.to);
    const from = el.attrs.from === undefined ? null : Jid.tryParse(el.attrs.from);
    if (to === null || from === null) {
      if (el.attrs.type !== "error" && el.attrs.from) this.core.toRouter(stanzaErrorReply(el, "jid-malformed").toString());
      return;
    }
    void this.plain(el, raw, to, from);
  }

  /** A stanza to one of our users or to the server, from a component or another SM; settles when handled. */
  private plain(el: Element, raw: string, to: Jid, from: Jid, holds?: ConfirmHolds): Promise<void> {
    try {
      if (to.local === "") return Promise.resolve(this.core.path.hostIq(el, raw, from, undefined)).catch((err: unknown) => this.core.failed(el, err));
      // It reaches the client as it is: only its content namespace is made explicit.
      const text = explicitClientStanza(el, raw, el.attrs.from!);
      return Promise.resolve(this.core.path.inboundQueued(el, text, to.bareString(), to, from, holds));
    } catch (err) {
      this.core.failed(el, err);
      return Promise.resolve();
    }
  }

  /**
   * Runs `work` unless the confirmed element is a copy seen before;
   * acknowledges once it settled and, after it, what its handlers pushed to
   * `holds` (events.ts, ConfirmHolds: the archive's writes).
   */
  private confirmedWork(el: Element, work: (holds: ConfirmHolds) => void | Promise<void>, fromSession = false): void {
    const c = this.core.receiver.receive(el.attrs.from!, el.attrs.seq, el.attrs.low);
    if (c?.receipt === "duplicate") return;
    let r: void | Promise<void>;
    const holds: ConfirmHolds = [];
    try {
      r = work(holds);
    } catch (err) {
      r = undefined;
      this.core.log.error({ err }, "a route's handling failed");
    }
    if (c === undefined) return;
    const ticket = c.ticket;
    // Too much of what we sent is unacknowledged (a c2s or SM behind us):
    // the session's c2s hears of this route later, and pauses the session
    // once its own window fills. Only sessions' routes: an SM's relay is
    // acknowledged regardless, so two SMs cannot wait on each other.
    if (fromSession && this.core.confirmed.full) holds.push(this.core.confirmed.whenOpen());
    const ack = (): void => this.core.receiver.handled(ticket);
    const handled = (): void => {
      if (holds.length === 0) ack();
      else if (holds.length === 1) holds[0]!.then(ack, ack);
      else void Promise.allSettled(holds).then(ack);
    };
    if (isPromise(r)) r.then(handled, handled);
    else handled();
  }

  private envelope(el: Element, raw: string): void {
    try {
      switch (el.local) {
        case "route":
          this.route(el, raw);
          return;
        case "ack":
          this.core.confirmed.acknowledge(readAck(el, this.core.confirmed.epoch));
          return;
        case "session": {
          const s = readSession(el);
          const user = Jid.tryParse(s.jid ?? s.to)?.bareString() ?? s.to;
          void this.core.queue.serial(user, () => this.sessionControl(s)).catch((err: unknown) => {
            this.core.log.error({ err, sid: s.sid }, "session control failed");
          });
          return;
        }
        case "xdb":
          this.core.onXdb?.(el);
          return;
        default: {
          const handler = this.core.envelopeHandler(el.local);
          if (handler === undefined) throw new EnvelopeError(`unknown envelope <${el.local}/>`);
          handler(el);
        }
      }
    } catch (err) {
      this.core.log.warn({ err: (err as Error).message, from: el.attrs.from }, "invalid envelope");
      if (el.attrs.type !== "error" && el.attrs.from) {
        this.core.toRouter(stanzaErrorReply(el, "bad-request", { text: (err as Error).message, includePayload: false }).toString());
      }
    }
  }

  private route(el: Element, raw: string): void {
    if (el.attrs.type === "error") {
      this.bounced(el);
      return;
    }
    if (el.attrs.type === "reflect") {
      // A stanza the c2s made for its own session (an error it answered
      // locally): delivered like any other, so stream management counts it.
      const r = readRoute(el, raw);
      this.confirmedWork(el, () => {
        const session = this.core.sessions.get(r.sid);
        if (session !== undefined) this.core.path.deliver(session, r.stanza, r.stanzaRaw);
      });
      return;
    }
    if (el.attrs.sid === undefined) {
      // A stanza between users, from another SM.
      const r = readRelay(el, raw);
      const to = r.stanza.attrs.to === undefined ? null : Jid.tryParse(r.stanza.attrs.to);
      const from = r.stanza.attrs.from === undefined ? null : Jid.tryParse(r.stanza.attrs.from);
      if (to === null || from === null) throw new EnvelopeError("route: the carried stanza needs a valid to and from");
      this.confirmedWork(el, (holds) => this.plain(r.stanza, r.stanzaRaw, to, from, holds));
      return;
    }
    const r = readRoute(el, raw);
    const user = Jid.tryParse(r.stanza.attrs.from ?? "")?.bareString() ?? r.to;
    this.confirmedWork(el, (holds) => {
      try {
        const done = this.core.queue.run(user, () => this.fromSession(r.sid, r.from, r.stanza, r.stanzaRaw, holds));
        if (isPromise(done)) return done.catch((err: unknown) => this.core.failed(r.stanza, err));
      } catch (err) {
        this.core.failed(r.stanza, err);
      }
    }, true);
  }

  /** A stanza of a session, in its user's queue. */
  private fromSession(sid: string, c2s: string, stanza: Element, raw: string, holds: ConfirmHolds): void | Promise<void> {
    const session = this.core.sessions.get(sid);
    if (session !== undefined) return this.checked(session, stanza, raw, holds);
    // Perhaps a user who just moved to us from another SM.
    const user = Jid.tryParse(stanza.attrs.from ?? "")?.bareString();
    if (user !== undefined && this.core.ownership.mayAdopt(user)) {
      return this.core.ownership.adopt(user).then(() => {
        const s = this.core.sessions.get(sid);
        if (s !== undefined) return this.checked(s, stanza, raw, holds);
        this.unknownSession(sid, c2s);
      });
    }
    this.unknownSession(sid, c2s);
  }

  /** c2s has a session nobody knows (its SM restarted): end it so the client reconnects. */
  private unknownSession(sid: string, c2s: string): void {
    this.core.toRouter(sessionEnvelope({ type: "kick", from: this.core.address, to: c2s, sid, condition: "reset", reason: "unknown session" }));
  }

  private checked(session: Session, stanza: Element, raw: string, holds: ConfirmHolds): void | Promise<void> {
    if (stanza.attrs.from !== session.full) {
      this.core.log.warn({ sid: session.sid, from: stanza.attrs.from }, "route with a from that is not its session; dropped");
      return;
    }
    return this.core.path.fromSession(stanza, raw, session, holds);
  }

  /**
   * The router could not deliver one of our routes: the c2s of a session is
   * gone (the session ends), or no SM serves a stanza between users (its
   * sender gets the error). Either way it is answered: nothing to resend.
   */
  private bounced(el: Element): void {
    this.core.confirmed.settleBounce(el.attrs.seq);
    const stanza = el.getChildren().find((c) => c.local !== "error");
    const sid = el.attrs.sid;
    if (sid === undefined) {
      if (stanza) this.core.error(stanza, "service-unavailable");
      return;
    }
    const s = this.core.sessions.get(sid);
    // The session may have ended here already: a c2s that closes a stream
    // says `end` at once, then bounces what was still on its way to it.
    const to = stanza?.attrs.to === undefined ? null : Jid.tryParse(stanza.attrs.to);
    const user = s?.bare ?? (to !== null && to.domain === this.core.domain && to.local !== "" ? to.bareString() : undefined);
    if (user === undefined) return;
    void this.core.queue.serial(user, async () => {
      if (s) await this.core.endLostNow(s, "its c2s cannot be reached");
      // Kept for its client to resume (stream management): the stanza waits in its queue.
      if (s && this.core.sessions.get(s.sid) === s) return;
      // A message the session did not get goes where a message to the user
      // goes now (another resource, or offline storage): not lost with the c2s.
      if (stanza?.name === "message" && stanza.attrs.type !== "error" && stanza.attrs.type !== "groupchat") {
        const from = Jid.tryParse(stanza.attrs.from ?? "");
        if (from !== null) await this.core.path.inbound(stanza, stanza.toString(), user, Jid.parse(user), from);
      }
    }).catch((err: unknown) => this.core.log.error({ err, sid }, "ending a session failed"));
  }

  private async sessionControl(e: SessionEnvelope): Promise<void> {
    switch (e.type) {
      case "start": {
        const jid = Jid.tryParse(e.jid ?? "");
        if (!jid || jid.resource === "" || jid.domain !== this.core.domain) {
          this.core.toRouter(sessionEnvelope({ type: "error", id: e.id, from: this.core.address, to: e.from, sid: e.sid, condition: "jid-malformed" }));
          return;
        }
        // Perhaps the user's other sessions are on record from an SM that left.
        const user = jid.bareString();
        await this.core.ownership.adopt(user);
        // RFC 6120 §7.6.2.1: an account at its limit of resources gets resource-constraint;
        // a new session for a resource it holds replaces that one (§7.7.2.2) and adds none.
        const max = this.core.maxSessionsPerUser;
        if (this.core.sessions.of(user).length >= max && !this.core.sessions.byFullJid(user, jid.resource)) {
          this.core.log.info({ user, max }, "session refused: too many sessions for the account");
          this.core.toRouter(sessionEnvelope({
            type: "error", id: e.id, from: this.core.address, to: e.from, sid: e.sid, condition: "resource-constraint", reason: `at most ${max} sessions per account`,
          }));
          return;
        }
        await this.core.startSession(new Session(e.sid, jid, e.from), () => {
          this.core.toRouter(sessionEnvelope({ type: "started", id: e.id, from: this.core.address, to: e.from, sid: e.sid }));
        });
        return;
      }
      case "end": {
        const session = this.core.sessions.get(e.sid);
        if (!session) return;
        this.core.sessions.remove(e.sid);
        await this.core.ended(session);
        return;
      }
      case "reset": {
        // A c2s (re)started: its sessions are those whose id begins with `sid`; the others died with its previous run.
        for (const stale of [...this.core.sessions.all()]) {
          if (stale.c2s === e.from && !stale.sid.startsWith(e.sid)) this.core.endLost(stale, "its c2s restarted");
        }
        return;
      }
      case "error":
        // A kick or route for a c2s that is gone, bounced by the router.
        this.core.log.debug({ sid: e.sid, condition: e.condition }, "session envelope bounced");
        return;
      default: {
        const handler = this.core.sessionControl(e.type);
        if (handler === undefined) {
          this.core.log.warn({ type: e.type, sid: e.sid }, "unexpected session envelope for an SM");
          return;
        }
        // The user's sessions may be on record from an SM that left (a resumption after it died).
        const user = Jid.tryParse(e.jid ?? e.to)?.bareString();
        if (user !== undefined) await this.core.ownership.adopt(user);
        await handler(e, this.core.sessions.get(e.sid));
      }
    }
  }
}
