/**
 * The events modules register for, and how they are fired: handlers run in
 * priority order (higher first) and the first to return `true` has handled
 * the event; the core's default applies when nobody did.
 */
import type { Jid } from "@jabberfarm/jid";
import type { Element } from "@jabberfarm/xml";
import type { Session } from "./session.js";

/** A stanza a user's session sent (outbound, RFC 6121 terms). */
export interface OutboundEvent {
  stanza: Element;
  /** Its text with `from` stamped and `xmlns` explicit: forward this, do not re-serialise. */
  raw: string;
  session: Session;
}

/** A stanza for one of our users (inbound), from anyone. */
export interface InboundEvent {
  stanza: Element;
  raw: string;
  /** The recipient's bare JID. */
  user: string;
  to: Jid;
  from: Jid;
}

/** An iq for the server itself (`to` our domain). */
export interface HostIqEvent {
  stanza: Element;
  raw: string;
  from: Jid;
  /** Set when the iq came from a session on this SM. */
  session?: Session | undefined;
}

export interface SessionEvent {
  session: Session;
}

export interface SmEvents {
  /** iq from a session to its own account (no `to`, or its bare JID); key suffix is the payload namespace. */
  [k: `iq/self/${string}`]: OutboundEvent;
  /** iq to another user's bare JID; key suffix is the payload namespace. */
  [k: `iq/bare/${string}`]: InboundEvent;
  /** iq to the server's domain; key suffix is the payload namespace. */
  [k: `iq/host/${string}`]: HostIqEvent;
  "message/out": OutboundEvent;
  "message/in": InboundEvent;
  "presence/out": OutboundEvent;
  "presence/in": InboundEvent;
  /** A session was registered (after bind). */
  "session/start": SessionEvent;
  /** A session is gone (closed, lost, replaced or kicked); still readable, no longer registered. */
  "session/end": SessionEvent;
  /** A session sent its initial available presence (RFC 6121 §4.2): time for offline delivery. */
  "presence/initial": SessionEvent;
}

export type Handler<P> = (payload: P) => boolean | void | Promise<boolean | void>;

interface Entry {
  priority: number;
  handler: Handler<never>;
}

export class Hooks {
  private readonly handlers = new Map<string, Entry[]>();

  on<E extends keyof SmEvents & string>(event: E, handler: Handler<SmEvents[E]>, priority = 0): void {
    const list = this.handlers.get(event) ?? [];
    list.push({ priority, handler: handler as Handler<never> });
    list.sort((a, b) => b.priority - a.priority);
    this.handlers.set(event, list);
  }

  has(event: string): boolean {
    return this.handlers.has(event);
  }

  /** Runs the handlers in order; true when one of them handled the event. */
  async fire<E extends keyof SmEvents & string>(event: E, payload: SmEvents[E]): Promise<boolean> {
    const list = this.handlers.get(event);
    if (!list) return false;
    for (const { handler } of list) {
      if ((await (handler as Handler<SmEvents[E]>)(payload)) === true) return true;
    }
    return false;
  }

  /** Runs every handler (notifications such as session/end), whatever they return. */
  async notify<E extends keyof SmEvents & string>(event: E, payload: SmEvents[E]): Promise<void> {
    const list = this.handlers.get(event);
    if (!list) return;
    for (const { handler } of list) await (handler as Handler<SmEvents[E]>)(payload);
  }
}
