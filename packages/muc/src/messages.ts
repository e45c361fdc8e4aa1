/**
 * Messages to a room (XEP-0045 §7.4–7.5, §8.1): groupchat messages to
 * everyone (archived first, with a stanza id, XEP-0359), subject changes,
 * private messages between occupants, and messages that bounced off an
 * occupant's client (which take the occupant out). Invitations and voice
 * requests are in requests.ts.
 */
import type { Jid } from "@jabberfarm/jid";
import { Element, xml } from "@jabberfarm/xml";
import type { MucContext } from "./context.js";
import { fanOut } from "./broadcast.js";
import { NS_MUC_USER, NS_SID, STATUS } from "./ns.js";
import { removeOccupant } from "./presence.js";
import { onRequestMessage } from "./requests.js";
import { bareOf, type Room } from "./room.js";

export async function onMessage(ctx: MucContext, room: Room | undefined, stanza: Element, nick: string, from: Jid): Promise<void> {
  const type = stanza.attrs.type ?? "normal";
  const real = from.toString();
  if (room === undefined) {
    ctx.error(stanza, "item-not-found", "there is no such room");
    return;
  }
  if (type === "error") {
    // What we sent the occupant bounced because its client is gone (§18.1);
    // an error the client itself made up (a bug, a refusal) is not a reason.
    const o = room.occupantByJid(real);
    if (o && clientGone(stanza)) {
      ctx.log.info({ room: room.jid, nick: o.nick, error: stanza.getChild("error")?.toString().slice(0, 300) }, "occupant removed: its client bounced a message");
      await removeOccupant(ctx, room, o, { type: "unavailable", statuses: [STATUS.technical] }, false);
    }
    return;
  }
  if (nick !== "") {
    privateMessage(ctx, room, stanza, nick, real, type);
    return;
  }
  if (type === "groupchat") {
    await groupchat(ctx, room, stanza, real);
    return;
  }
  if (await onRequestMessage(ctx, room, stanza, real)) return;
  ctx.error(stanza, "bad-request", "send groupchat messages to the room, private messages to an occupant");
}

/** Conditions that say the occupant cannot be reached (RFC 6120 §8.3.3), as prosody's muc also reads them. */
const GONE = new Set(["gone", "item-not-found", "recipient-unavailable", "redirect", "remote-server-not-found", "remote-server-timeout", "service-unavailable"]);

export function clientGone(stanza: Element): boolean {
  const error = stanza.getChild("error");
  if (error === undefined) return true;
  return error.children.some((c) => typeof c !== "string" && c.ns === "urn:ietf:params:xml:ns:xmpp-stanzas" && GONE.has(c.local));
}

/** Children a groupchat message keeps: not a stanza id claiming to be the room's (XEP-0359 §3.1), not an error. */
function keptChildren(stanza: Element, roomJid: string): Element["children"] {
  return stanza.children.filter((c) => typeof c === "string" || (c.local !== "error" && !(c.local === "stanza-id" && c.ns === NS_SID && c.attrs.by === roomJid)));
}

async function groupchat(ctx: MucContext, room: Room, stanza: Element, real: string): Promise<void> {
  const o = room.occupantByJid(real);
  if (!o) return ctx.error(stanza, "not-acceptable", "only occupants may send messages to the room");
  if (o.role === "visitor") return ctx.error(stanza, "forbidden", "visitors may not speak in a moderated room");
  const subject = stanza.getChild("subject");
  const body = stanza.getChild("body");
  if (subject !== undefined && body === undefined) {
    if (!room.config.changeSubject && o.role !== "moderator") return ctx.error(stanza, "forbidden", "only moderators may change the subject");
    room.subject = { text: subject.text(), nick: o.nick, at: new Date().toISOString() };
    await ctx.store.saveSubject(room);
  }
  const out = new Element("message", { from: `${room.jid}/${o.nick}`, type: "groupchat" }, keptChildren(stanza, room.jid));
  if (stanza.attrs.id !== undefined) out.attrs.id = stanza.attrs.id;
  if (body === undefined) {
    // Chat states, subject changes and the like: delivered, not archived
    // (the subject is kept on its own and sent after the history, §7.2.15;
    // in the history it would look like a second subject to clients);
    // after the messages still being archived.
    if (room.committing === 0) fanOut(ctx, room, out);
    else room.commits = room.commits.then(() => fanOut(ctx, room, out));
    return;
  }
  const id = ctx.newId();
  out.append(xml("stanza-id", { xmlns: NS_SID, id, by: room.jid }));
  // Archived before anyone sees it: a message that was broadcast is in the
  // archive, so the process taking the room over after a crash can send
  // what its predecessor had not (docs/muc.md, "Failover"). The append is
  // started now and the broadcast chained after it and after the previous
  // message's: the room takes its next message meanwhile, and whatever is
  // not a groupchat message waits for the chain (service.ts), so occupants
  // see one order.
  // Batched with every other room's messages of the moment (RoomStore.historyWriter);
  // it settles once its batch was written, or failed (logged there, delivered either way).
  const appended = ctx.store.historyWriter.append({ user: room.jid, value: JSON.stringify({ nick: o.nick, xml: out.toString() }), id, with: bareOf(real) });
  room.committing++;
  room.commits = room.commits.then(() => appended).then(() => {
    room.committing--;
    fanOut(ctx, room, out);
    ctx.occupantStore?.markSent(room.jid, id);
  });
  if (++room.appendsSincePrune >= ctx.config.archive.pruneEvery) {
    room.appendsSincePrune = 0;
    const pruning = room.commits.then(() => ctx.store.prune(room.jid)).then(() => undefined, () => undefined);
    room.commits = pruning;
  }
}

function privateMessage(ctx: MucContext, room: Room, stanza: Element, nick: string, real: string, type: string): void {
  const sender = room.occupantByJid(real);
  if (!sender) return ctx.error(stanza, "not-acceptable", "only occupants may send private messages");
  if (type === "groupchat") return ctx.error(stanza, "bad-request", "groupchat messages go to the room");
  const target = room.occupants.get(nick);
  if (!target) return ctx.error(stanza, "item-not-found", "no occupant has that nickname");
  const allowed = room.config.allowPm;
  if (allowed === "none" || (allowed === "participants" && sender.role === "visitor") || (allowed === "moderators" && sender.role !== "moderator")) {
    return ctx.error(stanza, "forbidden", "private messages are not allowed in this room");
  }
  const out = new Element("message", { ...stanza.attrs, from: `${room.jid}/${sender.nick}`, to: target.jid }, keptChildren(stanza, room.jid));
  delete out.attrs.xmlns;
  // Marks it as coming through a room (XEP-0045 §7.5), so clients keep it apart from chats with the real JID.
  if (out.getChild("x", NS_MUC_USER) === undefined) out.append(xml("x", { xmlns: NS_MUC_USER }));
  ctx.send(out);
}
