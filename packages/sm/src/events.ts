/**
 * The events modules hook (docs/modules.md) and how they run: handlers in
 * priority order, higher first; the first to return `true` has handled the
 * event and ends the chain, and the core's default applies when nobody did.
 *
 * Handlers may be synchronous or return a promise. A chain whose handlers
 * all answer synchronously runs without a single promise or microtask:
 * that is the message path between online users, where an async step per
 * handler would cost more than the work (docs/performance.md).
 */
import type { Element } from "@jabberfarm/xml";
import type { Jid } from "@jabberfarm/jid";
import type { Session } from "./session.js";

/**
 * Work that the route which brought a stanza waits for before it is
 * confirmed to its sender (docs/envelope.md, "Confirmation"): a write the
 * stanza must not be acknowledged without (the message archive). Pushing a
 * promise here holds no user's queue; an unconfirmed route comes again
 * after an SM died, so such work must be idempotent. Absent when nothing
 * confirms the stanza (a module sent it).
 */
export type ConfirmHolds = Array<Promise<unknown>>;

/**
 * A stanza one of our users' sessions sent, before anything else sees it.
 * A handler that lets it pass may rewrite `raw` (and `stanza` alike), say to
 * stamp or strip an element: later handlers and the default take the new text.
 */
export interface OutboundEvent {
  stanza: Element;
  /** Its text with `from` stamped and `xmlns` explicit: forward this, do not re-serialise. */
  raw: string;
  session: Session;
  holds?: ConfirmHolds | undefined;
}

/**
 * A stanza on its way out from one of our users (`from` is theirs), whoever
 * made it: what a session sent once its `out` handlers let it pass, and
 * what modules send on the user's behalf (presence broadcasts, probes,
 * subscription answers). Just before it is routed to its `to`.
 */
export interface EgressEvent {
  stanza: Element;
  raw: string;
  /** The sending user's bare JID. */
  user: string;
  from: Jid;
  to: Jid;
}

/** A stanza for one of our users (inbound), from anyone: to their bare or a full JID. `raw` may be rewritten as for OutboundEvent. */
export interface InboundEvent {
  stanza: Element;
  raw: string;
  /** The recipient's bare JID. */
  user: string;
  to: Jid;
  from: Jid;
  holds?: ConfirmHolds | undefined;
}

/** An iq for the server itself (`to` our domain). */
export interface HostIqEvent {
  stanza: Element;
  raw: string;
  from: Jid;
  /** Set when the iq came from a session on this SM. */
  session?: Session | undefined;
}

/**
 * A stanza about to be written to one session. `stanza` is parsed from
 * `raw` the first time a handler reads it: a handler that needs only the
 * text (stream management numbering it) costs no parse.
 */
export interface DeliverEvent {
  readonly stanza: Element;
  readonly raw: string;
  readonly session: Session;
  readonly kind: StanzaKind;
}

export interface SessionEvent {
  session: Session;
}

/** A session whose client cannot be reached any more (its c2s died or restarted, or said the session is gone). */
export interface LostEvent {
  session: Session;
  why: string;
}

export interface UserEvent {
  /** The bare JID. */
  user: string;
}

export type StanzaKind = "message" | "presence" | "iq";

/** Stanza events by kind: `message/out`, `presence/in`, `iq/deliver`... */
type StanzaEvents = { [K in `${StanzaKind}/out`]: OutboundEvent }
  & { [K in `${StanzaKind}/egress`]: EgressEvent }
  & { [K in `${StanzaKind}/in`]: InboundEvent }
  & { [K in `${StanzaKind}/deliver`]: DeliverEvent };

/**
 * Every event: `<kind>/out` (a session's stanza, first thing), `<kind>/egress`
 * (leaving one of our users for its `to`), `<kind>/in` (to one of our users,
 * bare or full JID, from anyone), `<kind>/deliver` (about to be written to
 * one session), for kinds message, presence and iq; the iq namespaces; and
 * the lifecycle of sessions and accounts.
 */
export interface SmEvents extends StanzaEvents {
  /** iq get/set from a session to its own account (no `to`, or its bare JID); the suffix is the payload's namespace. */
  [k: `iq/self/${string}`]: OutboundEvent;
  /** iq get/set to a user's bare JID from anyone else; the suffix is the payload's namespace. */
  [k: `iq/bare/${string}`]: InboundEvent;
  /** iq get/set to the server's domain; the suffix is the payload's namespace. */
  [k: `iq/host/${string}`]: HostIqEvent;
  /** A session was registered (after bind). */
  "session/bound": SessionEvent;
  /** A session taken over from another SM through Redis, with its modules' data (`session.data`). */
  "session/adopted": SessionEvent;
  /** A session came back after its client's stream was resumed on a c2s (XEP-0198). */
  "session/resumed": SessionEvent;
  /** A session is gone (closed, lost, replaced or kicked); still readable, no longer registered. */
  "session/ended": SessionEvent;
  /**
   * A session's client cannot be reached (its c2s died or restarted). A
   * handler that returns true keeps the session (stream management holds
   * it for the client to resume); otherwise it ends.
   */
  "session/lost": LostEvent;
  /** A session sent its initial available presence (RFC 6121 §4.2): time for offline delivery. */
  "presence/initial": SessionEvent;
  /** An account was removed; its data in the module stores is already gone. */
  "user/deleted": UserEvent;
}

export type Handler<P> = (payload: P) => boolean | void | Promise<boolean | void>;

interface Entry {
  priority: number;
  handler: Handler<never>;
}

const EMPTY: readonly Entry[] = [];

function isPromise(v: unknown): v is Promise<unknown> {
  return typeof (v as { then?: unknown } | null)?.then === "function";
}

export class EventBus {
  private readonly handlers = new Map<string, Entry[]>();

  on<E extends keyof SmEvents & string>(event: E, handler: Handler<SmEvents[E]>, priority = 0): void {
    const list = [...(this.handlers.get(event) ?? EMPTY), { priority, handler: handler as Handler<never> }];
    // Stable: equal priorities keep the order modules registered in.
    list.sort((a, b) => b.priority - a.priority);
    this.handlers.set(event, list);
  }

  has(event: string): boolean {
    return this.handlers.has(event);
  }

  /**
   * Runs the chain; true when a handler handled the event. Synchronous
   * while every handler is; from the first one that returns a promise on,
   * the rest run after it settles and the answer is a promise.
   */
  fire<E extends keyof SmEvents & string>(event: E, payload: SmEvents[E]): boolean | Promise<boolean> {
    const list = this.handlers.get(event);
    if (list === undefined) return false;
    for (let i = 0; i < list.length; i++) {
      const r = (list[i]!.handler as Handler<SmEvents[E]>)(payload);
      if (r === true) return true;
      if (isPromise(r)) return this.fireFrom(list, i, r, payload);
    }
    return false;
  }

  private async fireFrom<P>(list: readonly Entry[], i: number, pending: Promise<boolean | void>, payload: P): Promise<boolean> {
    if ((await pending) === true) return true;
    for (let k = i + 1; k < list.length; k++) {
      if ((await (list[k]!.handler as Handler<P>)(payload)) === true) return true;
    }
    return false;
  }

  /** Runs every handler whatever they return (notifications such as session/ended), one after the other. */
  notify<E extends keyof SmEvents & string>(event: E, payload: SmEvents[E]): void | Promise<void> {
    const list = this.handlers.get(event);
    if (list === undefined) return;
    for (let i = 0; i < list.length; i++) {
      const r = (list[i]!.handler as Handler<SmEvents[E]>)(payload);
      if (isPromise(r)) return this.notifyFrom(list, i, r, payload);
    }
  }

  private async notifyFrom<P>(list: readonly Entry[], i: number, pending: Promise<unknown>, payload: P): Promise<void> {
    await pending;
    for (let k = i + 1; k < list.length; k++) await (list[k]!.handler as Handler<P>)(payload);
  }
}

/** `then` for a value that may or may not be a promise: synchronous when it is not. */
export function andThen<T, U>(v: T | Promise<T>, fn: (t: T) => U | Promise<U>): U | Promise<U> {
  return isPromise(v) ? (v as Promise<T>).then(fn) : fn(v as T);
}

export { isPromise };
