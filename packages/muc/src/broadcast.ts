/**
 * Stanzas from a room to its occupants: an occupant's presence as each
 * viewer may see it (real JID only to those allowed, XEP-0045 §7.2.3 and
 * §7.2.4), and fan-out of one stanza to every occupant.
 */
import { NS, escapeAttr, parseTrusted, xml, type Element } from "@jabberfarm/xml";
import type { MucContext } from "./context.js";
import { NS_MUC, NS_MUC_USER } from "./ns.js";
import { bareOf, type Occupant, type Room } from "./room.js";

/** Parsed presence payloads, so a join into a big room parses each once. */
const payloads = new WeakMap<Occupant, Element[]>();

/** The children of a presence worth repeating to others: everything but MUC payloads and errors. */
export function presencePayload(stanza: Element): string {
  return stanza.children
    .filter((c): c is Element => typeof c !== "string" && c.local !== "error" && c.ns !== NS_MUC && c.ns !== NS_MUC_USER)
    .map((c) => c.toString())
    .join("");
}

function payloadOf(o: Occupant): Element[] {
  let p = payloads.get(o);
  if (p === undefined) {
    p = o.presence === "" ? [] : parseTrusted(`<presence>${o.presence}</presence>`, NS.COMPONENT).children.filter((c): c is Element => typeof c !== "string");
    payloads.set(o, p);
  }
  return p;
}

export interface PresenceExtras {
  type?: "unavailable";
  statuses?: readonly string[];
  /** The new nick, with status 303. */
  nick?: string;
  actor?: string;
  reason?: string;
  /** `<destroy/>` for a room that is going away. */
  destroy?: Element;
  /** The unavailable's own payload (a status text), instead of the occupant's last presence. */
  payload?: Element[];
}

/** The presence of `o` as `viewer` gets it. */
export function occupantPresence(room: Room, o: Occupant, viewer: Occupant, extras: PresenceExtras = {}): Element {
  const self = viewer.jid === o.jid;
  const p = xml("presence", { from: `${room.jid}/${o.nick}`, to: viewer.jid, type: extras.type });
  const payload = extras.payload ?? (extras.type === "unavailable" ? [] : payloadOf(o));
  for (const c of payload) p.append(c.clone());
  const item = xml("item", {
    affiliation: room.affiliationOf(bareOf(o.jid)),
    role: extras.type === "unavailable" ? "none" : o.role,
    jid: self || room.seesRealJids(viewer) ? o.jid : undefined,
    nick: extras.nick,
  });
  if (extras.actor !== undefined) item.append(xml("actor", { nick: extras.actor }));
  if (extras.reason !== undefined) item.append(xml("reason", {}, extras.reason));
  const x = xml("x", { xmlns: NS_MUC_USER }, item);
  if (extras.destroy) x.append(extras.destroy);
  const codes = new Set(extras.statuses ?? []);
  if (self) codes.add("110");
  for (const code of [...codes].sort()) x.append(xml("status", { code }));
  p.append(x);
  return p;
}

/** Sends `o`'s presence to every occupant (itself included), each as they may see it. */
export function broadcastPresence(ctx: MucContext, room: Room, o: Occupant, extras: PresenceExtras = {}, selfExtras: PresenceExtras = extras): void {
  for (const viewer of room.occupants.values()) {
    ctx.send(occupantPresence(room, o, viewer, viewer.jid === o.jid ? selfExtras : extras));
  }
  // An occupant already removed from the room still hears about its own going.
  if (!room.occupants.has(o.nick) || room.occupants.get(o.nick) !== o) ctx.send(occupantPresence(room, o, o, selfExtras));
}

/** Sends one stanza (as text, without `to`) to every occupant: the hot path of a busy room. */
export function fanOut(ctx: MucContext, room: Room, stanza: Element): void {
  // Serialised once; each copy only gets its own `to` after the element name.
  delete stanza.attrs.to;
  const text = stanza.toString();
  const at = stanza.name.length + 1;
  const head = text.slice(0, at);
  const tail = text.slice(at);
  for (const viewer of room.occupants.values()) ctx.sendText(`${head} to='${escapeAttr(viewer.jid)}'${tail}`);
}
