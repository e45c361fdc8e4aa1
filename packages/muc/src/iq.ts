/**
 * IQs to a room and to its occupants: disco (XEP-0030 as XEP-0045 §6
 * describes it), muc#admin, muc#owner and MAM on the room's JID; to
 * `room/nick`, self-ping answered by the room (XEP-0410) and everything
 * else passed to the occupant with the sender's room JID (§7.5, vCards and
 * version requests through the room), answers mapped back.
 */
import { xml, type Element } from "@jabberfarm/xml";
import { onAdminIq } from "./admin.js";
import type { MucContext } from "./context.js";
import { onMamQuery } from "./history.js";
import {
  NS_DISCO_INFO, NS_DISCO_ITEMS, NS_MAM, NS_MUC, NS_MUC_ADMIN, NS_MUC_OWNER, NS_PING,
} from "./ns.js";
import { onOwnerIq } from "./owner.js";
import { roomFeatures, roomInfoForm } from "./room-config.js";
import type { Room } from "./room.js";

/** An iq passed to an occupant, waiting for its answer. */
interface Proxied {
  requester: string;
  id: string;
  /** The room JID the answer comes from: the occupant that was asked. */
  answerFrom: string;
  /** The occupant's real JID: only it may answer. */
  target: string;
  timer: NodeJS.Timeout;
}

const PROXY_TIMEOUT_MS = 60_000;
const MAX_PROXIED = 10_000;

export class RoomIq {
  private readonly proxied = new Map<string, Proxied>();

  constructor(private readonly ctx: MucContext) {}

  async handle(room: Room | undefined, stanza: Element, nick: string, real: string): Promise<void> {
    const ctx = this.ctx;
    const type = stanza.attrs.type;
    if (type === "result" || type === "error") {
      this.answer(stanza);
      return;
    }
    if (type !== "get" && type !== "set") return ctx.error(stanza, "bad-request", "an iq is get, set, result or error");
    const query = stanza.firstElement();
    if (query === undefined) return ctx.error(stanza, "bad-request", "an iq request has one child");
    if (room === undefined) return ctx.error(stanza, "item-not-found", "there is no such room");
    if (nick !== "") return this.toOccupant(room, stanza, query, nick, real);
    switch (query.ns) {
      case NS_DISCO_INFO:
        if (type !== "get") break;
        if (query.attrs.node) return ctx.error(stanza, "item-not-found");
        return ctx.send(xml("iq", { type: "result", id: stanza.attrs.id, from: room.jid, to: real },
          xml("query", { xmlns: NS_DISCO_INFO },
            xml("identity", { category: "conference", type: "text", name: room.config.name }),
            ...roomFeatures(room).map((f) => xml("feature", { var: f })),
            roomInfoForm(room))));
      case NS_DISCO_ITEMS: {
        if (type !== "get") break;
        // Occupants are listed to those who may see who is there: occupants, or anyone for a public room (§6.5).
        const visible = room.config.public || room.occupantByJid(real) !== undefined;
        const q = xml("query", { xmlns: NS_DISCO_ITEMS });
        if (visible) for (const o of room.occupants.values()) q.append(xml("item", { jid: `${room.jid}/${o.nick}` }));
        return ctx.send(xml("iq", { type: "result", id: stanza.attrs.id, from: room.jid, to: real }, q));
      }
      case NS_MUC_ADMIN:
        return onAdminIq(ctx, room, stanza, query, real);
      case NS_MUC_OWNER:
        return onOwnerIq(ctx, room, stanza, query, real);
      case NS_MAM:
        if (query.local === "query") return onMamQuery(ctx, room, stanza, query, real);
        break;
      case NS_PING:
        return ctx.send(xml("iq", { type: "result", id: stanza.attrs.id, from: room.jid, to: real }));
      case NS_MUC:
        // Some clients ask for the unique room name here (muc#unique); rooms are named by their users.
        break;
    }
    ctx.error(stanza, "service-unavailable");
  }

  private toOccupant(room: Room, stanza: Element, query: Element, nick: string, real: string): void {
    const ctx = this.ctx;
    const sender = room.occupantByJid(real);
    // XEP-0410: a client that is not in the room learns it from this answer and rejoins.
    if (!sender) return ctx.error(stanza, "not-acceptable", "you are not in this room");
    const target = room.occupants.get(nick);
    if (!target) return ctx.error(stanza, "item-not-found", "no occupant has that nickname");
    if (target === sender && query.ns === NS_PING) {
      ctx.send(xml("iq", { type: "result", id: stanza.attrs.id, from: `${room.jid}/${nick}`, to: real }));
      return;
    }
    if (this.proxied.size >= MAX_PROXIED) return ctx.error(stanza, "resource-constraint", "too many requests in flight");
    const id = ctx.newId();
    const timer = setTimeout(() => this.proxied.delete(id), PROXY_TIMEOUT_MS);
    timer.unref();
    this.proxied.set(id, { requester: real, id: stanza.attrs.id ?? "", answerFrom: `${room.jid}/${nick}`, target: target.jid, timer });
    const out = xml("iq", { type: stanza.attrs.type, id, from: `${room.jid}/${sender.nick}`, to: target.jid });
    out.children = stanza.children;
    ctx.send(out);
  }

  /** An occupant answered a request we passed on: back to whoever asked, from the occupant's room JID. */
  private answer(stanza: Element): void {
    const p = this.proxied.get(stanza.attrs.id ?? "");
    if (p === undefined || stanza.attrs.from !== p.target) return;
    this.proxied.delete(stanza.attrs.id!);
    clearTimeout(p.timer);
    const out = xml("iq", { type: stanza.attrs.type, id: p.id, from: p.answerFrom, to: p.requester });
    out.children = stanza.children;
    this.ctx.send(out);
  }
}
