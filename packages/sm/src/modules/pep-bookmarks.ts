/**
 * Bookmarks compatibility (XEP-0402 §5.3, `urn:xmpp:bookmarks:1#compat`):
 * a client that still keeps its group chat bookmarks in private XML storage
 * (XEP-0049 `<storage xmlns='storage:bookmarks'/>`, XEP-0048) sees the same
 * bookmarks as one that uses the PEP node `urn:xmpp:bookmarks:1`. The PEP
 * node is the one copy: a private get reads it, a private set rewrites it
 * (publishing the changed bookmarks and retracting the removed ones, with
 * notifications, as a PEP client's own edits would). Legacy `<url/>`
 * bookmarks have no PEP form and are not kept.
 *
 * Part of the pep module (pep.ts calls it), not a module of its own: it
 * needs the nodes and the notifications of PEP.
 */
import { xml, type Element } from "@jabberfarm/xml";
import type { OutboundEvent } from "../events.js";
import type { ModuleApi } from "../module-api.js";
import type { NodeConfig, PepNodes } from "./pep-nodes.js";
import { storableXml, storedElement } from "./stanza-text.js";

export const NS_BOOKMARKS = "urn:xmpp:bookmarks:1";
const NS_LEGACY = "storage:bookmarks";
const NS_PRIVATE = "jabber:iq:private";

export interface PepForBookmarks {
  nodes: PepNodes;
  maxItemsPerNode: number;
  notifyAll(owner: string, node: string, config: NodeConfig, payload: Element): Promise<void>;
  fail(stanza: Element, condition: "not-acceptable" | "policy-violation", app?: string, text?: string): true;
}

const isTrue = (v: string | undefined): boolean => v === "true" || v === "1";

/** A legacy `<conference/>` as the item of XEP-0402 (id: the room's JID), or undefined without a JID. */
function toPep(c: Element): { id: string; el: Element } | undefined {
  const jid = c.attrs.jid;
  if (jid === undefined || jid === "") return undefined;
  const nick = c.getChildText("nick");
  const password = c.getChildText("password");
  return {
    id: jid,
    el: xml("conference", { xmlns: NS_BOOKMARKS, name: c.attrs.name, autojoin: isTrue(c.attrs.autojoin) ? "true" : undefined },
      nick === undefined ? null : xml("nick", {}, nick), password === undefined ? null : xml("password", {}, password)),
  };
}

function toLegacy(id: string, c: Element): Element {
  const nick = c.getChildText("nick");
  const password = c.getChildText("password");
  return xml("conference", { jid: id, name: c.attrs.name, autojoin: isTrue(c.attrs.autojoin) ? "true" : "false" },
    nick === undefined ? null : xml("nick", {}, nick), password === undefined ? null : xml("password", {}, password));
}

/** What XEP-0402 §4 asks of the node: private to the owner, every bookmark kept. */
function bookmarksConfig(max: number): NodeConfig {
  return { access: "whitelist", persist: true, maxItems: max, sendLast: "never" };
}

export function bookmarksCompat(api: ModuleApi, pep: PepForBookmarks, priority: number): void {
  api.addAccountFeature(`${NS_BOOKMARKS}#compat`);
  const { nodes } = pep;

  api.on(`iq/self/${NS_PRIVATE}`, async ({ stanza, session }: OutboundEvent) => {
    const query = stanza.firstElement();
    const storage = query?.getChild("storage", NS_LEGACY);
    if (query === undefined || storage === undefined || query.getChildren().length !== 1) return false; // other private data: private.ts
    const owner = session.bare;
    if (stanza.attrs.type === "get") {
      const items = await nodes.items(owner, NS_BOOKMARKS);
      api.result(stanza, xml("query", { xmlns: NS_PRIVATE }, xml("storage", { xmlns: NS_LEGACY },
        ...items.map((i) => toLegacy(i.id, storedElement(i.xml))))));
      return true;
    }
    const wanted = new Map<string, string>();
    for (const c of storage.getChildren("conference")) {
      const b = toPep(c);
      const text = b === undefined ? null : storableXml(b.el);
      if (b !== undefined && text !== null) wanted.set(b.id, text);
    }
    if (wanted.size > pep.maxItemsPerNode) return pep.fail(stanza, "policy-violation", "max-items-exceeded", `at most ${pep.maxItemsPerNode} bookmarks`);
    const existing = await nodes.node(owner, NS_BOOKMARKS);
    // The node keeps every bookmark whatever it said before (a client may have made it with max_items 1).
    const config = { ...(existing ?? bookmarksConfig(pep.maxItemsPerNode)), maxItems: pep.maxItemsPerNode };
    if (existing !== null && existing.maxItems !== config.maxItems) await nodes.configure(owner, NS_BOOKMARKS, config);
    const before = new Map((existing === null ? [] : await nodes.items(owner, NS_BOOKMARKS)).map((i) => [i.id, i.xml]));
    let isNew = existing === null;
    for (const [id, text] of wanted) {
      if (before.get(id) === text) continue;
      const stored = await nodes.publish(owner, NS_BOOKMARKS, config, isNew, { id, xml: text });
      if (!stored.ok) return pep.fail(stanza, "policy-violation", stored.why === "max-nodes" ? "max-nodes-exceeded" : undefined, "no room for the bookmarks");
      isNew = false;
      await pep.notifyAll(owner, NS_BOOKMARKS, config, xml("items", { node: NS_BOOKMARKS }, xml("item", { id }, storedElement(text))));
    }
    for (const id of before.keys()) {
      if (wanted.has(id) || !(await nodes.retract(owner, NS_BOOKMARKS, id))) continue;
      await pep.notifyAll(owner, NS_BOOKMARKS, config, xml("items", { node: NS_BOOKMARKS }, xml("retract", { id })));
    }
    api.result(stanza);
    return true;
  }, priority);
}
