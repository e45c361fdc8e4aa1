/**
 * Private XML storage (XEP-0049): a user's own key-value store, keyed by the
 * stored element's name and namespace. Nobody else may read or write it.
 */
import { xml, type Element } from "@jabberfarm/xml";
import type { ModuleApi } from "../module-api.js";
import { storableXml, storedElement } from "./shared.js";

const NS_PRIVATE = "jabber:iq:private";
/** Namespaces that would make the stored element pass for protocol (XEP-0049 §2.3 lets servers refuse them). */
const RESERVED = new Set([NS_PRIVATE, "jabber:client", "jabber:server", "jabber:component:accept", ""]);
/** Per element; bookmarks and client preferences are far smaller. */
export const MAX_PRIVATE_BYTES = 64 * 1024;

export function privateKey(el: Element): string {
  return `${el.local} ${el.ns}`;
}

export function privateStorage(api: ModuleApi): void {
  api.addFeature(NS_PRIVATE);

  api.on(`iq/self/${NS_PRIVATE}`, async ({ stanza, session }) => {
    const query = stanza.firstElement();
    if (query === undefined || query.local !== "query") return false;
    const items = query.getChildren();
    if (items.length === 0) {
      api.error(stanza, "bad-request", "the query must hold the element to get or set");
      return true;
    }
    if (items.some((el) => RESERVED.has(el.ns))) {
      api.error(stanza, "not-acceptable", "private data needs a namespace of its own");
      return true;
    }
    const user = session.bare;
    if (stanza.attrs.type === "get") {
      // XEP-0049 §2.3: one namespace per get.
      const [wanted] = items;
      if (items.length !== 1 || wanted === undefined) {
        api.error(stanza, "bad-request", "get one element at a time");
        return true;
      }
      const stored = await api.storage.getPrivate(user, privateKey(wanted));
      api.result(stanza, xml("query", { xmlns: NS_PRIVATE },
        stored === null ? xml(wanted.local, { xmlns: wanted.ns }) : storedElement(stored)));
      return true;
    }
    // A set may carry several elements (XEP-0049 §2.3); check them all before storing any.
    const texts: Array<[string, string]> = [];
    for (const el of items) {
      const text = storableXml(el);
      if (text === null || Buffer.byteLength(text) > MAX_PRIVATE_BYTES) {
        api.error(stanza, "not-acceptable", text === null ? "the element does not stand on its own as XML" : `an element is larger than ${MAX_PRIVATE_BYTES} bytes`);
        return true;
      }
      texts.push([privateKey(el), text]);
    }
    for (const [key, text] of texts) await api.storage.setPrivate(user, key, text);
    api.result(stanza);
    return true;
  });

  api.on(`iq/bare/${NS_PRIVATE}`, ({ stanza }) => {
    api.error(stanza, "forbidden", "private data belongs to its owner alone");
    return true;
  });
}
