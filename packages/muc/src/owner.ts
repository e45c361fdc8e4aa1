/**
 * muc#owner (XEP-0045 §10): the configuration form, its submission (which
 * also unlocks a new room, §10.1), cancelling a new room, and destroying a
 * room (§10.9).
 */
import { findForm, readForm } from "@jabberfarm/dataform";
import { Jid } from "@jabberfarm/jid";
import { xml, type Element } from "@jabberfarm/xml";
import type { MucContext } from "./context.js";
import { occupantPresence } from "./broadcast.js";
import { enforceMembersOnly } from "./moderation.js";
import { NS_MUC_OWNER, NS_MUC_ROOMCONFIG, NS_MUC_USER, STATUS } from "./ns.js";
import { applyConfigForm, configForm } from "./room-config.js";
import { bareOf, type Room } from "./room.js";

export async function onOwnerIq(ctx: MucContext, room: Room, stanza: Element, query: Element, real: string): Promise<void> {
  if (room.affiliationOf(bareOf(real)) !== "owner") return ctx.error(stanza, "forbidden", "only owners configure a room");
  const result = (payload?: Element): void => ctx.send(xml("iq", { type: "result", id: stanza.attrs.id, from: room.jid, to: real }, payload));
  if (stanza.attrs.type === "get") {
    result(xml("query", { xmlns: NS_MUC_OWNER }, configForm(room.config, ctx.config.maxUsersLimit)));
    return;
  }
  const destroy = query.getChild("destroy");
  if (destroy) {
    await destroyRoom(ctx, room, destroy);
    result();
    return;
  }
  const formEl = findForm(query);
  if (!formEl) return ctx.error(stanza, "bad-request", "submit the configuration form, or destroy the room");
  let form;
  try {
    form = readForm(formEl);
  } catch (e) {
    return ctx.error(stanza, "bad-request", (e as Error).message);
  }
  if (form.type === "cancel") {
    // Cancelling the first configuration destroys the new room (§10.1.3).
    if (room.locked) await destroyRoom(ctx, room, undefined);
    result();
    return;
  }
  if (form.type !== "submit") return ctx.error(stanza, "bad-request", "a configuration is submitted with type 'submit'");
  if (form.formType !== undefined && form.formType !== NS_MUC_ROOMCONFIG) return ctx.error(stanza, "bad-request", `FORM_TYPE must be ${NS_MUC_ROOMCONFIG}`);
  const next = applyConfigForm(room.config, form, ctx.config.maxUsersLimit);
  if (typeof next === "string") return ctx.error(stanza, "not-acceptable", next);
  const before = room.config;
  const wasLocked = room.locked;
  room.config = next;
  room.locked = false;
  try {
    await ctx.store.saveConfig(room);
  } catch (err) {
    room.config = before;
    room.locked = wasLocked;
    ctx.log.warn({ room: room.jid, err: (err as Error).message }, "room configuration not stored");
    return ctx.error(stanza, "internal-server-error", "the configuration could not be stored");
  }
  result();
  if (!wasLocked) announceChanges(ctx, room, before.whois !== next.whois);
  if (next.membersOnly && !before.membersOnly) await enforceMembersOnly(ctx, room);
  if (room.occupants.size === 0 && !next.persistent) await ctx.destroyRoom(room);
}

/** §10.2.1: a message with status 104 (and 172/173 when real JIDs become visible or hidden). */
function announceChanges(ctx: MucContext, room: Room, whoisChanged: boolean): void {
  const x = xml("x", { xmlns: NS_MUC_USER }, xml("status", { code: STATUS.configChanged }));
  if (whoisChanged) x.append(xml("status", { code: room.config.whois === "anyone" ? STATUS.nowNonAnonymous : STATUS.nowSemiAnonymous }));
  for (const o of room.occupants.values()) ctx.send(xml("message", { from: room.jid, to: o.jid, type: "groupchat" }, x.clone()));
}

/** Everyone out with the reason and the alternate venue (§10.9), then the room is gone. */
async function destroyRoom(ctx: MucContext, room: Room, destroy: Element | undefined): Promise<void> {
  const alternate = destroy?.attrs.jid === undefined ? undefined : Jid.tryParse(destroy.attrs.jid)?.toString();
  const reason = destroy?.getChildText("reason");
  const el = xml("destroy", { jid: alternate }, reason === undefined ? null : xml("reason", {}, reason.slice(0, 1000)));
  for (const o of [...room.occupants.values()]) {
    ctx.send(occupantPresence(room, o, o, { type: "unavailable", destroy: el }));
    room.remove(o);
  }
  await ctx.destroyRoom(room);
}
