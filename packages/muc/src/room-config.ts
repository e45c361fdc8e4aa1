/**
 * The room configuration form (XEP-0045 §10.2, FORM_TYPE muc#roomconfig)
 * with the common options, and what a room shows in disco#info (its
 * features and the muc#roominfo form, §6.4).
 */
import { formElement, type Field, type ReadForm } from "@jabberfarm/dataform";
import type { Element } from "@jabberfarm/xml";
import type { MucConfig } from "./config.js";
import { NS_MAM, NS_MUC, NS_MUC_ROOMCONFIG, NS_MUC_ROOMINFO, NS_SID } from "./ns.js";
import type { Room, RoomConfig } from "./room.js";

export function defaultRoomConfig(c: MucConfig, localpart: string): RoomConfig {
  const d = c.roomDefaults;
  return {
    name: localpart, description: "", password: "",
    persistent: d.persistent, public: d.public, membersOnly: d.membersOnly, moderated: d.moderated, whois: d.whois,
    changeSubject: d.changeSubject, allowInvites: d.allowInvites, allowPm: d.allowPm, maxUsers: Math.min(d.maxUsers, c.maxUsersLimit),
  };
}

const bool = (b: boolean): string[] => [b ? "1" : "0"];
const P = "muc#roomconfig_";

/** The form an owner fills in, with the room's current values. */
export function configForm(config: RoomConfig, maxUsersLimit: number): Element {
  const fields: Field[] = [
    { var: `${P}roomname`, type: "text-single", label: "Name", values: [config.name] },
    { var: `${P}roomdesc`, type: "text-single", label: "Description", values: [config.description] },
    { var: `${P}persistentroom`, type: "boolean", label: "Keep the room when the last occupant leaves", values: bool(config.persistent) },
    { var: `${P}publicroom`, type: "boolean", label: "List the room publicly", values: bool(config.public) },
    { var: `${P}membersonly`, type: "boolean", label: "Only members may enter", values: bool(config.membersOnly) },
    { var: `${P}moderatedroom`, type: "boolean", label: "Only participants with voice may speak", values: bool(config.moderated) },
    { var: `${P}passwordprotectedroom`, type: "boolean", label: "Ask for a password to enter", values: bool(config.password !== "") },
    { var: `${P}roomsecret`, type: "text-private", label: "Password", values: [config.password] },
    {
      var: `${P}whois`, type: "list-single", label: "Who may see occupants' real JIDs", values: [config.whois],
      options: [{ value: "moderators", label: "Moderators only" }, { value: "anyone", label: "Anyone" }],
    },
    { var: `${P}changesubject`, type: "boolean", label: "Occupants may change the subject", values: bool(config.changeSubject) },
    { var: `${P}allowinvites`, type: "boolean", label: "Occupants may invite others", values: bool(config.allowInvites) },
    {
      var: `${P}allowpm`, type: "list-single", label: "Who may send private messages", values: [config.allowPm],
      options: [{ value: "anyone" }, { value: "participants" }, { value: "moderators" }, { value: "none" }],
    },
    { var: `${P}maxusers`, type: "list-single", label: "Most occupants", values: [String(config.maxUsers)],
      options: [...new Set([10, 20, 50, 100, 200, 500, 1000, config.maxUsers].filter((n) => n <= maxUsersLimit))].sort((a, b) => a - b).map((n) => ({ value: String(n) })) },
    // MAM (XEP-0313) is always on for rooms here: shown so clients know (§10.2 muc#roomconfig_enablearchiving).
    { var: `${P}enablearchiving`, type: "boolean", label: "Archive messages (history and MAM)", values: ["1"] },
  ];
  return formElement("form", { formType: NS_MUC_ROOMCONFIG, title: "Room configuration", fields });
}

/**
 * The configuration an owner's submission asks for, starting from the
 * current one (fields left out keep their values); a message for
 * `not-acceptable` when a value is not one the form allows.
 */
export function applyConfigForm(current: RoomConfig, form: ReadForm, maxUsersLimit: number): RoomConfig | string {
  const next: RoomConfig = { ...current };
  const boolField = (name: string, set: (b: boolean) => void): string | undefined => {
    if (!form.values.has(P + name)) return undefined;
    const b = form.boolean(P + name);
    if (b === undefined) return `${P}${name} must be a boolean`;
    set(b);
    return undefined;
  };
  const name = form.text(P + "roomname");
  if (name !== undefined) {
    if (name.length > 200) return "the name is too long";
    next.name = name;
  }
  const desc = form.text(P + "roomdesc");
  if (desc !== undefined) {
    if (desc.length > 1000) return "the description is too long";
    next.description = desc;
  }
  let passwordProtected: boolean | undefined;
  for (const problem of [
    boolField("persistentroom", (b) => (next.persistent = b)),
    boolField("publicroom", (b) => (next.public = b)),
    boolField("membersonly", (b) => (next.membersOnly = b)),
    boolField("moderatedroom", (b) => (next.moderated = b)),
    boolField("passwordprotectedroom", (b) => (passwordProtected = b)),
    boolField("changesubject", (b) => (next.changeSubject = b)),
    boolField("allowinvites", (b) => (next.allowInvites = b)),
  ]) if (problem) return problem;
  const secret = form.text(P + "roomsecret");
  if (secret !== undefined) {
    if (secret.length > 256) return "the password is too long";
    next.password = secret;
  }
  if (passwordProtected === false) next.password = "";
  if (passwordProtected === true && next.password === "") return "a password-protected room needs muc#roomconfig_roomsecret";
  const whois = form.text(P + "whois");
  if (whois !== undefined) {
    if (whois !== "moderators" && whois !== "anyone") return "muc#roomconfig_whois is moderators or anyone";
    next.whois = whois;
  }
  const allowPm = form.text(P + "allowpm");
  if (allowPm !== undefined) {
    if (!["anyone", "participants", "moderators", "none"].includes(allowPm)) return "muc#roomconfig_allowpm is anyone, participants, moderators or none";
    next.allowPm = allowPm as RoomConfig["allowPm"];
  }
  const maxUsers = form.text(P + "maxusers");
  if (maxUsers !== undefined && maxUsers !== "" && maxUsers !== "none") {
    const n = Number(maxUsers);
    if (!Number.isInteger(n) || n < 1) return "muc#roomconfig_maxusers must be a positive number";
    next.maxUsers = Math.min(n, maxUsersLimit);
  }
  return next;
}

/** The room's disco#info features (XEP-0045 §6.4, §17.3). */
export function roomFeatures(room: Room): string[] {
  const c = room.config;
  return [
    NS_MUC,
    c.persistent ? "muc_persistent" : "muc_temporary",
    c.public ? "muc_public" : "muc_hidden",
    c.membersOnly ? "muc_membersonly" : "muc_open",
    c.moderated ? "muc_moderated" : "muc_unmoderated",
    c.password !== "" ? "muc_passwordprotected" : "muc_unsecured",
    c.whois === "anyone" ? "muc_nonanonymous" : "muc_semianonymous",
    NS_MAM, NS_SID, "urn:xmpp:ping",
    "http://jabber.org/protocol/disco#info", "http://jabber.org/protocol/disco#items",
    NS_MUC_ROOMCONFIG.replace("#roomconfig", "#request"),
  ];
}

/** The muc#roominfo form (XEP-0045 §6.4): what a client shows before joining. */
export function roomInfoForm(room: Room): Element {
  return formElement("result", {
    formType: NS_MUC_ROOMINFO,
    fields: [
      { var: "muc#roominfo_description", type: "text-single", values: [room.config.description] },
      { var: "muc#roominfo_occupants", type: "text-single", values: [String(room.occupants.size)] },
      { var: "muc#roominfo_subject", type: "text-single", values: [room.subject?.text ?? ""] },
      { var: "muc#roomconfig_roomname", type: "text-single", values: [room.config.name] },
      { var: "muc#roomconfig_changesubject", type: "boolean", values: bool(room.config.changeSubject) },
    ],
  });
}
