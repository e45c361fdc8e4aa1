/**
 * Service discovery (XEP-0030) for the server and for users' accounts.
 *
 * The server's features are whatever the loaded modules advertised through
 * api.addFeature, read at query time so load order does not matter. A user's
 * bare JID answers only to the user and to contacts who may see the user's
 * presence (subscription from or both): to anyone else it looks exactly like
 * an account that does not exist, so discovery cannot be used to probe accounts.
 */
import type { Jid } from "@jabberfarm/jid";
import { formElement } from "@jabberfarm/dataform";
import { xml, type Element } from "@jabberfarm/xml";
import type { ModuleApi } from "../module-api.js";

export const NS_DISCO_INFO = "http://jabber.org/protocol/disco#info";
export const NS_DISCO_ITEMS = "http://jabber.org/protocol/disco#items";

/** A query for a node we do not have; we publish none (XEP-0030 §3.2, §4.2). */
function hasNode(query: Element): boolean {
  const node = query.attrs.node;
  return node !== undefined && node !== "";
}

function isQuery(stanza: Element): Element | undefined {
  const q = stanza.firstElement();
  return stanza.attrs.type === "get" && q !== undefined && q.local === "query" ? q : undefined;
}

/** XEP-0157: the server's contact addresses as an extended disco#info form; none configured, none sent. */
function contactForm(addresses: Record<string, string[]>): Element | undefined {
  const fields = Object.entries(addresses).filter(([, v]) => v.length > 0).map(([kind, values]) => ({ var: `${kind}-addresses`, type: "list-multi" as const, values }));
  return fields.length === 0 ? undefined : formElement("result", { formType: "http://jabber.org/network/serverinfo", fields });
}

export function disco(api: ModuleApi): void {
  api.addFeature(NS_DISCO_INFO);
  api.addFeature(NS_DISCO_ITEMS);

  api.on(`iq/host/${NS_DISCO_INFO}`, ({ stanza }) => {
    const query = isQuery(stanza);
    if (!query) return false;
    if (hasNode(query)) {
      api.error(stanza, "item-not-found");
      return true;
    }
    const features = [...new Set(api.features())].sort();
    api.result(stanza, xml("query", { xmlns: NS_DISCO_INFO },
      ...api.identities().map((i) => xml("identity", { category: i.category, type: i.type, name: i.name })),
      ...features.map((f) => xml("feature", { var: f })),
      contactForm(api.config.contactAddresses)));
    return true;
  });

  // The services linked under our domain, as the routers announce them (group chat, upload, components).
  api.on(`iq/host/${NS_DISCO_ITEMS}`, ({ stanza }) => {
    const query = isQuery(stanza);
    if (!query) return false;
    if (hasNode(query)) api.error(stanza, "item-not-found");
    else api.result(stanza, xml("query", { xmlns: NS_DISCO_ITEMS }, ...api.linkedServices().map((jid) => xml("item", { jid }))));
    return true;
  });

  const accountInfo = (stanza: Element, query: Element): void => {
    if (hasNode(query)) {
      api.error(stanza, "item-not-found");
      return;
    }
    api.result(stanza, xml("query", { xmlns: NS_DISCO_INFO },
      ...api.accountIdentities().map((i) => xml("identity", { category: i.category, type: i.type, name: i.name })),
      // What modules offer on every account (the archive, PEP), beside discovery itself.
      ...[...new Set([NS_DISCO_INFO, NS_DISCO_ITEMS, ...api.accountFeatures()])].sort().map((f) => xml("feature", { var: f }))));
  };
  const accountItems = (stanza: Element, query: Element): void => {
    if (hasNode(query)) api.error(stanza, "item-not-found");
    else api.result(stanza, xml("query", { xmlns: NS_DISCO_ITEMS }));
  };

  /** The user, or someone a presence probe would be answered for (RFC 6121 §4.3): subscription from or both. */
  const mayDiscover = async (user: string, from: Jid): Promise<boolean> => {
    const requester = from.bareString();
    if (requester === user) return true;
    const item = await api.roster.item(user, requester);
    return item?.subscription === "from" || item?.subscription === "both";
  };

  for (const [ns, answer] of [[NS_DISCO_INFO, accountInfo], [NS_DISCO_ITEMS, accountItems]] as const) {
    api.on(`iq/self/${ns}`, ({ stanza }) => {
      const query = isQuery(stanza);
      if (!query) return false;
      answer(stanza, query);
      return true;
    });
    api.on(`iq/bare/${ns}`, async ({ stanza, user, from }) => {
      const query = isQuery(stanza);
      if (!query) return false;
      if (await mayDiscover(user, from)) answer(stanza, query);
      else api.error(stanza, "service-unavailable");
      return true;
    });
  }
}
