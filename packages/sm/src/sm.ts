/**
 * The session manager's core: sessions, the per-user order of work, and the
 * dispatch of every stanza to the modules' events. It knows no feature;
 * src/modules/*.ts do (one file per feature, loaded by name).
 */
import type { Logger } from "pino";
import { Jid } from "@jabberfarm/jid";
import {
  ConfirmedReceiver, ConfirmedSender, ENVELOPE_NS, EnvelopeError, explicitClientStanza, readAck, readRelay, readRoute, readSession,
  relayEnvelope, routeEnvelope, sessionEnvelope, type SessionEnvelope,
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
import type { SessionStore } from "./shared-sessions.js";

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
  private memberIds: ReadonlySet<string> = new Set();
  /** What we send to sessions and to other SMs, held until confirmed (docs/envelope.md, "Confirmation"). */
  readonly confirmed: ConfirmedSender;
  /** What c2s and other SMs send us confirmed: duplicates dropped, handled ones acknowledged. */
  readonly receiver: ConfirmedReceiver;
  /** The session registry in Redis, when the farm has one (several SMs). */
  store: SessionStore | undefined;
  /** Users whose sessions were looked up in Redis since our share last changed (absent there or adopted). */
  private readonly checked = new Set<string>();

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
    const out = (text: string): boolean => outlet.send(text);
    this.confirmed = new ConfirmedSender(out, {
      onGiveUp: (text, sends) => log.warn({ sends, stanza: text.slice(0, 200) }, "gave up a stanza: nobody confirmed it"),
    });
    this.receiver = new ConfirmedReceiver(this.address, out);
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
    const text = clientText(stanza);
    this.confirmed.send((c) => routeEnvelope(this.address, session.c2s, session.sid, text, c));
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
        // A user of another SM: the stanza travels confirmed, in a relay route.
        if (from !== null) {
          this.confirmed.send((c) => relayEnvelope(this.address, to, text, c));
          return;
        }
      }
    }
    this.outlet.send(text);
  }

  /**
   * The routers' list of the SMs serving our domain. When it changes, the
   * users whose owner changed move: those we no longer own leave our memory
   * (their sessions stay in Redis for the new owner), and we take over those
   * now ours from the SMs that left or that had them before.
   */
  setMembers(instances: readonly string[]): void {
    const before = this.memberIds;
    const now = new Set(instances);
    if (before.size === now.size && [...now].every((i) => before.has(i))) return;
    const first = this.members === null;
    this.members = instances.map((id) => ({ rendezvousId: id, rendezvousSeed: rendezvousSeed(id) }));
    this.memberIds = now;
    this.checked.clear();
    if (this.store === undefined) return;
    if (!first) this.log.info({ members: instances, before: [...before] }, "the SMs serving the domain changed");
    for (const user of [...this.sessions.users()]) {
      if (this.ownsUser(user)) continue;
      void this.serial(user, async () => this.handOver(user));
    }
    for (const other of new Set([...before, ...now])) {
      if (other !== this.instance) void this.takeOverFrom(other);
    }
  }

  /** A user who moved to another SM: forget their sessions here (no presence: they are still online). */
  private handOver(user: string): void {
    if (this.ownsUser(user)) return;
    for (const s of this.sessions.of(user)) this.sessions.remove(s.sid);
    this.roster.evict(user);
    const store = this.store;
    // Out of our set a little later, when the new owner has read it.
    if (store) setTimeout(() => this.ownsUser(user) || store.release(user), 5000).unref();
  }

  /** Adopts the users of SM `other` that are ours now. */
  private async takeOverFrom(other: string): Promise<void> {
    try {
      const users = (await this.store?.usersOf(other)) ?? [];
      let n = 0;
      for (const user of users) {
        if (!this.ownsUser(user) || this.sessions.isOnline(user)) continue;
        n += await this.serial(user, () => this.adopt(user));
      }
      if (n > 0) this.log.info({ from: other, sessions: n }, "took sessions over");
    } catch (err) {
      this.log.warn({ err: (err as Error).message, from: other }, "could not take sessions over");
    }
  }

  /**
   * Loads `user`'s sessions from Redis when we hold none and have not
   * looked since our share last changed; returns how many were adopted.
   * Runs in the user's queue.
   */
  private async adopt(user: string): Promise<number> {
    const store = this.store;
    if (store === undefined || !store.ready || this.sessions.isOnline(user) || this.checked.has(user)) return 0;
    const found = await store.load(user);
    if (this.checked.size > 100_000) this.checked.clear();
    this.checked.add(user);
    let n = 0;
    for (const s of found) {
      if (this.c2sAlive !== undefined && !this.c2sAlive(s.c2s)) continue;
      this.sessions.add(s);
      store.save(s);
      n++;
    }
    return n;
  }

  /** Whether a c2s address (`c2s/INSTANCE`) is served now; set by the process from the routers' notices. */
  c2sAlive: ((address: string) => boolean) | undefined;

  /** Ends the sessions held by c2s processes that are gone (their contacts see them go unavailable). */
  c2sGone(alive: (address: string) => boolean): void {
    for (const s of [...this.sessions.all()]) {
      if (!alive(s.c2s)) this.endLost(s, "its c2s is gone");
    }
  }

  /**
   * Ends, in its user's queue, a session whose client cannot be reached any
   * more (its c2s died, restarted, or bounced a route for it); contacts get
   * its unavailable presence. Nothing is said to the c2s.
   */
  private endLost(s: Session, why: string): void {
    void this.serial(s.bare, () => this.endLostNow(s, why))
      .catch((err: unknown) => this.log.error({ err, sid: s.sid }, "ending a session failed"));
  }

  /** `endLost` for code already in the user's queue. */
  private async endLostNow(s: Session, why: string): Promise<void> {
    if (!this.sessions.remove(s.sid)) return;
    this.log.info({ sid: s.sid, jid: s.full, c2s: s.c2s }, `session ended: ${why}`);
    await this.ended(s);
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

  /** Waits (at most `ms`) for the work queued and for what we sent to be confirmed; then acknowledges what we handled. */
  async settle(ms: number): Promise<void> {
    const until = Date.now() + ms;
    await Promise.race([Promise.all([...this.queues.values()]), new Promise((r) => setTimeout(r, ms).unref())]);
    while (this.confirmed.size > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    this.receiver.stop();
    this.confirmed.stop();
  }

  /** Writes a session's state through to Redis (another SM may take it over). */
  saveSession(session: Session): void {
    this.store?.save(session);
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
    void this.plain(el, raw, to, from);
  }

  /** A stanza to one of our users or to the server, from a component or another SM; settles when handled. */
  private plain(el: Element, raw: string, to: Jid, from: Jid): Promise<void> {
    if (to.local === "") return this.hostStanza(el, raw, from).catch((err: unknown) => this.failed(el, err));
    // It reaches the client as it is: only its content namespace is made explicit.
    const text = explicitClientStanza(el, raw, el.attrs.from!);
    const user = to.bareString();
    return this.serial(user, () => this.inbound(el, text, user, to, from)).catch((err: unknown) => this.failed(el, err));
  }

  /** Runs `work` unless the confirmed element is a copy seen before; acknowledges once it settled. */
  private confirmedWork(el: Element, work: () => Promise<unknown>): void {
    const c = this.receiver.receive(el.attrs.from!, el.attrs.seq, el.attrs.low);
    if (c?.receipt === "duplicate") return;
    const done = (): void => {
      if (c) this.receiver.handled(c.ticket);
    };
    work().then(done, done);
  }

  private handleEnvelope(el: Element, raw: string): void {
    try {
      if (el.local === "route") {
        if (el.attrs.type === "error") {
          this.bouncedRoute(el);
          return;
        }
        if (el.attrs.sid === undefined) {
          // A stanza between users, from another SM.
          const r = readRelay(el, raw);
          const to = r.stanza.attrs.to === undefined ? null : Jid.tryParse(r.stanza.attrs.to);
          const from = r.stanza.attrs.from === undefined ? null : Jid.tryParse(r.stanza.attrs.from);
          if (to === null || from === null) throw new EnvelopeError("route: the carried stanza needs a valid to and from");
          this.confirmedWork(el, () => this.plain(r.stanza, r.stanzaRaw, to, from));
          return;
        }
        const r = readRoute(el, raw);
        const user = Jid.tryParse(r.stanza.attrs.from ?? "")?.bareString() ?? r.to;
        this.confirmedWork(el, () => this.serial(user, () => this.fromSession(r.sid, r.from, r.stanza, r.stanzaRaw))
          .catch((err: unknown) => this.failed(r.stanza, err)));
      } else if (el.local === "ack") {
        this.confirmed.acknowledge(readAck(el, this.confirmed.epoch));
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

  /** A stanza of a session, in its user's queue. */
  private async fromSession(sid: string, c2s: string, stanza: Element, raw: string): Promise<void> {
    let session = this.sessions.get(sid);
    if (!session) {
      // Perhaps a user who just moved to us from another SM.
      const user = Jid.tryParse(stanza.attrs.from ?? "")?.bareString();
      if (user !== undefined && (await this.adopt(user)) > 0) session = this.sessions.get(sid);
    }
    if (!session) {
      // c2s has a session nobody knows (its SM restarted): end it so the client reconnects.
      this.outlet.send(sessionEnvelope({ type: "kick", from: this.address, to: c2s, sid, condition: "reset", reason: "unknown session" }));
      return;
    }
    if (stanza.attrs.from !== session.full) {
      this.log.warn({ sid, from: stanza.attrs.from }, "route with a from that is not its session; dropped");
      return;
    }
    const wasInterested = session.interested;
    await this.outbound(stanza, raw, session);
    if (stanza.name === "presence" || session.interested !== wasInterested) this.saveSession(session);
  }

  /**
   * The router could not deliver one of our routes: the c2s of a session is
   * gone (the session ends), or no SM serves a stanza between users (its
   * sender gets the error). Either way it is answered: nothing to resend.
   */
  private bouncedRoute(el: Element): void {
    this.confirmed.settleBounce(el.attrs.seq);
    const stanza = el.getChildren().find((c) => c.local !== "error");
    const sid = el.attrs.sid;
    if (sid !== undefined) {
      const s = this.sessions.get(sid);
      // The session may have ended here already: a c2s that closes a stream
      // says `end` at once, then bounces what was still on its way to it.
      const to = stanza?.attrs.to === undefined ? null : Jid.tryParse(stanza.attrs.to);
      const user = s?.bare ?? (to !== null && to.domain === this.domain && to.local !== "" ? to.bareString() : undefined);
      if (user === undefined) return;
      void this.serial(user, async () => {
        if (s) await this.endLostNow(s, "its c2s cannot be reached");
        // A message the session did not get goes where a message to the user
        // goes now (another resource, or offline storage): not lost with the c2s.
        if (stanza?.name === "message" && stanza.attrs.type !== "error" && stanza.attrs.type !== "groupchat") {
          const from = Jid.tryParse(stanza.attrs.from ?? "");
          if (from !== null) await this.inbound(stanza, stanza.toString(), user, Jid.parse(user), from);
        }
      }).catch((err: unknown) => this.log.error({ err, sid }, "ending a session failed"));
      return;
    }
    if (stanza) this.error(stanza, "service-unavailable");
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
        // Perhaps the user's other sessions are on record from an SM that left.
        await this.adopt(session.bare);
        // RFC 6120 §7.6.2.1: an account at its limit of resources gets resource-constraint;
        // a new session for a resource it holds replaces that one (§7.7.2.2) and adds none.
        const max = this.config.maxSessionsPerUser;
        if (this.sessions.of(session.bare).length >= max && !this.sessions.byFullJid(session.bare, jid.resource)) {
          this.log.info({ user: session.bare, max }, "session refused: too many sessions for the account");
          this.outlet.send(sessionEnvelope({
            type: "error", id: e.id, from: this.address, to: e.from, sid: e.sid, condition: "resource-constraint", reason: `at most ${max} sessions per account`,
          }));
          return;
        }
        const old = this.sessions.add(session);
        if (old) {
          this.outlet.send(sessionEnvelope({ type: "kick", from: this.address, to: old.c2s, sid: old.sid, condition: "conflict", reason: "replaced by a new session" }));
          await this.ended(old);
        }
        this.saveSession(session);
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
      case "reset": {
        // A c2s (re)started: its sessions are those whose id begins with `sid`; the others died with its previous run.
        for (const stale of [...this.sessions.all()]) {
          if (stale.c2s === e.from && !stale.sid.startsWith(e.sid)) this.endLost(stale, "its c2s restarted");
        }
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
    this.store?.remove(session, !this.sessions.isOnline(session.bare));
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
    // A user who moved to us from another SM has their sessions in Redis.
    if (this.store !== undefined && !this.sessions.isOnline(user)) await this.adopt(user);
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
    // A message is answered too: it went nowhere (say, storage failed before
    // it could be delivered or stored), and its sender must not believe otherwise.
    if (stanza.name === "iq" || stanza.name === "message") this.error(stanza, "internal-server-error");
  }
}
