/**
 * The session manager's core: sessions, the per-user order of work, and the
 * dispatch of every stanza to the modules' events. It knows no feature;
 * src/modules/*.ts do (one file per feature, loaded by name).
 */
import type { Logger } from "pino";
import { Jid } from "@jabberfarm/jid";
import {
  ENVELOPE_NS, EnvelopeError, explicitClientStanza, readRoute, readSession, routeEnvelope, sessionEnvelope, type SessionEnvelope,
} from "@jabberfarm/envelope";
import type { Storage } from "@jabberfarm/xdb";
import {
  canBounce, stanzaErrorReply, xml, type Element, type StanzaErrorCondition,
} from "@jabberfarm/xml";
import type { SmConfig } from "./config.js";
import { rendezvousPick, rendezvousSeed, type RendezvousCandidate } from "@jabberfarm/component";
import { Hooks, type Handler, type SmEvents } from "./hooks.js";
import { RosterManager } from "./roster-manager.js";
import { Session } from "./session.js";
import { SessionRegistry } from "./sessions.js";

/** What the SM needs from its router links: a way out. Stanzas in arrive through `handle`. */
export interface StanzaOutlet {
  send(text: string): boolean;
}

export interface Identity {
  category: string;
  type: string;
  name?: string;
}

/** The API every module gets (like prosody's moduleapi): events, state, ways to send. */
export interface ModuleApi {
  readonly domain: string;
  readonly instance: string;
  /** This process's own address, `domain/instance`. */
  readonly address: string;
  readonly config: SmConfig;
  readonly log: Logger;
  readonly storage: Storage;
  readonly sessions: SessionRegistry;
  readonly roster: RosterManager;
  on<E extends keyof SmEvents & string>(event: E, handler: Handler<SmEvents[E]>, priority?: number): void;
  /** Advertise a feature in the server's disco#info. */
  addFeature(ns: string): void;
  features(): readonly string[];
  identities(): readonly Identity[];
  /** Write a stanza to one session's client. */
  toSession(session: Session, stanza: Element | string): void;
  /**
   * Send a stanza on its way by its `to`: straight to the session when it is
   * a full JID bound here; into inbound processing here when the recipient
   * is a user this SM owns (pass the parsed stanza with its text to allow
   * that); else through the router (another SM, a component, elsewhere).
   */
  send(stanza: Element | string, parsed?: Element): void;
  /** Answer an iq with a result (optionally with a payload). */
  result(iq: Element, payload?: Element): void;
  /** Answer a stanza with an error, unless it is an error itself. */
  error(stanza: Element, condition: StanzaErrorCondition, text?: string): void;
  /** End a session with a stream error (conflict, not-authorized...). */
  kick(session: Session, condition: string, reason?: string): Promise<void>;
  /** Run `fn` after every earlier piece of work for `user` (their stanzas are handled in order). */
  serial<T>(user: string, fn: () => Promise<T>): Promise<T>;
  /** Whether an account exists (online users are known without a storage round trip). */
  accountExists(user: string): Promise<boolean>;
  /** A session sent its first available presence: fires `presence/initial` (offline delivery...). */
  initialPresence(session: Session): Promise<void>;
  /**
   * Handle envelope elements named `local` (urn:jabberfarm:envelope:1) that
   * the core does not know, e.g. the operator's queries. Throwing answers
   * the sender with `bad-request`.
   */
  onEnvelope(local: string, handler: (el: Element) => void): void;
}

export type SmModule = (api: ModuleApi) => void;

/** Makes an element's text explicit about `jabber:client`, as envelopes require. */
function clientText(stanza: Element | string): string {
  if (typeof stanza === "string") return stanza;
  if (stanza.attrs.xmlns === undefined) stanza.attrs.xmlns = "jabber:client";
  return stanza.toString();
}

export class SessionManager implements ModuleApi {
  readonly domain: string;
  readonly instance: string;
  readonly address: string;
  readonly sessions = new SessionRegistry();
  readonly roster: RosterManager;
  private readonly hooks = new Hooks();
  private readonly featureList: string[] = [];
  private readonly envelopeHandlers = new Map<string, (el: Element) => void>();
  private readonly queues = new Map<string, Promise<unknown>>();
  /** The SMs serving our domain, as the routers announce them (null until the first notice). */
  private members: RendezvousCandidate[] | null = null;

  constructor(
    readonly config: SmConfig,
    readonly storage: Storage,
    private readonly outlet: StanzaOutlet,
    readonly log: Logger,
    modules: ReadonlyArray<SmModule>,
  ) {
    this.domain = config.domain;
    this.instance = config.instance;
    this.address = `${config.domain}/${config.instance}`;
    this.roster = new RosterManager(storage, this.sessions, (s, el) => this.toSession(s, el));
    for (const m of modules) m(this);
  }

  // ---- ModuleApi ------------------------------------------------------------

  on<E extends keyof SmEvents & string>(event: E, handler: Handler<SmEvents[E]>, priority = 0): void {
    this.hooks.on(event, handler, priority);
  }

  addFeature(ns: string): void {
    if (!this.featureList.includes(ns)) this.featureList.push(ns);
  }

  features(): readonly string[] {
    return this.featureList;
  }

  onEnvelope(local: string, handler: (el: Element) => void): void {
    this.envelopeHandlers.set(local, handler);
  }

  identities(): readonly Identity[] {
    return [{ category: "server", type: "im", name: "jabberfarm" }];
  }

  toSession(session: Session, stanza: Element | string): void {
    this.outlet.send(routeEnvelope(this.address, session.c2s, session.sid, clientText(stanza)));
  }

  send(stanza: Element | string, parsed?: Element): void {
    const el = typeof stanza === "string" ? parsed : stanza;
    const text = clientText(stanza);
    const to = el?.attrs.to;
    if (el !== undefined && to !== undefined) {
      const jid = Jid.tryParse(to);
      if (jid && jid.domain === this.domain && jid.local !== "") {
        const user = jid.bareString();
        const s = jid.resource === "" ? undefined : this.sessions.byFullJid(user, jid.resource);
        if (s) {
          this.toSession(s, text);
          return;
        }
        // One of our own users: handle it here rather than through the router
        // and back (the routers would bring it to us anyway).
        const from = el.attrs.from === undefined ? null : Jid.tryParse(el.attrs.from);
        if (from !== null && this.ownsUser(user)) {
          void this.serial(user, () => this.inbound(el, text, user, jid, from)).catch((err: unknown) => this.failed(el, err));
          return;
        }
      }
    }
    this.outlet.send(text);
  }

  /** The routers' list of the SMs serving our domain changed. */
  setMembers(instances: readonly string[]): void {
    this.members = instances.map((id) => ({ rendezvousId: id, rendezvousSeed: rendezvousSeed(id) }));
  }

  /** Whether the routers bring `user`'s stanzas to this SM (same rule, same list). Unknown list: no. */
  ownsUser(user: string): boolean {
    return this.members !== null && rendezvousPick(this.members, user)?.rendezvousId === this.instance;
  }

  result(iq: Element, payload?: Element): void {
    this.send(xml("iq", { type: "result", id: iq.attrs.id, to: iq.attrs.from, from: iq.attrs.to ?? this.bareOf(iq.attrs.from) }, payload));
  }

  error(stanza: Element, condition: StanzaErrorCondition, text?: string): void {
    if (!canBounce(stanza)) return;
    const reply = stanzaErrorReply(stanza, condition, text === undefined ? {} : { text });
    // A stanza to our own account (no 'to') gets its answer from the bare JID.
    if (reply.attrs.from === undefined) reply.setAttr("from", this.bareOf(stanza.attrs.from));
    this.send(reply);
  }

  async kick(session: Session, condition: string, reason?: string): Promise<void> {
    this.outlet.send(sessionEnvelope({ type: "kick", from: this.address, to: session.c2s, sid: session.sid, condition, reason }));
    if (this.sessions.remove(session.sid)) await this.ended(session);
  }

  serial<T>(user: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.queues.get(user) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => undefined);
    this.queues.set(user, tail);
    void tail.then(() => {
      if (this.queues.get(user) === tail) this.queues.delete(user);
    });
    return run;
  }

  async accountExists(user: string): Promise<boolean> {
    return this.sessions.isOnline(user) || this.storage.accountExists(user);
  }

  private bareOf(jid: string | undefined): string | undefined {
    if (jid === undefined) return undefined;
    return Jid.tryParse(jid)?.bareString() ?? undefined;
  }

  // ---- what arrives from the routers ---------------------------------------

  /** One element from a router link. Never throws: failures are logged and answered. */
  handle(el: Element, raw: string): void {
    if (el.ns === ENVELOPE_NS) {
      this.handleEnvelope(el, raw);
      return;
    }
    if (el.name !== "message" && el.name !== "presence" && el.name !== "iq") {
      this.log.warn({ element: el.name, from: el.attrs.from }, "dropped an unknown element from the router");
      return;
    }
    const to = el.attrs.to === undefined ? null : Jid.tryParse(el.attrs.to);
    const from = el.attrs.from === undefined ? null : Jid.tryParse(el.attrs.from);
    if (to === null || from === null) {
      this.error(el, "jid-malformed");
      return;
    }
    if (to.local === "") {
      void this.hostStanza(el, raw, from).catch((err: unknown) => this.failed(el, err));
      return;
    }
    // A stanza from a component, or relayed by another SM, reaches the client
    // as it is: only its content namespace is made explicit.
    const text = explicitClientStanza(el, raw, el.attrs.from!);
    const user = to.bareString();
    void this.serial(user, () => this.inbound(el, text, user, to, from)).catch((err: unknown) => this.failed(el, err));
  }

  private handleEnvelope(el: Element, raw: string): void {
    try {
      if (el.local === "route") {
        const r = readRoute(el, raw);
        const session = this.sessions.get(r.sid);
        if (!session) {
          // c2s has a session we do not know (we restarted): end it so the client reconnects.
          this.outlet.send(sessionEnvelope({ type: "kick", from: this.address, to: r.from, sid: r.sid, condition: "reset", reason: "unknown session" }));
          return;
        }
        if (r.stanza.attrs.from !== session.full) {
          this.log.warn({ sid: r.sid, from: r.stanza.attrs.from }, "route with a from that is not its session; dropped");
          return;
        }
        void this.serial(session.bare, () => this.outbound(r.stanza, r.stanzaRaw, session))
          .catch((err: unknown) => this.failed(r.stanza, err));
      } else if (el.local === "session") {
        const s = readSession(el);
        const user = Jid.tryParse(s.jid ?? s.to)?.bareString() ?? s.to;
        void this.serial(user, () => this.sessionControl(s)).catch((err: unknown) => {
          this.log.error({ err, sid: s.sid }, "session control failed");
        });
      } else if (el.local === "xdb") {
        this.onXdb?.(el);
      } else if (this.envelopeHandlers.has(el.local)) {
        this.envelopeHandlers.get(el.local)!(el);
      } else {
        throw new EnvelopeError(`unknown envelope <${el.local}/>`);
      }
    } catch (err) {
      this.log.warn({ err: (err as Error).message, from: el.attrs.from }, "invalid envelope");
      if (el.attrs.type !== "error" && el.attrs.from) {
        this.outlet.send(stanzaErrorReply(el, "bad-request", { text: (err as Error).message, includePayload: false }).toString());
      }
    }
  }

  /** Replies for storage requests, when storage goes through xdb. */
  onXdb: ((el: Element) => void) | undefined;

  private async sessionControl(e: SessionEnvelope): Promise<void> {
    switch (e.type) {
      case "start": {
        const jid = Jid.tryParse(e.jid ?? "");
        if (!jid || jid.resource === "" || jid.domain !== this.domain) {
          this.outlet.send(sessionEnvelope({ type: "error", id: e.id, from: this.address, to: e.from, sid: e.sid, condition: "jid-malformed" }));
          return;
        }
        const session = new Session(e.sid, jid, e.from);
        const old = this.sessions.add(session);
        if (old) {
          this.outlet.send(sessionEnvelope({ type: "kick", from: this.address, to: old.c2s, sid: old.sid, condition: "conflict", reason: "replaced by a new session" }));
          await this.ended(old);
        }
        this.outlet.send(sessionEnvelope({ type: "started", id: e.id, from: this.address, to: e.from, sid: e.sid }));
        this.log.debug({ sid: e.sid, jid: session.full }, "session started");
        await this.hooks.notify("session/start", { session });
        return;
      }
      case "end": {
        const session = this.sessions.get(e.sid);
        if (!session) return;
        this.sessions.remove(e.sid);
        await this.ended(session);
        return;
      }
      case "error":
        // A kick or route for a c2s that is gone, bounced by the router.
        this.log.debug({ sid: e.sid, condition: e.condition }, "session envelope bounced");
        return;
      default:
        this.log.warn({ type: e.type, sid: e.sid }, "unexpected session envelope for an SM");
    }
  }

  private async ended(session: Session): Promise<void> {
    this.log.debug({ sid: session.sid, jid: session.full }, "session ended");
    await this.hooks.notify("session/end", { session });
    if (!this.sessions.isOnline(session.bare)) this.roster.evict(session.bare);
  }

  async initialPresence(session: Session): Promise<void> {
    await this.hooks.notify("presence/initial", { session });
  }

  // ---- outbound: from a session --------------------------------------------

  private async outbound(stanza: Element, raw: string, session: Session): Promise<void> {
    switch (stanza.name) {
      case "iq":
        await this.outboundIq(stanza, raw, session);
        return;
      case "message":
        if (!(await this.hooks.fire("message/out", { stanza, raw, session }))) {
          if (stanza.attrs.to === undefined) return; // to our own account: nothing else knows what to do
          this.send(raw, stanza);
        }
        return;
      case "presence":
        if (!(await this.hooks.fire("presence/out", { stanza, raw, session })) && stanza.attrs.to !== undefined) this.send(raw, stanza);
        return;
      default:
        this.log.debug({ sid: session.sid, element: stanza.name }, "unknown stanza from a session");
    }
  }

  private async outboundIq(stanza: Element, raw: string, session: Session): Promise<void> {
    const type = stanza.attrs.type;
    const request = type === "get" || type === "set";
    if (request && (stanza.getChildren().length !== 1 || stanza.attrs.id === undefined)) {
      this.error(stanza, "bad-request", "an iq get or set carries exactly one payload and an id");
      return;
    }
    const to = stanza.attrs.to === undefined ? null : Jid.tryParse(stanza.attrs.to);
    if (stanza.attrs.to !== undefined && to === null) {
      this.error(stanza, "jid-malformed");
      return;
    }
    const payload = stanza.firstElement();
    if (to === null || (to.local === session.jid.local && to.domain === session.jid.domain && to.resource === "")) {
      if (!request || !payload) return;
      if (!(await this.hooks.fire(`iq/self/${payload.ns}`, { stanza, raw, session }))) this.error(stanza, "service-unavailable");
      return;
    }
    if (to.local === "" && to.domain === this.domain && to.resource === "") {
      if (!request || !payload) return;
      if (!(await this.hooks.fire(`iq/host/${payload.ns}`, { stanza, raw, from: session.jid, session }))) {
        this.error(stanza, "service-unavailable");
      }
      return;
    }
    this.send(raw, stanza);
  }

  // ---- inbound: to one of our users ------------------------------------------

  private async inbound(stanza: Element, raw: string, user: string, to: Jid, from: Jid): Promise<void> {
    const event = { stanza, raw, user, to, from };
    if (stanza.name === "iq") {
      const type = stanza.attrs.type;
      const request = type === "get" || type === "set";
      if (to.resource !== "") {
        const s = this.sessions.byFullJid(user, to.resource);
        if (s) this.toSession(s, raw);
        else if (request) this.error(stanza, "service-unavailable");
        return;
      }
      const payload = stanza.firstElement();
      if (!request || !payload) return;
      if (!(await this.accountExists(user)) || !(await this.hooks.fire(`iq/bare/${payload.ns}`, event))) {
        this.error(stanza, "service-unavailable");
      }
      return;
    }
    if (stanza.name === "message") {
      if (!(await this.hooks.fire("message/in", event))) {
        const s = to.resource === "" ? undefined : this.sessions.byFullJid(user, to.resource);
        if (s) this.toSession(s, raw);
        else this.error(stanza, "service-unavailable");
      }
      return;
    }
    if (stanza.name === "presence") await this.hooks.fire("presence/in", event);
  }

  private async hostStanza(stanza: Element, raw: string, from: Jid): Promise<void> {
    if (stanza.name !== "iq") return; // presence and messages to the server itself are not for anybody
    const type = stanza.attrs.type;
    const payload = stanza.firstElement();
    if ((type !== "get" && type !== "set") || !payload) return;
    if (!(await this.hooks.fire(`iq/host/${payload.ns}`, { stanza, raw, from }))) this.error(stanza, "service-unavailable");
  }

  private failed(stanza: Element, err: unknown): void {
    this.log.error({ err, from: stanza.attrs.from, to: stanza.attrs.to, id: stanza.attrs.id }, "stanza handling failed");
    if (stanza.name === "iq") this.error(stanza, "internal-server-error");
  }
}
