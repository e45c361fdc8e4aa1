/**
 * Messages to the room that ask it for something: mediated invitations and
 * declines (XEP-0045 §7.8.2, §7.8.3) and voice requests with their
 * approval (§7.13, §8.6). XEP-0249 direct invitations go from user to
 * user and never reach the room.
 */
import { Jid } from "@jabberfarm/jid";
import { findForm, formElement, readForm } from "@jabberfarm/dataform";
import { xml, type Element } from "@jabberfarm/xml";
import type { MucContext } from "./context.js";
import { setAffiliation, setRole } from "./moderation.js";
import { NS_MUC_REQUEST, NS_MUC_USER } from "./ns.js";
import { affiliationRank, bareOf, type Room } from "./room.js";

const MAX_INVITES = 10;

/** True when the message was one of these requests (answered or refused). */
export async function onRequestMessage(ctx: MucContext, room: Room, stanza: Element, real: string): Promise<boolean> {
  const x = stanza.getChild("x", NS_MUC_USER);
  if (x && (x.getChild("invite") || x.getChild("decline"))) {
    await invitations(ctx, room, stanza, x, real);
    return true;
  }
  const form = findForm(stanza, NS_MUC_REQUEST);
  if (form) {
    await voiceRequest(ctx, room, stanza, form, real);
    return true;
  }
  return false;
}

async function invitations(ctx: MucContext, room: Room, stanza: Element, x: Element, real: string): Promise<void> {
  const bare = bareOf(real);
  for (const decline of x.getChildren("decline")) {
    // The invitee says no: the inviter hears it from the room (§7.8.2).
    const to = Jid.tryParse(decline.attrs.to ?? "");
    if (!to) return ctx.error(stanza, "jid-malformed", "a decline names the inviter in 'to'");
    ctx.send(xml("message", { from: room.jid, to: to.toString() },
      xml("x", { xmlns: NS_MUC_USER }, xml("decline", { from: bare }, reasonOf(decline)))));
  }
  const invites = x.getChildren("invite");
  if (invites.length === 0) return;
  const o = room.occupantByJid(real);
  if (!o) return ctx.error(stanza, "not-acceptable", "only occupants may invite");
  const inviterAffiliation = room.affiliationOf(bare);
  if (!room.config.allowInvites && o.role !== "moderator") return ctx.error(stanza, "forbidden", "only moderators may invite to this room");
  if (invites.length > MAX_INVITES) return ctx.error(stanza, "policy-violation", `at most ${MAX_INVITES} invitations at once`);
  const targets: Jid[] = [];
  for (const invite of invites) {
    const to = Jid.tryParse(invite.attrs.to ?? "");
    if (!to) return ctx.error(stanza, "jid-malformed", "an invitation names the invitee in 'to'");
    targets.push(to);
  }
  for (const [i, to] of targets.entries()) {
    const invitee = to.bareString();
    // In a members-only room an admin's invitation makes the invitee a member (§7.8.2).
    if (room.config.membersOnly && affiliationRank(inviterAffiliation) >= affiliationRank("admin") && room.affiliationOf(invitee) === "none") {
      await setAffiliation(ctx, room, invitee, "member", {});
    }
    const inviteEl = xml("invite", { from: bare }, reasonOf(invites[i]!));
    const ux = xml("x", { xmlns: NS_MUC_USER }, inviteEl);
    if (room.config.password !== "") ux.append(xml("password", {}, room.config.password));
    ctx.send(xml("message", { from: room.jid, to: to.toString() }, ux,
      xml("body", {}, `${bare} invites you to the room ${room.jid}`)));
  }
}

function reasonOf(el: Element): Element | undefined {
  const r = el.getChildText("reason");
  return r === undefined ? undefined : xml("reason", {}, r.slice(0, 1000));
}

async function voiceRequest(ctx: MucContext, room: Room, stanza: Element, formEl: Element, real: string): Promise<void> {
  const o = room.occupantByJid(real);
  if (!o) return ctx.error(stanza, "not-acceptable", "only occupants may ask for voice");
  let form;
  try {
    form = readForm(formEl);
  } catch (e) {
    return ctx.error(stanza, "bad-request", (e as Error).message);
  }
  if (o.role === "moderator") {
    // A moderator's answer to a request it was sent (§8.6).
    if (form.boolean("muc#request_allow") !== true) return;
    const target = room.occupants.get(form.text("muc#roomnick") ?? "");
    if (target?.role === "visitor") await setRole(ctx, room, target, "participant", { actor: o.nick });
    return;
  }
  if (o.role !== "visitor") return ctx.error(stanza, "not-acceptable", "you have voice already");
  if (form.text("muc#role") !== "participant") return ctx.error(stanza, "bad-request", "a voice request asks for muc#role participant");
  for (const m of room.occupants.values()) {
    if (m.role !== "moderator") continue;
    ctx.send(xml("message", { from: room.jid, to: m.jid }, formElement("form", {
      formType: NS_MUC_REQUEST, title: "Voice request",
      fields: [
        { var: "muc#role", type: "list-single", values: ["participant"], options: [{ value: "participant" }] },
        { var: "muc#jid", type: "jid-single", values: [o.jid] },
        { var: "muc#roomnick", type: "text-single", values: [o.nick] },
        { var: "muc#request_allow", type: "boolean", label: `Give ${o.nick} voice?`, values: ["0"] },
      ],
    })));
  }
}
