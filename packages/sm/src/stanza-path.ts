/**
 * The one path every stanza takes through the SM (docs/modules.md), in
 * jabberd2's terms the chains in every direction:
 *
 *   from a session  ──  <kind>/out  ──┐
 *   made by a module for a user ──────┴─ <kind>/egress ── route by `to`
 *   route: our user here ── <kind>/in ── (default) ── <kind>/deliver ── the client
 *          our user elsewhere ── relay to their SM (which runs <kind>/in)
 *          anything else ── the router
 *
 * A stanza between two users of this SM runs the same handlers as one
 * between users of two SMs: the shortcut only skips the router.
 */
import type { Logger } from "pino";
import { Jid } from "@jabberfarm/jid";
import { NS, parseTrusted, type Element } from "@jabberfarm/xml";
import { andThen, isPromise, type ConfirmHolds, type DeliverEvent, type EventBus, type InboundEvent, type OutboundEvent, type StanzaKind } from "./events.js";
import type { Session } from "./session.js";
import type { SessionRegistry } from "./session-registry.js";
import type { Ownership } from "./ownership.js";
import type { UserQueue } from "./user-queue.js";
import type { StanzaErrorCondition } from "@jabberfarm/xml";

/** What the path needs from the SM around it. */
export interface PathCore {
  readonly domain: string;
  readonly log: Logger;
  readonly events: EventBus;
  readonly queue: UserQueue;
  readonly sessions: SessionRegistry;
  readonly ownership: Ownership;
  /** Writes to a session's client (a confirmed route to its c2s). */
  writeRoute(session: Session, text: string): void;
  /** Hands a stanza for a user of another SM to that SM (a confirmed relay). */
  relay(to: string, text: string): void;
  /** Puts text on a router link. */
  toRouter(text: string): void;
  /** Whether a domain is served by another server, reached through the farm's s2s (remote-domains.ts). */
  isRemote(domain: string): boolean;
  error(stanza: Element, condition: StanzaErrorCondition, text?: string): void;
  accountExists(user: string): Promise<boolean>;
  /** A failure while handling `stanza`: logged, and answered where it must be. */
  failed(stanza: Element, err: unknown): void;
}

const KINDS: ReadonlySet<string> = new Set(["message", "presence", "iq"]);

/** Makes an element's text explicit about `jabber:client`, as envelopes require. */
export function clientText(stanza: Element): string {
  if (stanza.attrs.xmlns === undefined) stanza.attrs.xmlns = NS.CLIENT;
  return stanza.toString();
}

/** The stanza kind of an element, or undefined for anything else. */
function kindOf(el: Element): StanzaKind | undefined {
  return KINDS.has(el.name) ? (el.name as StanzaKind) : undefined;
}

/** The kind of a stanza's text, read from its first tag. */
function kindOfText(text: string): StanzaKind | undefined {
  if (text.startsWith("<message")) return "message";
  if (text.startsWith("<presence")) return "presence";
  if (text.startsWith("<iq")) return "iq";
  return undefined;
}

function isRequest(stanza: Element): boolean {
  const t = stanza.attrs.type;
  return t === "get" || t === "set";
}

export class StanzaPath {
  constructor(private readonly core: PathCore) {}

  // ---- from a session -------------------------------------------------------

  /** A stanza a session sent (its `from` already checked): `<kind>/out`, then the default. */
  fromSession(stanza: Element, raw: string, session: Session, holds?: ConfirmHolds): void | Promise<void> {
    const kind = kindOf(stanza);
    if (kind === undefined) {
      this.core.log.debug({ sid: session.sid, element: stanza.name }, "unknown stanza from a session");
      return;
    }
    const event: OutboundEvent = { stanza, raw, session, holds };
    const handled = this.core.events.fire(`${kind}/out`, event);
    // Handlers may have rewritten the text: the default takes the event's.
    return andThen(handled, (h) => (h ? undefined : this.outDefault(kind, event.stanza, event.raw, session, holds)));
  }

  private outDefault(kind: StanzaKind, stanza: Element, raw: string, session: Session, holds: ConfirmHolds | undefined): void | Promise<void> {
    if (kind === "iq") return this.iqFromSession(stanza, raw, session);
    if (stanza.attrs.to === undefined) {
      // RFC 6120 §10.3.1: no 'to' means the sender's own bare JID (for a
      // message; presence without 'to' is a broadcast, the presence module's).
      if (kind !== "message") return;
      stanza.attrs.to = session.bare;
      return this.send(stanza, clientText(stanza), true, holds);
    }
    return this.send(stanza, raw, true, holds);
  }

  private iqFromSession(stanza: Element, raw: string, session: Session): void | Promise<void> {
    const request = isRequest(stanza);
    if (request && (stanza.getChildren().length !== 1 || stanza.attrs.id === undefined)) {
      this.core.error(stanza, "bad-request", "an iq get or set carries exactly one payload and an id");
      return;
    }
    const to = stanza.attrs.to === undefined ? null : Jid.tryParse(stanza.attrs.to);
    if (stanza.attrs.to !== undefined && to === null) {
      this.core.error(stanza, "jid-malformed");
      return;
    }
    const payload = stanza.firstElement();
    if (to === null || (to.local === session.jid.local && to.domain === session.jid.domain && to.resource === "")) {
      if (!request || !payload) return;
      return andThen(this.core.events.fire(`iq/self/${payload.ns}`, { stanza, raw, session }), (h) => {
        if (!h) this.core.error(stanza, "service-unavailable");
      });
    }
    if (to.local === "" && to.domain === this.core.domain && to.resource === "") {
      if (!request || !payload) return;
      return this.hostIq(stanza, raw, session.jid, session);
    }
    return this.send(stanza, raw, true);
  }

  // ---- on its way by `to` ------------------------------------------------------

  /**
   * Sends a stanza by its `to` (ModuleApi.send): egress first when it leaves
   * one of our users. `raw` is its text (kept as it is); `fresh` says the
   * element is the caller's to give away (parsed from the wire) rather than
   * one a module may change after this call, which the inbound path here
   * must not share.
   */
  send(stanza: Element, raw: string, fresh: boolean, holds?: ConfirmHolds): void | Promise<void> {
    const toAttr = stanza.attrs.to;
    const to = toAttr === undefined ? null : Jid.tryParse(toAttr);
    if (to === null) {
      if (toAttr !== undefined) this.core.error(stanza, "jid-malformed");
      return;
    }
    const kind = kindOf(stanza);
    const from = stanza.attrs.from === undefined ? null : Jid.tryParse(stanza.attrs.from);
    if (kind !== undefined && from !== null && from.local !== "" && from.domain === this.core.domain && this.core.events.has(`${kind}/egress`)) {
      const handled = this.core.events.fire(`${kind}/egress`, { stanza, raw, user: from.bareString(), from, to });
      return andThen(handled, (h) => (h ? undefined : this.route(stanza, raw, to, from, fresh, holds)));
    }
    return this.route(stanza, raw, to, from, fresh, holds);
  }

  private route(stanza: Element, raw: string, to: Jid, from: Jid | null, fresh: boolean, holds: ConfirmHolds | undefined): void | Promise<void> {
    if (to.domain !== this.core.domain) {
      // To another server: confirmed to the s2s, like a relay to another SM (docs/s2s.md).
      if (from !== null && this.core.isRemote(to.domain)) this.core.relay(to.toString(), raw);
      else this.core.toRouter(raw);
      return;
    }
    if (to.local === "") {
      if (stanza.name === "iq" && isRequest(stanza) && stanza.firstElement() && from !== null) return this.hostIq(stanza, raw, from, undefined);
      return; // presence and messages to the server itself are for nobody
    }
    const user = to.bareString();
    if (from !== null && this.core.ownership.owns(user)) {
      // One of our own users: handled here rather than through the router and back.
      const el = fresh ? stanza : stanza.clone();
      return this.inboundQueued(el, raw, user, to, from, holds);
    }
    if (from !== null) {
      // A user of another SM: the stanza travels confirmed, in a relay route.
      this.core.relay(to.toString(), raw);
      return;
    }
    this.core.toRouter(raw);
  }

  /** An iq for the server: `iq/host/<ns>`. */
  hostIq(stanza: Element, raw: string, from: Jid, session: Session | undefined): void | Promise<void> {
    const payload = stanza.firstElement();
    if (!isRequest(stanza) || payload === undefined) return;
    return andThen(this.core.events.fire(`iq/host/${payload.ns}`, { stanza, raw, from, session }), (h) => {
      if (!h) this.core.error(stanza, "service-unavailable");
    });
  }

  // ---- to one of our users ----------------------------------------------------

  /**
   * The inbound path in the recipient's queue; failures are answered, never
   * thrown. Its promise is given back (so that a route is acknowledged once
   * the recipient's side is done too) only when it started at once: queued
   * behind other work of the recipient it is left to run, since that work
   * may be the very job asking (a user's message to themselves), which
   * would then wait for itself. Queued, it goes to `holds` instead, which
   * delays only the acknowledgement: a route acknowledged before its work
   * ran would be lost if this SM died in between.
   */
  inboundQueued(stanza: Element, raw: string, user: string, to: Jid, from: Jid, holds?: ConfirmHolds): void | Promise<void> {
    const queued = this.core.queue.isBusy(user);
    try {
      const r = this.core.queue.run(user, () => this.inbound(stanza, raw, user, to, from, holds));
      if (isPromise(r)) {
        const settled = r.catch((err: unknown) => this.core.failed(stanza, err));
        if (!queued) return settled;
        holds?.push(settled);
      }
    } catch (err) {
      this.core.failed(stanza, err);
    }
  }

  /** A stanza to one of our users, in their queue: `<kind>/in`, then the default. */
  inbound(stanza: Element, raw: string, user: string, to: Jid, from: Jid, holds?: ConfirmHolds): void | Promise<void> {
    // A user who moved to us from another SM has their sessions in Redis.
    if (this.core.ownership.mayAdopt(user)) {
      return this.core.ownership.adopt(user).then(() => this.inboundHere(stanza, raw, user, to, from, holds));
    }
    return this.inboundHere(stanza, raw, user, to, from, holds);
  }

  private inboundHere(stanza: Element, raw: string, user: string, to: Jid, from: Jid, holds: ConfirmHolds | undefined): void | Promise<void> {
    const kind = kindOf(stanza);
    if (kind === undefined) return;
    const event: InboundEvent = { stanza, raw, user, to, from, holds };
    const handled = this.core.events.fire(`${kind}/in`, event);
    return andThen(handled, (h) => (h ? undefined : this.inDefault(kind, event.stanza, event.raw, user, to, from)));
  }

  private inDefault(kind: StanzaKind, stanza: Element, raw: string, user: string, to: Jid, from: Jid): void | Promise<void> {
    const session = to.resource === "" ? undefined : this.core.sessions.byFullJid(user, to.resource);
    if (kind !== "iq") {
      // Without a module for it (message.ts, presence.ts): only an exact full JID gets it.
      if (session) this.deliver(session, stanza, raw);
      else if (kind === "message") this.core.error(stanza, "service-unavailable");
      return;
    }
    const request = isRequest(stanza);
    if (to.resource !== "") {
      if (session) this.deliver(session, stanza, raw);
      else if (request) this.core.error(stanza, "service-unavailable");
      return;
    }
    const payload = stanza.firstElement();
    if (!request || !payload) return;
    const ns = payload.ns;
    const answer = async (): Promise<void> => {
      if (!(await this.core.accountExists(user)) || !(await this.core.events.fire(`iq/bare/${ns}`, { stanza, raw, user, to, from }))) {
        this.core.error(stanza, "service-unavailable");
      }
    };
    return answer();
  }

  // ---- to one session ------------------------------------------------------------

  /**
   * `<kind>/deliver`, then the write. With no handler for the kind (the
   * usual case for messages) the text goes out untouched and unparsed.
   */
  deliver(session: Session, stanza: Element | string, raw?: string): void {
    const text = raw ?? (typeof stanza === "string" ? stanza : clientText(stanza));
    const kind = typeof stanza === "string" ? kindOfText(stanza) : kindOf(stanza);
    if (kind === undefined || !this.core.events.has(`${kind}/deliver`)) {
      this.core.writeRoute(session, text);
      return;
    }
    const event = new Delivery(session, kind, text, typeof stanza === "string" ? undefined : stanza);
    const handled = this.core.events.fire(`${kind}/deliver`, event);
    if (handled === false) this.core.writeRoute(session, text);
    else if (handled !== true) {
      // A deliver handler that waited: the stanza still goes out, if later than its neighbours.
      handled.then((h) => h || this.core.writeRoute(session, text), (err: unknown) => this.core.failed(event.stanza, err));
    }
  }
}

/** A DeliverEvent whose element is parsed only when a handler asks for it. */
class Delivery implements DeliverEvent {
  constructor(readonly session: Session, readonly kind: StanzaKind, readonly raw: string, private parsed: Element | undefined) {}

  get stanza(): Element {
    return (this.parsed ??= parseTrusted(this.raw, NS.CLIENT));
  }
}
