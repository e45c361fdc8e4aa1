/** The namespaces the group chat service speaks. */
export const NS_MUC = "http://jabber.org/protocol/muc";
export const NS_MUC_USER = "http://jabber.org/protocol/muc#user";
export const NS_MUC_ADMIN = "http://jabber.org/protocol/muc#admin";
export const NS_MUC_OWNER = "http://jabber.org/protocol/muc#owner";
export const NS_MUC_ROOMCONFIG = "http://jabber.org/protocol/muc#roomconfig";
export const NS_MUC_ROOMINFO = "http://jabber.org/protocol/muc#roominfo";
export const NS_MUC_REQUEST = "http://jabber.org/protocol/muc#request";
export const NS_DISCO_INFO = "http://jabber.org/protocol/disco#info";
export const NS_DISCO_ITEMS = "http://jabber.org/protocol/disco#items";
export const NS_MAM = "urn:xmpp:mam:2";
export const NS_RSM = "http://jabber.org/protocol/rsm";
export const NS_FORWARD = "urn:xmpp:forward:0";
export const NS_SID = "urn:xmpp:sid:0";
export const NS_DELAY = "urn:xmpp:delay";
export const NS_PING = "urn:xmpp:ping";
/** XEP-0249 direct invitations: users send them to each other; the room only advertises nothing for them. */
export const NS_CONFERENCE = "jabber:x:conference";

/** XEP-0045 §15.2.2 status codes the service sends. */
export const STATUS = {
  nonAnonymous: "100",
  configChanged: "104",
  self: "110",
  logging: "170",
  nowNonAnonymous: "172",
  nowSemiAnonymous: "173",
  created: "201",
  nickAssigned: "210",
  banned: "301",
  nickChanged: "303",
  kicked: "307",
  affiliationChanged: "321",
  membersOnly: "322",
  shutdown: "332",
  /** Removed because their client answered with an error (XEP-0045 §18.1, "error kicks"). */
  technical: "333",
} as const;
