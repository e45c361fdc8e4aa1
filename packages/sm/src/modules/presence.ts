/**
 * Presence (RFC 6121 §4): broadcast of the user's availability to the
 * contacts subscribed to it and to the user's own resources, probes at
 * initial presence and their answers, directed presence, and the
 * unavailable presence every session owes when it ends, however it ends.
 * Subscription types (subscribe, subscribed...) belong to subscription.ts.
 */
import { Jid } from "@jabberfarm/jid";
import { xml, type Element } from "@jabberfarm/xml";
import type { Subscription } from "@jabberfarm/xdb";
import type { InboundEvent, OutboundEvent, SessionEvent } from "../events.js";
import type { Session } from "../session.js";
import type { ModuleApi } from "../module-api.js";

const SUBSCRIPTION_TYPES: ReadonlySet<string> = new Set(["subscribe", "subscribed", "unsubscribe", "unsubscribed"]);

const hasTo = (s: Subscription): boolean => s === "to" || s === "both";
const hasFrom = (s: Subscription): boolean => s === "from" || s === "both";


/** RFC 6121 §4.7.2.3: an integer from -128 to 127, 0 when absent; null when invalid. */
export function readPriority(stanza: Element): number | null {
  const el = stanza.getChild("priority");
  if (!el) return 0;
  const text = el.text().trim();
  if (!/^[+-]?[0-9]{1,4}$/.test(text)) return null;
  const n = Number(text);
  return n >= -128 && n <= 127 ? n : null;
}

export function presence(api: ModuleApi): void {
  const maxDirected = api.config.presence.maxDirected;
  /**
   * Sends `p` (already `from` the session) to every contact subscribed to the
   * user, to the user's available resources and, with `directed`, to the
   * entities the session sent directed presence to. `p.attrs.to` is rewritten
   * per recipient; each send serialises at once, so one element serves all.
   */
  async function broadcast(session: Session, p: Element, directed: boolean): Promise<void> {
    const user = session.bare;
    const roster = await api.roster.get(user);
    const reached = new Set<string>();
    for (const item of roster.items.values()) {
      // The user's own bare JID is served by the loop over resources below.
      if (!hasFrom(item.subscription) || item.jid === user) continue;
      p.attrs.to = item.jid;
      api.send(p);
      reached.add(item.jid);
    }
    for (const s of api.sessions.available(user)) {
      p.attrs.to = s.full;
      api.deliver(s, p);
    }
    if (directed) {
      for (const target of session.directedTo) {
        const bare = Jid.tryParse(target)?.bareString();
        if (bare === undefined || bare === user || reached.has(bare)) continue;
        p.attrs.to = target;
        api.send(p);
      }
    }
  }

  function unavailableToDirected(session: Session, p: Element = xml("presence", { type: "unavailable", from: session.full })): void {
    for (const target of session.directedTo) {
      p.attrs.to = target;
      api.send(p);
    }
  }

  async function initial(session: Session): Promise<void> {
    const user = session.bare;
    // §4.2.2: a new resource learns about the user's other ones too.
    for (const s of api.sessions.available(user)) {
      if (s === session || !s.presence) continue;
      const p = s.presence.clone();
      p.attrs.to = session.full;
      api.deliver(session, p);
    }
    // §4.3.1: probes go from the bare JID, so answers reach every resource
    // and reveal nothing about which resource asked.
    const roster = await api.roster.get(user);
    for (const item of roster.items.values()) {
      if (hasTo(item.subscription) && item.jid !== user) {
        api.send(xml("presence", { type: "probe", from: user, to: item.jid }));
      }
    }
    await api.initialPresence(session);
  }

  api.on("presence/out", async ({ stanza, raw, session }: OutboundEvent) => {
    const type = stanza.attrs.type;
    if (type !== undefined && type !== "unavailable") return false; // subscriptions, probes, errors: not ours
    if (type === undefined && readPriority(stanza) === null) {
      api.error(stanza, "bad-request", "priority is an integer from -128 to 127");
      return true;
    }

    if (stanza.attrs.to !== undefined) {
      const to = Jid.tryParse(stanza.attrs.to);
      if (to === null) {
        api.error(stanza, "jid-malformed");
        return true;
      }
      // Directed presence (§4.6): whoever saw us available is owed an
      // unavailable when this session goes away. The list is bounded
      // (`presence.maxDirected`): it lives in memory and in Redis.
      const target = to.toString();
      if (type === undefined && !session.directedTo.has(target) && session.directedTo.size >= maxDirected) {
        api.error(stanza, "resource-constraint", `too many directed presences from this session (at most ${maxDirected})`);
        return true;
      }
      if (type === undefined) session.directedTo.add(target);
      else session.directedTo.delete(target);
      api.saveSession(session);
      api.send(stanza, raw);
      return true;
    }

    const p = stanza.clone();
    p.attrs.from = session.full;
    delete p.attrs.to;

    if (type === "unavailable") {
      if (session.available) await broadcast(session, p, true);
      else unavailableToDirected(session, p);
      session.available = false;
      session.presence = null;
      session.directedTo.clear();
      api.saveSession(session);
      return true;
    }

    const first = !session.available;
    session.available = true;
    session.priority = readPriority(stanza) ?? 0;
    session.presence = p;
    // On record for a takeover before anyone hears of it.
    api.saveSession(session);
    await broadcast(session, p.clone(), false);
    if (first) await initial(session);
    return true;
  });

  // Contacts must not keep seeing a session that vanished without saying goodbye.
  api.on("session/ended", async ({ session }: SessionEvent) => {
    if (session.available) {
      await broadcast(session, xml("presence", { type: "unavailable", from: session.full }), true);
    } else {
      unavailableToDirected(session);
    }
    session.available = false;
    session.presence = null;
    session.directedTo.clear();
  });

  api.on("presence/in", async ({ stanza, raw, user, to, from }: InboundEvent) => {
    const type = stanza.attrs.type;
    if (type !== undefined && SUBSCRIPTION_TYPES.has(type)) return false;

    if (type === "probe") {
      const available = api.sessions.available(user);
      if (available.length === 0 || stanza.attrs.from === undefined) return true;
      // Only a subscriber may learn the user's presence (§4.3.2); anyone
      // else is ignored rather than told whether the user is online.
      const prober = from.bareString();
      const item = prober === user ? undefined : await api.roster.item(user, prober);
      if (!item || !hasFrom(item.subscription)) return true;
      for (const s of available) {
        if (!s.presence) continue;
        const p = s.presence.clone();
        p.attrs.to = stanza.attrs.from;
        api.send(p);
      }
      return true;
    }
    if (type !== undefined && type !== "unavailable" && type !== "error") return true;

    if (to.resource !== "") {
      const s = api.sessions.byFullJid(user, to.resource);
      if (s) api.deliver(s, raw);
      return true;
    }
    const available = api.sessions.available(user);
    if (available.length === 0) return true;
    const sender = from.bareString();
    if (type !== "error" && sender !== user) {
      // Presence to the bare JID is a contact's broadcast; the user only
      // asked for the presence of those they are subscribed to.
      const item = await api.roster.item(user, sender);
      if (!item || !hasTo(item.subscription)) return true;
    }
    for (const s of available) api.deliver(s, raw);
    return true;
  });
}
