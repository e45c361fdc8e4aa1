/**
 * Changing an occupant's role or a JID's affiliation and telling the room
 * (XEP-0045 §8–§10): kicks (role none, 307), bans (outcast, 301), voice,
 * moderator and membership changes, and the removal of those a change
 * shuts out (members-only, 321/322).
 */
import { removeOccupant } from "./presence.js";
import { broadcastPresence } from "./broadcast.js";
import type { MucContext } from "./context.js";
import { STATUS } from "./ns.js";
import { bareOf, type Affiliation, type AffiliationEntry, type Occupant, type Role, type Room } from "./room.js";

export interface Change {
  actor?: string;
  reason?: string;
}

export async function setRole(ctx: MucContext, room: Room, o: Occupant, role: Role, change: Change): Promise<void> {
  if (role === "none") {
    await removeOccupant(ctx, room, o, { type: "unavailable", statuses: [STATUS.kicked], ...change });
    return;
  }
  const next: Occupant = { ...o, role };
  room.add(next);
  ctx.occupantStore?.save(room.jid, next);
  broadcastPresence(ctx, room, next, change);
}

/**
 * Stores the affiliation, then brings the present occupants of that JID in
 * line: out for outcasts (and non-members of a members-only room), the
 * role the new affiliation gives for the others. False when the room holds
 * too many affiliations already.
 */
export async function setAffiliation(ctx: MucContext, room: Room, bare: string, affiliation: Affiliation, change: Change): Promise<boolean> {
  const before = room.affiliations.get(bare);
  const entry: AffiliationEntry | undefined = affiliation === "none"
    ? undefined
    : { affiliation, ...(before?.nick === undefined ? {} : { nick: before.nick }), ...(change.reason === undefined ? {} : { reason: change.reason }) };
  if (!(await ctx.store.setAffiliation(room.jid, bare, entry))) return false;
  if (entry === undefined) room.affiliations.delete(bare);
  else room.affiliations.set(bare, entry);
  for (const o of room.occupantsOf(bare)) {
    if (affiliation === "outcast") {
      await removeOccupant(ctx, room, o, { type: "unavailable", statuses: [STATUS.banned], ...change });
    } else if (affiliation === "none" && room.config.membersOnly) {
      await removeOccupant(ctx, room, o, { type: "unavailable", statuses: [STATUS.affiliationChanged], ...change });
    } else {
      await setRole(ctx, room, o, room.defaultRole(affiliation), change);
    }
  }
  return true;
}

/** After a room became members-only: everyone without an affiliation leaves (§9.? status 322). */
export async function enforceMembersOnly(ctx: MucContext, room: Room): Promise<void> {
  for (const o of [...room.occupants.values()]) {
    if (room.affiliationOf(bareOf(o.jid)) === "none") {
      await removeOccupant(ctx, room, o, { type: "unavailable", statuses: [STATUS.membersOnly] });
    }
  }
}
