/**
 * Private XML storage (XEP-0049): a user's own key-value store, keyed by the
 * stored element's name and namespace (the module's keyed store "private").
 * Nobody else may read or write it. Bounded per user by `private.maxItems`,
 * `private.maxItemBytes` and `private.maxBytes`.
 */
import { xml, type Element } from "@jabberfarm/xml";
import type { ModuleApi } from "../module-api.js";
import { storableXml, storedElement } from "./stanza-text.js";

const NS_PRIVATE = "jabber:iq:private";
/** Namespaces that would make the stored element pass for protocol (XEP-0049 §2.3 lets servers refuse them). */
const RESERVED = new Set([NS_PRIVATE, "jabber:client", "jabber:server", "jabber:component:accept", ""]);

/** What one storage write takes (and far more than any client sends at once). */
const MAX_PER_SET = 100;

export function privateKey(el: Element): string {
  return `${el.local} ${el.ns}`;
}

export function privateStorage(api: ModuleApi): void {
  api.addFeature(NS_PRIVATE);
  const limits = api.config.private;
  const store = api.openStore("private", { maxKeys: limits.maxItems, maxBytes: limits.maxBytes, maxValueBytes: limits.maxItemBytes });

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
      const stored = await store.get(user, privateKey(wanted));
      api.result(stanza, xml("query", { xmlns: NS_PRIVATE },
        stored === null ? xml(wanted.local, { xmlns: wanted.ns }) : storedElement(stored)));
      return true;
    }
    // A set may carry several elements (XEP-0049 §2.3): stored all in one write, or none.
    if (items.length > MAX_PER_SET) {
      api.error(stanza, "not-acceptable", `at most ${MAX_PER_SET} elements per set`);
      return true;
    }
    const entries: Array<{ key: string; value: string }> = [];
    for (const el of items) {
      const text = storableXml(el);
      if (text === null) {
        api.error(stanza, "not-acceptable", "the element does not stand on its own as XML");
        return true;
      }
      entries.push({ key: privateKey(el), value: text });
    }
    const stored = await store.setMany(user, entries);
    if (stored.ok) api.result(stanza);
    else if (stored.limit === "maxValueBytes") api.error(stanza, "not-acceptable", `an element is larger than ${limits.maxItemBytes} bytes`);
    else if (stored.limit === "maxKeys") api.error(stanza, "resource-constraint", `private storage is full (${limits.maxItems} elements)`);
    else api.error(stanza, "resource-constraint", `private storage is full (${limits.maxBytes} bytes)`);
    return true;
  });

  api.on(`iq/bare/${NS_PRIVATE}`, ({ stanza }) => {
    api.error(stanza, "forbidden", "private data belongs to its owner alone");
    return true;
  });
}
