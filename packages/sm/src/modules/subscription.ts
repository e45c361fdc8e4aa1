/**
 * Presence subscriptions (RFC 6121 §3 and the state tables of Appendix A).
 *
 * The state of a contact is its roster item (subscription none/to/from/both,
 * `ask` for "pending out", `approved` for a pre-approval) plus a stored
 * subscription request for "pending in". Outbound stanzas (from the user's
 * sessions) change the user's side and go on to the contact from the user's
 * bare JID; inbound ones (routed to the user) change the user's side and
 * reach the user's available resources only when they changed something.
 *
 * Pre-approval (§3.4) is supported: a `subscribed` with no request pending
 * marks the item approved instead of being routed, and a later request from
 * that contact is then approved without asking the user. c2s advertises it
 * with the `urn:xmpp:features:pre-approval` stream feature.
 *
 * Pending requests live in the keyed store "subscription-requests" (key:
 * the requester), bounded per user (`subscription.maxPending`,
 * `maxPendingBytes`, `maxRequestBytes`); requests from senders not in the
 * user's roster are rate-limited per sender, and a user's own subscribes
 * per user (`subscription.inboundPerSender`, `outboundPerUser`). Whatever a
 * quota or a rate refuses is answered with a stanza error, never dropped unseen.
 */
import { Jid } from "@jabberfarm/jid";
import { xml, type Element } from "@jabberfarm/xml";
import type { RosterItem, Subscription } from "@jabberfarm/xdb";
import type { InboundEvent, OutboundEvent, SessionEvent } from "../events.js";
import { SlidingWindowLimit } from "../rate-limit.js";
import { PENDING_REQUESTS_STORE, RosterLimitError } from "../roster-manager.js";
import type { ModuleApi } from "../module-api.js";

type SubType = "subscribe" | "subscribed" | "unsubscribe" | "unsubscribed";

const SUB_TYPES: ReadonlySet<string> = new Set(["subscribe", "subscribed", "unsubscribe", "unsubscribed"]);

function isSubType(type: string | undefined): type is SubType {
  return type !== undefined && SUB_TYPES.has(type);
}

const hasTo = (s: Subscription): boolean => s === "to" || s === "both";
const hasFrom = (s: Subscription): boolean => s === "from" || s === "both";

function withTo(s: Subscription, on: boolean): Subscription {
  const from = hasFrom(s);
  if (on) return from ? "both" : "to";
  return from ? "from" : "none";
}

function withFrom(s: Subscription, on: boolean): Subscription {
  const to = hasTo(s);
  if (on) return to ? "both" : "from";
  return to ? "to" : "none";
}

function sameItem(a: RosterItem | undefined, b: RosterItem): boolean {
  return a !== undefined && a.subscription === b.subscription && a.ask === b.ask && (a.approved ?? false) === (b.approved ?? false);
}

/** A copy of `item` (or a fresh item for `contact`) with the state fields replaced. */
function update(item: RosterItem | undefined, contact: string, state: { subscription: Subscription; ask?: boolean; approved?: boolean }): RosterItem {
  const next: RosterItem = { jid: contact, subscription: state.subscription, groups: item ? [...item.groups] : [] };
  if (item?.name !== undefined) next.name = item.name;
  if (state.ask ?? item?.ask === "subscribe") next.ask = "subscribe";
  if (state.approved ?? item?.approved === true) next.approved = true;
  return next;
}

export function subscription(api: ModuleApi): void {
  // Pre-approvals (RFC 6121 §3.4) are kept: see `subscribed` below.
  api.addStreamFeature(xml("sub", { xmlns: "urn:xmpp:features:pre-approval" }));
  const limits = api.config.subscription;
  const pending = api.openStore(PENDING_REQUESTS_STORE, {
    maxKeys: limits.maxPending, maxBytes: limits.maxPendingBytes, maxValueBytes: limits.maxRequestBytes,
  });
  const inboundRate = new SlidingWindowLimit(limits.inboundPerSender.count, limits.inboundPerSender.seconds);
  const outboundRate = new SlidingWindowLimit(limits.outboundPerUser.count, limits.outboundPerUser.seconds);

  /** Writes an item only when its state changed, so that no-op stanzas cause no pushes. */
  async function store(user: string, before: RosterItem | undefined, after: RosterItem): Promise<boolean> {
    if (sameItem(before, after)) return false;
    await api.roster.set(user, after);
    return true;
  }

  function deliver(user: string, stanza: string): void {
    for (const s of api.sessions.available(user)) api.deliver(s, stanza);
  }

  /** §3.1.5: a new subscriber gets the user's current presence right away. */
  function sendPresenceTo(user: string, contact: string): void {
    for (const s of api.sessions.available(user)) {
      if (!s.presence) continue;
      const p = s.presence.clone();
      p.attrs.from = s.full;
      p.attrs.to = contact;
      api.send(p);
    }
  }

  /** A contact who lost their subscription to the user sees the user go offline. */
  function sendUnavailableTo(user: string, contact: string): void {
    for (const s of api.sessions.available(user)) {
      api.send(xml("presence", { type: "unavailable", from: s.full, to: contact }));
    }
  }

  async function pendingIn(user: string, contact: string): Promise<boolean> {
    return (await pending.get(user, contact)) !== null;
  }

  /** Forgets a pending request; whether there was one. */
  async function removeRequest(user: string, contact: string): Promise<boolean> {
    const r = await pending.set(user, contact, null);
    return r.ok && r.deleted > 0;
  }

  /** The stanza as it goes to the contact: from the user's bare JID, to the contact's bare JID (§3.1.2). */
  function stamped(stanza: Element, user: string, contact: string): Element {
    const out = stanza.clone();
    out.attrs.from = user;
    out.attrs.to = contact;
    return out;
  }

  // ---- outbound: the user's own requests and answers ------------------------

  api.on("presence/out", async ({ stanza, session }: OutboundEvent) => {
    const type = stanza.attrs.type;
    if (!isSubType(type)) return false;
    if (stanza.attrs.to === undefined) {
      api.error(stanza, "bad-request", "a subscription stanza needs a 'to'");
      return true;
    }
    const to = Jid.tryParse(stanza.attrs.to);
    if (to === null) {
      api.error(stanza, "jid-malformed");
      return true;
    }
    const user = session.bare;
    const contact = to.bareString();
    if (type === "subscribe" && !outboundRate.take(user)) {
      api.error(stanza, "policy-violation", `too many subscription requests: at most ${limits.outboundPerUser.count} per ${limits.outboundPerUser.seconds} s`);
      return true;
    }
    try {
      return await outbound(stanza, type, user, contact);
    } catch (err) {
      // The roster is full, or the item would be too large: the user learns why.
      if (!(err instanceof RosterLimitError)) throw err;
      api.error(stanza, err.condition, err.message);
      return true;
    }
  });

  async function outbound(stanza: Element, type: SubType, user: string, contact: string): Promise<boolean> {
    const item = await api.roster.item(user, contact);
    const sub = item?.subscription ?? "none";
    const out = stamped(stanza, user, contact);

    switch (type) {
      case "subscribe": {
        // Already subscribed or already asking: nothing changes here, but the
        // request still goes out, so a contact whose state drifted can answer.
        if (!hasTo(sub)) await store(user, item, update(item, contact, { subscription: sub, ask: true }));
        api.send(out);
        return true;
      }
      case "unsubscribe": {
        if (item) await store(user, item, update(item, contact, { subscription: withTo(sub, false), ask: false }));
        api.send(out);
        return true;
      }
      case "subscribed": {
        const requested = await pendingIn(user, contact);
        if (requested && !hasFrom(sub)) {
          await store(user, item, update(item, contact, { subscription: withFrom(sub, true), approved: false }));
          await removeRequest(user, contact);
          api.send(out);
          sendPresenceTo(user, contact);
          return true;
        }
        if (requested) await removeRequest(user, contact);
        if (hasFrom(sub)) {
          // No change; routed anyway so a contact still waiting (ask) is answered.
          api.send(out);
          return true;
        }
        // Nobody asked: a pre-approval (§3.4), kept on the item and not routed.
        await store(user, item, update(item, contact, { subscription: sub, approved: true }));
        return true;
      }
      case "unsubscribed": {
        await removeRequest(user, contact);
        if (item) await store(user, item, update(item, contact, { subscription: withFrom(sub, false), approved: false }));
        if (hasFrom(sub)) sendUnavailableTo(user, contact);
        // Routed even when nothing changed here: it is also how a request this
        // side has no record of (lost, or never stored) gets denied.
        api.send(out);
        return true;
      }
    }
  }

  // ---- inbound: a contact's requests and answers ----------------------------

  api.on("presence/in", async ({ stanza, raw, user, from }: InboundEvent) => {
    const type = stanza.attrs.type;
    if (!isSubType(type)) return false;
    // Nobody to subscribe to: dropped without an answer, so that the sender
    // learns nothing about which accounts exist.
    if (!(await api.accountExists(user))) return true;
    const contact = from.bareString();
    // Contacts' answers must come from their bare JID; a full one is bared.
    let text = raw;
    if (from.resource !== "") {
      const fixed = stanza.clone();
      fixed.attrs.from = contact;
      fixed.attrs.xmlns = "jabber:client";
      text = fixed.toString();
    }
    const item = await api.roster.item(user, contact);
    const sub = item?.subscription ?? "none";

    switch (type) {
      case "subscribe": {
        if (hasFrom(sub)) {
          api.send(xml("presence", { type: "subscribed", from: user, to: contact }));
          sendPresenceTo(user, contact);
          return true;
        }
        if (item?.approved) {
          await store(user, item, update(item, contact, { subscription: withFrom(sub, true), approved: false }));
          await removeRequest(user, contact);
          api.send(xml("presence", { type: "subscribed", from: user, to: contact }));
          sendPresenceTo(user, contact);
          return true;
        }
        // A sender the user does not know is held to a rate (a flood of requests is spam).
        if (!item && !inboundRate.take(contact)) {
          api.error(stanza, "policy-violation", "too many subscription requests from this sender; try again later");
          return true;
        }
        const duplicate = await pendingIn(user, contact);
        // Stored until the user answers, delivered now and at every login (presence/initial).
        const stored = await pending.set(user, contact, text);
        if (!stored.ok) {
          if (stored.limit === "maxValueBytes") api.error(stanza, "not-acceptable", `the subscription request is larger than ${limits.maxRequestBytes} bytes`);
          else api.error(stanza, "resource-constraint", "the user has too many pending subscription requests");
          return true;
        }
        if (!duplicate) deliver(user, text);
        return true;
      }
      case "subscribed": {
        if (item?.ask !== "subscribe" || hasTo(sub)) return true;
        await store(user, item, update(item, contact, { subscription: withTo(sub, true), ask: false }));
        deliver(user, text);
        return true;
      }
      case "unsubscribe": {
        const cancelled = await removeRequest(user, contact);
        let changed = cancelled;
        // No unavailable goes back: the contact's own server has already
        // dropped their 'to', so it would not deliver one; their client
        // learns it from the roster push.
        if (item && hasFrom(sub)) {
          await store(user, item, update(item, contact, { subscription: withFrom(sub, false) }));
          changed = true;
        }
        if (changed) deliver(user, text);
        return true;
      }
      case "unsubscribed": {
        if (!item) return true;
        const changed = await store(user, item, update(item, contact, { subscription: withTo(sub, false), ask: false }));
        if (changed) deliver(user, text);
        return true;
      }
    }
  });

  // Requests wait for an answer across sessions: every new available resource sees them (page by page).
  api.on("presence/initial", async ({ session }: SessionEvent) => {
    for await (const r of pending.entries(session.bare)) api.deliver(session, r.value);
  });
}
