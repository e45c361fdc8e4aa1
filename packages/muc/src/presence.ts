/**
 * Presence to a room (XEP-0045 §7.1–7.7): entering with the checks in the
 * order the XEP gives, nickname changes, presence updates, leaving, and
 * the removal of occupants whose client is gone ("error kicks", §18.1).
 */
import type { Jid } from "@jabberfarm/jid";
import type { Element } from "@jabberfarm/xml";
import type { MucContext } from "./context.js";
import { broadcastPresence, occupantPresence, presencePayload, type PresenceExtras } from "./broadcast.js";
import { sendHistory, sendSubject } from "./history.js";
import { clientGone } from "./messages.js";
import { NS_MUC, STATUS } from "./ns.js";
import { affiliationRank, type Occupant, type Room } from "./room.js";

const MAX_NICK = 1023;

export async function onPresence(ctx: MucContext, roomJid: string, room: Room | undefined, stanza: Element, nick: string, from: Jid): Promise<void> {
  const type = stanza.attrs.type;
  const real = from.toString();
  const current = room?.occupantByJid(real);
  if (type === "unavailable") {
    if (room && current) await removeOccupant(ctx, room, current, { type: "unavailable", payload: statusOnly(stanza) });
    return;
  }
  if (type === "error") {
    if (!clientGone(stanza)) return;
    if (room && current) ctx.log.info({ room: room.jid, nick: current.nick, error: stanza.getChild("error")?.toString().slice(0, 300) }, "occupant removed: its client bounced a presence");
    if (room && current) await removeOccupant(ctx, room, current, { type: "unavailable", statuses: [STATUS.technical] }, false);
    return;
  }
  // Subscriptions and probes: a room has no roster.
  if (type !== undefined) return;
  if (nick === "") {
    ctx.error(stanza, "jid-malformed", "a nickname is needed to enter a room");
    return;
  }
  if (nick.length > MAX_NICK) {
    ctx.error(stanza, "not-acceptable", "the nickname is too long");
    return;
  }
  if (room && current) {
    if (current.nick === nick) update(ctx, room, current, stanza);
    else changeNick(ctx, room, current, stanza, nick, from.bareString());
    return;
  }
  await enter(ctx, roomJid, room, stanza, nick, from);
}

/** The `<status/>` of an unavailable presence, which others see (§7.14). */
function statusOnly(stanza: Element): Element[] {
  return stanza.getChildren("status");
}

async function enter(ctx: MucContext, roomJid: string, existing: Room | undefined, stanza: Element, nick: string, from: Jid): Promise<void> {
  const bare = from.bareString();
  const muc = stanza.getChild("x", NS_MUC);
  let room = existing;
  let created = false;
  if (room === undefined) {
    if (!ctx.mayCreate(bare)) {
      ctx.error(stanza, "not-allowed", "you may not create rooms on this service");
      return;
    }
    room = await ctx.createRoom(roomJid, bare);
    created = true;
  }
  const affiliation = room.affiliationOf(bare);
  // §7.2.4 onwards: the checks in the XEP's order.
  if (room.locked && affiliation !== "owner") return ctx.error(stanza, "item-not-found", "the room is still being configured by its owner");
  if (affiliation === "outcast") return ctx.error(stanza, "forbidden", "you are banned from this room");
  if (room.config.membersOnly && affiliation === "none") return ctx.error(stanza, "registration-required", "only members may enter this room");
  if (room.occupants.has(nick) || room.nickReservedByOther(nick, bare)) return ctx.error(stanza, "conflict", "that nickname is taken");
  if (!created && room.config.password !== "" && affiliation !== "owner" && muc?.getChildText("password") !== room.config.password) {
    return ctx.error(stanza, "not-authorized", "the room needs a password");
  }
  if (room.occupants.size >= room.config.maxUsers && affiliationRank(affiliation) < affiliationRank("admin")) {
    return ctx.error(stanza, "service-unavailable", "the room is full");
  }
  const o: Occupant = { nick, jid: from.toString(), role: room.defaultRole(affiliation), presence: presencePayload(stanza), since: Date.now() };
  // Who is there first, then the newcomer's own presence to all (§7.2.3).
  for (const other of room.occupants.values()) ctx.send(occupantPresence(room, other, o));
  room.add(o);
  ctx.occupantStore?.save(room.jid, o);
  const own: string[] = [STATUS.logging];
  if (room.config.whois === "anyone") own.push(STATUS.nonAnonymous);
  if (created) own.push(STATUS.created);
  broadcastPresence(ctx, room, o, {}, { statuses: own });
  await sendHistory(ctx, room, o, muc?.getChild("history"));
  sendSubject(ctx, room, o);
  ctx.log.debug({ room: room.jid, nick, created }, "occupant entered");
}

function update(ctx: MucContext, room: Room, o: Occupant, stanza: Element): void {
  const next: Occupant = { ...o, presence: presencePayload(stanza) };
  room.add(next);
  ctx.occupantStore?.save(room.jid, next);
  broadcastPresence(ctx, room, next);
}

function changeNick(ctx: MucContext, room: Room, o: Occupant, stanza: Element, nick: string, bare: string): void {
  if (room.occupants.has(nick) || room.nickReservedByOther(nick, bare)) {
    ctx.error(stanza, "conflict", "that nickname is taken");
    return;
  }
  // §7.6: unavailable with 303 and the new nick, then available under it.
  broadcastPresence(ctx, room, o, { type: "unavailable", statuses: [STATUS.nickChanged], nick });
  room.remove(o);
  ctx.occupantStore?.remove(room.jid, o.nick);
  const next: Occupant = { ...o, nick, presence: presencePayload(stanza) };
  room.add(next);
  ctx.occupantStore?.save(room.jid, next);
  broadcastPresence(ctx, room, next);
}

/**
 * Takes an occupant out and tells everyone (itself too, unless `toSelf` is
 * false: a client that bounced our stanzas cannot hear it); an empty room
 * that is not persistent goes away (§10.9).
 */
export async function removeOccupant(ctx: MucContext, room: Room, o: Occupant, extras: PresenceExtras, toSelf = true): Promise<void> {
  room.remove(o);
  ctx.occupantStore?.remove(room.jid, o.nick);
  for (const viewer of room.occupants.values()) ctx.send(occupantPresence(room, o, viewer, extras));
  if (toSelf) ctx.send(occupantPresence(room, o, o, extras));
  if (room.occupants.size === 0 && (!room.config.persistent || room.locked)) await ctx.destroyRoom(room);
}

