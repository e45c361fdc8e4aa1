/**
 * What a feature module gets (like prosody's core/moduleapi.lua): the
 * events, ways to send and deliver stanzas, its own storage, and places to
 * announce what it offers. A module is one function taking this API,
 * registered in modules/index.ts; docs/modules.md is the guide.
 */
import type { Logger } from "pino";
import type { SessionEnvelope, SessionType } from "@jabberfarm/envelope";
import type { Element, StanzaErrorCondition } from "@jabberfarm/xml";
import type { Storage } from "@jabberfarm/xdb";
import type { SmConfig } from "./config.js";
import type { Handler, SmEvents } from "./events.js";
import type { ArchiveQuota, ArchiveStore, KeyedQuota, KeyedStore } from "./module-store.js";
import type { RosterManager } from "./roster-manager.js";
import type { Session } from "./session.js";
import type { SessionRegistry } from "./session-registry.js";

export interface Identity {
  category: string;
  type: string;
  name?: string;
}

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
  /** The module's keyed store `name` (docs/storage.md), with the quota every write carries. */
  openStore(name: string, quota?: KeyedQuota): KeyedStore;
  /** The module's archive `name` (docs/storage.md), with the quota every append carries. */
  openArchive(name: string, quota?: ArchiveQuota): ArchiveStore;

  /**
   * Hooks an event (events.ts lists them). Handlers run by priority, higher
   * first; returning `true` handles the event and ends the chain, anything
   * else passes it on; the core's default runs when nobody handled it.
   */
  on<E extends keyof SmEvents & string>(event: E, handler: Handler<SmEvents[E]>, priority?: number): void;

  /** Advertise a feature in the server's disco#info. */
  addFeature(ns: string): void;
  features(): readonly string[];
  identities(): readonly Identity[];
  /** Services linked to the routers under our domain (`conference.DOMAIN`, `upload.DOMAIN`...), for disco#items. */
  linkedServices(): readonly string[];
  /** Advertise a feature in the disco#info of every account (a user's bare JID), e.g. PEP or MAM. */
  addAccountFeature(ns: string): void;
  accountFeatures(): readonly string[];
  /** Advertise an identity in the disco#info of every account, beside account/registered (e.g. PEP's pubsub/pep). */
  addAccountIdentity(identity: Identity): void;
  accountIdentities(): readonly Identity[];
  /**
   * Advertise a stream feature that clients see after authentication,
   * beside resource binding (e.g. roster versioning, stream management).
   * c2s asks the SMs for these (docs/envelope.md, `<features/>`).
   */
  addStreamFeature(feature: Element): void;
  streamFeatures(): readonly Element[];

  /**
   * Sends a stanza on its way by its `to`, from one of our users or from the
   * server: `<kind>/egress` first when `from` is one of our users; then the
   * inbound path here when the recipient is a user this SM owns, a relay to
   * the SM that owns them, or the router. `raw`, when given, is the
   * stanza's text as received, forwarded as it is.
   */
  send(stanza: Element, raw?: string): void;
  /** Hands a farm-protocol element (an envelope answer) to the routers as it is. */
  toRouter(text: string): void;
  /**
   * Delivers a stanza to one session: `<kind>/deliver` handlers first
   * (they must answer synchronously), then it is written to the client.
   */
  deliver(session: Session, stanza: Element | string, raw?: string): void;
  /** Writes a stanza to a session's client as it is, past every event (for what was delivered before). */
  write(session: Session, stanza: Element | string): void;
  /** Answer an iq with a result (optionally with a payload). */
  result(iq: Element, payload?: Element): void;
  /** Answer a stanza with an error, unless it is an error itself. */
  error(stanza: Element, condition: StanzaErrorCondition, text?: string): void;
  /** End a session with a stream error (conflict, not-authorized...). */
  kick(session: Session, condition: string, reason?: string): Promise<void>;
  /** Run `fn` after every earlier piece of work for `user` (their stanzas are handled in order). */
  serial<T>(user: string, fn: () => T | Promise<T>): Promise<T>;
  /** Whether an account exists (online users are known without a storage round trip). */
  accountExists(user: string): Promise<boolean>;
  /** A session sent its first available presence: fires `presence/initial` (offline delivery...). */
  initialPresence(session: Session): Promise<void>;
  /**
   * Handles `<session/>` envelopes of `type` from c2s (docs/envelope.md)
   * that the core does not: stream management, client state. Runs in the
   * user's queue; `session` is the one the envelope's `sid` names, if any.
   */
  onSessionControl(type: SessionType, handler: (e: SessionEnvelope, session: Session | undefined) => void | Promise<void>): void;
  /** Ends a session as its c2s saying `end` would: gone from the registry, `session/ended` fired. */
  endSession(session: Session, why: string): Promise<void>;
  /** The session continues on another c2s connection (resumed): routes go there, under its new id. */
  rebind(session: Session, sid: string, c2s: string): void;
  /** A session continues after its client resumed the stream (XEP-0198): fires `session/resumed`. */
  sessionResumed(session: Session): Promise<void>;
  /** An account was removed (its storage already gone): fires `user/deleted`. */
  userDeleted(user: string): Promise<void>;
  /** Writes a session's state (and its `data`) through to the shared record, for a takeover. */
  saveSession(session: Session): void;
  /**
   * Handle envelope elements named `local` (urn:jabberfarm:envelope:1) that
   * the core does not know, e.g. the operator's queries. Throwing answers
   * the sender with `bad-request`.
   */
  onEnvelope(local: string, handler: (el: Element) => void): void;
}

export type SmModule = (api: ModuleApi) => void;
