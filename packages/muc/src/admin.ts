/**
 * muc#admin (XEP-0045 §8, §9): moderators change roles (kick, voice),
 * admins and owners change affiliations (ban, membership, admins,
 * owners), and read the lists. A request of several items is checked whole
 * before any of it is applied.
 */
import { Jid } from "@jabberfarm/jid";
import { xml, type Element } from "@jabberfarm/xml";
import type { MucContext } from "./context.js";
import { setAffiliation, setRole } from "./moderation.js";
import { NS_MUC_ADMIN } from "./ns.js";
import {
  AFFILIATIONS, ROLES, affiliationRank, bareOf, mayChangeAffiliation, mayChangeRole, type Affiliation, type Occupant, type Role, type Room,
} from "./room.js";

const MAX_ITEMS = 100;

export async function onAdminIq(ctx: MucContext, room: Room, stanza: Element, query: Element, real: string): Promise<void> {
  const actor = room.occupantByJid(real);
  const actorAffiliation = room.affiliationOf(bareOf(real));
  const items = query.getChildren("item");
  if (items.length === 0 || items.length > MAX_ITEMS) return ctx.error(stanza, "bad-request", `one to ${MAX_ITEMS} items`);
  if (stanza.attrs.type === "get") return list(ctx, room, stanza, items[0]!, actor, actorAffiliation);

  type Planned = { kind: "role"; target: Occupant; role: Role; reason?: string } | { kind: "affiliation"; bare: string; affiliation: Affiliation; reason?: string };
  const plan: Planned[] = [];
  for (const item of items) {
    const reason = item.getChildText("reason")?.slice(0, 1000);
    const extra = reason === undefined ? {} : { reason };
    if (item.attrs.role !== undefined) {
      const role = item.attrs.role as Role;
      if (!ROLES.includes(role)) return ctx.error(stanza, "bad-request", `no role '${item.attrs.role}'`);
      const target = room.occupants.get(item.attrs.nick ?? "");
      if (!target) return ctx.error(stanza, "item-not-found", "no occupant has that nickname");
      const allowed = actor !== undefined && mayChangeRole(
        { role: actor.role, affiliation: actorAffiliation },
        { role: target.role, affiliation: room.affiliationOf(bareOf(target.jid)) }, role);
      if (!allowed) return ctx.error(stanza, "not-allowed", `you may not make ${target.nick} ${role}`);
      plan.push({ kind: "role", target, role, ...extra });
    } else if (item.attrs.affiliation !== undefined) {
      const affiliation = item.attrs.affiliation as Affiliation;
      if (!AFFILIATIONS.includes(affiliation)) return ctx.error(stanza, "bad-request", `no affiliation '${item.attrs.affiliation}'`);
      const jid = item.attrs.jid !== undefined ? Jid.tryParse(item.attrs.jid) : undefined;
      const byNick = item.attrs.jid === undefined ? room.occupants.get(item.attrs.nick ?? "") : undefined;
      const bare = jid?.bareString() ?? (byNick ? bareOf(byNick.jid) : undefined);
      if (bare === undefined) return ctx.error(stanza, jid === null ? "jid-malformed" : "bad-request", "an affiliation change names a JID");
      if (!mayChangeAffiliation(actorAffiliation, room.affiliationOf(bare), affiliation)) {
        return ctx.error(stanza, "not-allowed", `you may not make ${bare} ${affiliation}`);
      }
      plan.push({ kind: "affiliation", bare, affiliation, ...extra });
    } else {
      return ctx.error(stanza, "bad-request", "an item changes a role or an affiliation");
    }
  }
  // Somebody must still own the room (§10.6).
  const owners = new Set(room.owners());
  for (const p of plan) if (p.kind === "affiliation") {
    if (p.affiliation === "owner") owners.add(p.bare);
    else owners.delete(p.bare);
  }
  if (owners.size === 0) return ctx.error(stanza, "conflict", "a room needs an owner");

  const actorNick = actor?.nick;
  for (const p of plan) {
    const change = { ...(actorNick === undefined ? {} : { actor: actorNick }), ...(p.reason === undefined ? {} : { reason: p.reason }) };
    if (p.kind === "role") {
      const current = room.occupants.get(p.target.nick);
      if (current) await setRole(ctx, room, current, p.role, change);
    } else if (!(await setAffiliation(ctx, room, p.bare, p.affiliation, change))) {
      return ctx.error(stanza, "resource-constraint", "the room has too many affiliations");
    }
  }
  ctx.send(xml("iq", { type: "result", id: stanza.attrs.id, from: room.jid, to: real }));
}

/** The list of one role or affiliation (§8.5, §9.5, §10.5, §10.8). */
function list(ctx: MucContext, room: Room, stanza: Element, item: Element, actor: Occupant | undefined, affiliation: Affiliation): void {
  const out = xml("query", { xmlns: NS_MUC_ADMIN });
  if (item.attrs.role !== undefined) {
    if (actor?.role !== "moderator") return ctx.error(stanza, "forbidden", "only moderators see role lists");
    for (const o of room.occupants.values()) {
      if (o.role === item.attrs.role) out.append(xml("item", { nick: o.nick, role: o.role, affiliation: room.affiliationOf(bareOf(o.jid)), jid: o.jid }));
    }
  } else if (item.attrs.affiliation !== undefined) {
    const wanted = item.attrs.affiliation;
    // Members may see the member list of a members-only room; the rest is for admins.
    const mayRead = affiliationRank(affiliation) >= affiliationRank("admin") || (wanted === "member" && room.config.membersOnly && affiliation === "member");
    if (!mayRead) return ctx.error(stanza, "forbidden", "only admins and owners see affiliation lists");
    for (const [jid, e] of room.affiliations) {
      if (e.affiliation === wanted) out.append(xml("item", { affiliation: e.affiliation, jid, nick: e.nick }, e.reason === undefined ? null : xml("reason", {}, e.reason)));
    }
  } else {
    return ctx.error(stanza, "bad-request", "ask for a role or an affiliation");
  }
  ctx.send(xml("iq", { type: "result", id: stanza.attrs.id, from: room.jid, to: stanza.attrs.from }, out));
}
