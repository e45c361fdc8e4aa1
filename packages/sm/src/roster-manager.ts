/**
 * Rosters of the users this SM serves: read through to storage, kept in
 * memory while the user has sessions, and pushed to every interested
 * resource on each change (RFC 6121 §2.1.6). Modules (roster, presence,
 * subscription) share it, like prosody's core rostermanager.
 */
import { escapeText, xml, type Element } from "@jabberfarm/xml";
import type { RosterItem, Storage } from "@jabberfarm/xdb";
import type { RosterConfig } from "./quotas.js";
import type { SessionRegistry } from "./session-registry.js";
import type { Session } from "./session.js";

export const NS_ROSTER = "jabber:iq:roster";

/**
 * The keyed store of pending inbound subscription requests (key: the
 * requester's bare JID): "pending in" is part of a contact's state, which
 * the roster and subscription modules both change (RFC 6121 §3, §2.5.2).
 */
export const PENDING_REQUESTS_STORE = "subscription-requests";

/** A roster change the limits refuse (docs/security.md, "Quotas"), with the stanza error it deserves. */
export class RosterLimitError extends Error {
  constructor(readonly condition: "not-acceptable" | "resource-constraint", text: string) {
    super(text);
    this.name = "RosterLimitError";
  }
}

/**
 * What an item costs in the largest form it travels in: as JSON in xdb's
 * answer (escaped into XML text) or as XML in the client's roster result.
 * Bounding this per item and the number of items keeps a whole roster
 * within one answer.
 */
export function rosterItemBytes(item: RosterItem): number {
  return Math.max(Buffer.byteLength(escapeText(JSON.stringify(item))), Buffer.byteLength(rosterItemElement(item).toString())) + 1;
}

export interface CachedRoster {
  ver: string;
  items: Map<string, RosterItem>;
}

export function rosterItemElement(item: RosterItem | { jid: string; subscription: "remove" }): Element {
  if (item.subscription === "remove") return xml("item", { jid: item.jid, subscription: "remove" });
  const full = item as RosterItem;
  return xml("item", { jid: full.jid, name: full.name, subscription: full.subscription, ask: full.ask, approved: full.approved ? "true" : undefined },
    ...full.groups.map((g) => xml("group", {}, g)));
}

let pushCounter = 0;

export class RosterManager {
  private readonly cache = new Map<string, CachedRoster>();

  constructor(
    private readonly storage: Storage,
    private readonly sessions: SessionRegistry,
    private readonly deliver: (s: Session, stanza: Element) => void,
    private readonly limits: RosterConfig = { maxItems: 1000, maxItemBytes: 1000 },
  ) {}

  async get(user: string): Promise<CachedRoster> {
    const hit = this.cache.get(user);
    if (hit) return hit;
    const r = await this.storage.getRoster(user);
    const roster = { ver: r.ver, items: new Map(r.items.map((i) => [i.jid, i])) };
    // Only online users' rosters stay in memory; others are read per use.
    if (this.sessions.isOnline(user)) this.cache.set(user, roster);
    return roster;
  }

  async item(user: string, contact: string): Promise<RosterItem | undefined> {
    return (await this.get(user)).items.get(contact);
  }

  /**
   * Stores an item (insert or replace) and pushes it. Throws RosterLimitError
   * for an item larger than `maxItemBytes`, or a new one when the roster
   * holds `maxItems` already (checked by the storage, atomically).
   */
  async set(user: string, item: RosterItem): Promise<void> {
    const { maxItems, maxItemBytes } = this.limits;
    const bytes = rosterItemBytes(item);
    if (bytes > maxItemBytes) {
      // Only growth is refused: an item stored before the limit may still change state.
      const before = (await this.get(user)).items.get(item.jid);
      if (before === undefined || bytes > rosterItemBytes(before)) {
        throw new RosterLimitError("not-acceptable", `the roster item is larger than ${maxItemBytes} bytes`);
      }
    }
    const written = await this.storage.setRosterItem(user, item, { maxItems });
    if (!written.ok) throw new RosterLimitError("resource-constraint", `the roster is full (${maxItems} items)`);
    const ver = written.ver;
    const cached = this.cache.get(user);
    if (cached) {
      cached.ver = ver;
      cached.items.set(item.jid, item);
    }
    this.push(user, rosterItemElement(item), ver);
  }

  /** Removes an item and pushes the removal; false when there was none. */
  async remove(user: string, contact: string): Promise<boolean> {
    const ver = await this.storage.removeRosterItem(user, contact);
    if (ver === null) return false;
    const cached = this.cache.get(user);
    if (cached) {
      cached.ver = ver;
      cached.items.delete(contact);
    }
    this.push(user, rosterItemElement({ jid: contact, subscription: "remove" }), ver);
    return true;
  }

  /** Forget a user's cached roster (their last session ended). */
  evict(user: string): void {
    this.cache.delete(user);
  }

  private push(user: string, item: Element, ver: string): void {
    for (const s of this.sessions.of(user)) {
      if (!s.interested) continue;
      this.deliver(s, xml("iq", { type: "set", id: `push${++pushCounter}`, to: s.full, xmlns: "jabber:client" },
        xml("query", { xmlns: NS_ROSTER, ver }, item)));
    }
  }
}
