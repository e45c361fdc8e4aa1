/**
 * The roster (RFC 6121 §2): get, set and remove over `jabber:iq:roster`,
 * with roster versioning (§2.6). State lives in `api.roster`, which also
 * pushes every change to the user's interested resources.
 */
import { Jid } from "@jabberfarm/jid";
import { xml, type Element } from "@jabberfarm/xml";
import type { RosterItem } from "@jabberfarm/xdb";
import type { OutboundEvent } from "../events.js";
import { NS_ROSTER, PENDING_REQUESTS_STORE, RosterLimitError, rosterItemElement } from "../roster-manager.js";
import type { KeyedStore } from "../module-store.js";
import type { ModuleApi } from "../module-api.js";

/** Server-configured limits of RFC 6121 §2.3.3, in characters. */
export const MAX_ROSTER_NAME = 1023;
export const MAX_ROSTER_GROUP = 1023;

const STATES: ReadonlySet<string> = new Set(["none", "to", "from", "both"]);

type Parsed =
  | { ok: true; remove: true; jid: string }
  | { ok: true; remove: false; jid: string; name: string | undefined; groups: string[] }
  | { ok: false; condition: "bad-request" | "not-acceptable" | "jid-malformed"; text: string };

function chars(s: string): number {
  return [...s].length;
}

/** Validates the one item of a roster set (RFC 6121 §2.3.3, §2.5.3). */
function parseSetItem(query: Element): Parsed {
  const items = query.getChildren("item");
  if (items.length !== 1 || query.getChildren().length !== 1) {
    return { ok: false, condition: "bad-request", text: "a roster set carries exactly one item" };
  }
  const item = items[0]!;
  const rawJid = item.attrs.jid;
  if (rawJid === undefined) return { ok: false, condition: "bad-request", text: "the item has no jid" };
  const jid = Jid.tryParse(rawJid);
  if (jid === null) return { ok: false, condition: "jid-malformed", text: "the item's jid is not a valid JID" };
  // Subscriptions, probes and presence are all keyed by bare JID; a full-JID
  // item could never match any of them.
  if (jid.resource !== "") return { ok: false, condition: "bad-request", text: "roster items are bare JIDs" };

  const sub = item.attrs.subscription;
  if (sub === "remove") return { ok: true, remove: true, jid: jid.toString() };
  // §2.1.2.5: the server MUST ignore the other states in a set (clients such
  // as Smack echo the item's current state when renaming); only a value that
  // is no state at all is an error.
  if (sub !== undefined && !STATES.has(sub)) {
    return { ok: false, condition: "bad-request", text: `unknown subscription '${sub}'` };
  }

  const rawName = item.attrs.name;
  if (rawName !== undefined && chars(rawName) > MAX_ROSTER_NAME) {
    return { ok: false, condition: "not-acceptable", text: `the name is longer than ${MAX_ROSTER_NAME} characters` };
  }
  const groups: string[] = [];
  for (const g of item.getChildren("group")) {
    const name = g.text();
    if (name === "") return { ok: false, condition: "not-acceptable", text: "empty group" };
    if (chars(name) > MAX_ROSTER_GROUP) {
      return { ok: false, condition: "not-acceptable", text: `a group is longer than ${MAX_ROSTER_GROUP} characters` };
    }
    if (groups.includes(name)) return { ok: false, condition: "bad-request", text: `group '${name}' listed twice` };
    groups.push(name);
  }
  // An empty name is no handle at all; several clients send name='' after
  // the user clears it, so it means "no name" rather than an error.
  return { ok: true, remove: false, jid: jid.toString(), name: rawName === "" ? undefined : rawName, groups };
}

export function roster(api: ModuleApi): void {
  api.addFeature(NS_ROSTER);
  // Roster versioning (RFC 6121 §2.6): the `ver` of a get is honoured.
  api.addStreamFeature(xml("ver", { xmlns: "urn:xmpp:features:rosterver" }));
  const pending = api.openStore(PENDING_REQUESTS_STORE);

  api.on(`iq/self/${NS_ROSTER}`, async ({ stanza, session }: OutboundEvent) => {
    const query = stanza.firstElement()!;
    const user = session.bare;

    if (stanza.attrs.type === "get") {
      // Interested from now on (§2.2), so no change between this read and the
      // client's next stanza goes unpushed.
      if (!session.interested) {
        session.interested = true;
        api.saveSession(session);
      }
      const current = await api.roster.get(user);
      // §2.6.3: the client is up to date; later changes come as pushes.
      if (query.attrs.ver !== undefined && query.attrs.ver === current.ver) {
        api.result(stanza);
        return true;
      }
      api.result(stanza, xml("query", { xmlns: NS_ROSTER, ver: current.ver },
        ...[...current.items.values()].map((i) => rosterItemElement(i))));
      return true;
    }

    const parsed = parseSetItem(query);
    if (!parsed.ok) {
      api.error(stanza, parsed.condition, parsed.text);
      return true;
    }
    const existing = await api.roster.item(user, parsed.jid);

    if (parsed.remove) {
      if (!existing) {
        api.error(stanza, "item-not-found");
        return true;
      }
      await cancelBothWays(api, pending, user, existing);
      await api.roster.remove(user, parsed.jid);
      api.result(stanza);
      return true;
    }

    // The subscription state belongs to the presence handshake, never to the
    // client (§2.1.2): only the handle and the groups change here.
    const next: RosterItem = { jid: parsed.jid, subscription: existing?.subscription ?? "none", groups: parsed.groups };
    if (parsed.name !== undefined) next.name = parsed.name;
    if (existing?.ask) next.ask = existing.ask;
    if (existing?.approved) next.approved = true;
    try {
      await api.roster.set(user, next);
    } catch (err) {
      // Over the roster's limits (RFC 6121 §2.3.3): refused, with why.
      if (!(err instanceof RosterLimitError)) throw err;
      api.error(stanza, err.condition, err.message);
      return true;
    }
    api.result(stanza);
    return true;
  });
}

/**
 * Removing a contact ends every subscription with it (RFC 6121 §2.5.2): ours
 * to theirs (or our pending request) with `unsubscribe`, theirs to ours (or
 * their pending request) with `unsubscribed`, which also takes our presence
 * away from them.
 */
async function cancelBothWays(api: ModuleApi, pending: KeyedStore, user: string, item: RosterItem): Promise<void> {
  const contact = item.jid;
  if (item.subscription === "to" || item.subscription === "both" || item.ask === "subscribe") {
    api.send(xml("presence", { type: "unsubscribe", from: user, to: contact }));
  }
  const removed = await pending.set(user, contact, null);
  const pendingIn = removed.ok && removed.deleted > 0;
  const theyHadOurs = item.subscription === "from" || item.subscription === "both";
  if (theyHadOurs || pendingIn) {
    if (theyHadOurs) {
      for (const s of api.sessions.available(user)) {
        api.send(xml("presence", { type: "unavailable", from: s.full, to: contact }));
      }
    }
    api.send(xml("presence", { type: "unsubscribed", from: user, to: contact }));
  }
}
