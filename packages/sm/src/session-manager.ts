/**
 * The session manager's core: sessions, the per-user order of work, and the
 * one path of every stanza through the modules' events. It knows no
 * feature; src/modules/*.ts do (one file per feature, loaded by name), and
 * docs/modules.md tells how to write one.
 *
 * The pieces: stanza-path.ts (out, egress, in, deliver), router-intake.ts
 * (what the routers bring), ownership.ts (who owns which user, takeover),
 * events.ts (the event chains), user-queue.ts (per-user order).
 */
import type { Logger } from "pino";
import {
  ConfirmedReceiver, ConfirmedSender, ENVELOPE_NS, relayEnvelope, routeEnvelope, sessionEnvelope, type SessionEnvelope, type SessionType,
} from "@jabberfarm/envelope";
import { Jid } from "@jabberfarm/jid";
import type { Storage } from "@jabberfarm/xdb";
import {
  canBounce, escapeAttr, stanzaErrorReply, xml, type Element, type StanzaErrorCondition,
} from "@jabberfarm/xml";
import type { SmConfig } from "./config.js";
import { EventBus, type Handler, type SmEvents } from "./events.js";
import type { Identity, ModuleApi, SmModule } from "./module-api.js";
import { ModuleStores, type ArchiveQuota, type ArchiveStore, type KeyedQuota, type KeyedStore } from "./module-store.js";
import { LinkedServices } from "./linked-services.js";
import { RemoteDomains } from "./remote-domains.js";
import { Ownership } from "./ownership.js";
import { RosterManager } from "./roster-manager.js";
import { RouterIntake } from "./router-intake.js";
import type { Session } from "./session.js";
import { SessionRegistry } from "./session-registry.js";
import type { SessionStore } from "./session-store.js";
import { StanzaPath, clientText } from "./stanza-path.js";
import { UserQueue } from "./user-queue.js";

/** What the SM needs from its router links: a way out. Stanzas in arrive through `handle`. */
export interface RouterOutlet {
  send(text: string): boolean;
}

export class SessionManager implements ModuleApi {
  readonly domain: string;
  readonly instance: string;
  readonly address: string;
  readonly sessions = new SessionRegistry();
  readonly roster: RosterManager;
  readonly events = new EventBus();
  readonly queue = new UserQueue();
  readonly ownership: Ownership;
  readonly path: StanzaPath;
  private readonly intake: RouterIntake;
  private readonly stores: ModuleStores;
  private readonly featureList: string[] = [];
  private readonly accountFeatureList: string[] = [];
  private readonly accountIdentityList: Identity[] = [{ category: "account", type: "registered" }];
  private readonly streamFeatureList: Element[] = [];
  private readonly envelopeHandlers = new Map<string, (el: Element) => void>();
  private readonly sessionControls = new Map<string, (e: SessionEnvelope, session: Session | undefined) => void | Promise<void>>();
  /** What we send to sessions and to other SMs, held until confirmed (docs/envelope.md, "Confirmation"). */
  readonly confirmed: ConfirmedSender;
  /** What c2s and other SMs send us confirmed: duplicates dropped, handled ones acknowledged. */
  readonly receiver: ConfirmedReceiver;
  /** Services linked under our domain, from the routers' membership notices (process.ts feeds it). */
  readonly services: LinkedServices;
  /** Which domains go to the farm's s2s (process.ts feeds it the routers' membership notices). */
  readonly remoteDomains: RemoteDomains;
  /** Replies for storage requests, when storage goes through xdb. */
  onXdb: ((el: Element) => void) | undefined;

  constructor(
    readonly config: SmConfig,
    readonly storage: Storage,
    private readonly outlet: RouterOutlet,
    readonly log: Logger,
    modules: ReadonlyArray<SmModule>,
  ) {
    this.domain = config.domain;
    this.instance = config.instance;
    this.address = `${config.domain}/${config.instance}`;
    this.roster = new RosterManager(storage, this.sessions, (s, el) => this.deliver(s, el), config.roster);
    this.stores = new ModuleStores(storage);
    this.services = new LinkedServices(config.domain);
    this.remoteDomains = new RemoteDomains(config.domain);
    const out = (text: string): boolean => outlet.send(text);
    this.confirmed = new ConfirmedSender(out, {
      onGiveUp: (text, sends) => log.warn({ sends, stanza: text.slice(0, 200) }, "gave up a stanza: nobody confirmed it"),
      // Flow control: router-intake holds back acknowledgements while it is full.
      window: config.maxUnconfirmedRoutes,
    });
    this.receiver = new ConfirmedReceiver(this.address, out);
    this.ownership = new Ownership(this.instance, this.sessions, this.roster, this.queue, log);
    this.ownership.onAdopted = (session) => void this.events.notify("session/adopted", { session });
    this.ownership.onLost = (session) => this.endLostNow(session, "its c2s is gone");
    this.path = new StanzaPath(this);
    this.intake = new RouterIntake(this);
    this.onEnvelope("features", (el) => this.answerFeatures(el));
    for (const m of modules) m(this);
  }

  // ---- ModuleApi ------------------------------------------------------------

  on<E extends keyof SmEvents & string>(event: E, handler: Handler<SmEvents[E]>, priority = 0): void {
    this.events.on(event, handler, priority);
  }

  openStore(name: string, quota?: KeyedQuota): KeyedStore {
    return this.stores.openStore(name, quota);
  }

  openArchive(name: string, quota?: ArchiveQuota): ArchiveStore {
    return this.stores.openArchive(name, quota);
  }

  addFeature(ns: string): void {
    if (!this.featureList.includes(ns)) this.featureList.push(ns);
  }

  features(): readonly string[] {
    return this.featureList;
  }

  identities(): readonly Identity[] {
    return [{ category: "server", type: "im", name: "jabberfarm" }];
  }

  linkedServices(): readonly string[] {
    return this.services.list();
  }

  addAccountFeature(ns: string): void {
    if (!this.accountFeatureList.includes(ns)) this.accountFeatureList.push(ns);
  }

  accountFeatures(): readonly string[] {
    return this.accountFeatureList;
  }

  addAccountIdentity(identity: Identity): void {
    if (!this.accountIdentityList.some((i) => i.category === identity.category && i.type === identity.type)) this.accountIdentityList.push(identity);
  }

  accountIdentities(): readonly Identity[] {
    return this.accountIdentityList;
  }

  addStreamFeature(feature: Element): void {
    this.streamFeatureList.push(feature);
  }

  streamFeatures(): readonly Element[] {
    return this.streamFeatureList;
  }

  onEnvelope(local: string, handler: (el: Element) => void): void {
    this.envelopeHandlers.set(local, handler);
  }

  envelopeHandler(local: string): ((el: Element) => void) | undefined {
    return this.envelopeHandlers.get(local);
  }

  onSessionControl(type: SessionType, handler: (e: SessionEnvelope, session: Session | undefined) => void | Promise<void>): void {
    this.sessionControls.set(type, handler);
  }

  sessionControl(type: string): ((e: SessionEnvelope, session: Session | undefined) => void | Promise<void>) | undefined {
    return this.sessionControls.get(type);
  }

  async endSession(session: Session, why: string): Promise<void> {
    if (!this.sessions.remove(session.sid)) return;
    this.log.info({ sid: session.sid, jid: session.full }, `session ended: ${why}`);
    await this.ended(session);
  }

  rebind(session: Session, sid: string, c2s: string): void {
    this.store?.remove(session, false);
    this.sessions.rebind(session, sid, c2s);
    this.saveSession(session);
  }

  send(stanza: Element, raw?: string): void {
    const r = this.path.send(stanza, raw ?? clientText(stanza), false);
    if (r !== undefined) r.catch((err: unknown) => this.failed(stanza, err));
  }

  toRouter(text: string): void {
    this.outlet.send(text);
  }

  deliver(session: Session, stanza: Element | string, raw?: string): void {
    this.path.deliver(session, stanza, raw);
  }

  write(session: Session, stanza: Element | string): void {
    this.writeRoute(session, typeof stanza === "string" ? stanza : clientText(stanza));
  }

  result(iq: Element, payload?: Element): void {
    this.send(xml("iq", { type: "result", id: iq.attrs.id, to: iq.attrs.from, from: iq.attrs.to ?? bareOf(iq.attrs.from) }, payload));
  }

  error(stanza: Element, condition: StanzaErrorCondition, text?: string): void {
    if (!canBounce(stanza)) return;
    const reply = stanzaErrorReply(stanza, condition, text === undefined ? {} : { text });
    // A stanza to our own account (no 'to') gets its answer from the bare JID;
    // one to an address that is no JID, from the server.
    if (reply.attrs.from === undefined) reply.setAttr("from", bareOf(stanza.attrs.from));
    else if (Jid.tryParse(reply.attrs.from) === null) reply.setAttr("from", this.domain);
    this.send(reply);
  }

  async kick(session: Session, condition: string, reason?: string): Promise<void> {
    this.outlet.send(sessionEnvelope({ type: "kick", from: this.address, to: session.c2s, sid: session.sid, condition, reason }));
    if (this.sessions.remove(session.sid)) await this.ended(session);
  }

  serial<T>(user: string, fn: () => T | Promise<T>): Promise<T> {
    return this.queue.serial(user, fn);
  }

  async accountExists(user: string): Promise<boolean> {
    return this.sessions.isOnline(user) || this.storage.accountExists(user);
  }

  async initialPresence(session: Session): Promise<void> {
    await this.events.notify("presence/initial", { session });
  }

  async sessionResumed(session: Session): Promise<void> {
    await this.events.notify("session/resumed", { session });
  }

  async userDeleted(user: string): Promise<void> {
    await this.events.notify("user/deleted", { user });
  }

  /** Writes a session's state through to Redis (another SM may take it over). */
  saveSession(session: Session): void {
    this.store?.save(session);
  }

  // ---- the core's own duties ------------------------------------------------------

  /** One element from a router link. Never throws: failures are logged and answered. */
  handle(el: Element, raw: string): void {
    this.intake.handle(el, raw);
  }

  /** The session registry in Redis, when the farm has one (several SMs). */
  get store(): SessionStore | undefined {
    return this.ownership.store;
  }

  set store(s: SessionStore | undefined) {
    this.ownership.store = s;
  }

  /** The routers' list of the SMs serving our domain (ownership.ts). */
  setMembers(instances: readonly string[]): void {
    this.ownership.setMembers(instances);
  }

  ownsUser(user: string): boolean {
    return this.ownership.owns(user);
  }

  set c2sAlive(fn: ((address: string) => boolean) | undefined) {
    this.ownership.c2sAlive = fn;
  }

  /** Ends the sessions held by c2s processes that are gone (their contacts see them go unavailable). */
  c2sGone(alive: (address: string) => boolean): void {
    for (const s of [...this.sessions.all()]) {
      if (!alive(s.c2s)) this.endLost(s, "its c2s is gone");
    }
  }

  writeRoute(session: Session, text: string): void {
    this.confirmed.send((c) => routeEnvelope(this.address, session.c2s, session.sid, text, c));
  }

  isRemote(domain: string): boolean {
    return this.remoteDomains.isRemote(domain);
  }

  relay(to: string, text: string): void {
    this.confirmed.send((c) => relayEnvelope(this.address, to, text, c));
  }

  get maxSessionsPerUser(): number {
    return this.config.maxSessionsPerUser;
  }

  async startSession(session: Session, started: () => void): Promise<void> {
    const old = this.sessions.add(session);
    if (old) {
      this.outlet.send(sessionEnvelope({ type: "kick", from: this.address, to: old.c2s, sid: old.sid, condition: "conflict", reason: "replaced by a new session" }));
      await this.ended(old);
    }
    this.saveSession(session);
    started();
    this.log.debug({ sid: session.sid, jid: session.full }, "session started");
    await this.events.notify("session/bound", { session });
  }

  /** A session is gone from the registry: Redis, `session/ended`, the roster cache. */
  async ended(session: Session): Promise<void> {
    this.log.debug({ sid: session.sid, jid: session.full }, "session ended");
    this.store?.remove(session, !this.sessions.isOnline(session.bare));
    await this.events.notify("session/ended", { session });
    if (!this.sessions.isOnline(session.bare)) this.roster.evict(session.bare);
  }

  endLost(s: Session, why: string): void {
    void this.queue.serial(s.bare, () => this.endLostNow(s, why))
      .catch((err: unknown) => this.log.error({ err, sid: s.sid }, "ending a session failed"));
  }

  async endLostNow(s: Session, why: string): Promise<void> {
    if (this.sessions.get(s.sid) !== s) return;
    // Stream management may keep it for its client to resume elsewhere.
    if (await this.events.fire("session/lost", { session: s, why })) return;
    if (!this.sessions.remove(s.sid)) return;
    this.log.info({ sid: s.sid, jid: s.full, c2s: s.c2s }, `session ended: ${why}`);
    await this.ended(s);
  }

  failed(stanza: Element, err: unknown): void {
    // Something it asked for would not fit the farm's links (an answer, a
    // stored copy): that one request fails, with resource-constraint.
    const tooLarge = (err as Error | undefined)?.name === "OversizeError" ||
      (err as { condition?: string } | undefined)?.condition === "resource-constraint";
    const where = { from: stanza.attrs.from, to: stanza.attrs.to, id: stanza.attrs.id };
    if (tooLarge) this.log.warn({ err: (err as Error).message, ...where }, "stanza refused: too large for the farm's links");
    else this.log.error({ err, ...where }, "stanza handling failed");
    // A message is answered too: it went nowhere (say, storage failed before
    // it could be delivered or stored), and its sender must not believe otherwise.
    if (stanza.name !== "iq" && stanza.name !== "message") return;
    try {
      this.error(stanza, tooLarge ? "resource-constraint" : "internal-server-error");
    } catch (e) {
      this.log.error({ err: e, ...where }, "could not answer a failed stanza");
    }
  }

  /** Waits (at most `ms`) for the work queued and for what we sent to be confirmed; then acknowledges what we handled. */
  async settle(ms: number): Promise<void> {
    const until = Date.now() + ms;
    await Promise.race([this.queue.idle(), new Promise((r) => setTimeout(r, ms).unref())]);
    while (this.confirmed.size > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    this.receiver.stop();
    this.confirmed.stop();
  }

  /** c2s asks which stream features our modules offer (docs/envelope.md, `<features/>`). */
  private answerFeatures(el: Element): void {
    if (el.attrs.type !== "get" || !el.attrs.from) return;
    const children = this.streamFeatureList.map((f) => f.toString()).join("");
    this.outlet.send(`<features xmlns='${ENVELOPE_NS}' type='result' id='${escapeAttr(el.attrs.id ?? "")}' from='${escapeAttr(this.address)}' to='${escapeAttr(el.attrs.from)}'>${children}</features>`);
  }
}

function bareOf(jid: string | undefined): string | undefined {
  if (jid === undefined) return undefined;
  return Jid.tryParse(jid)?.bareString() ?? undefined;
}
