/**
 * PEP nodes in service discovery (XEP-0163 §7, XEP-0060 §5): disco#items on
 * a bare JID lists the nodes the asker may read, disco#info / #items on a
 * readable node describe it. Anything else (the account itself, nodes the
 * asker may not see, strangers with nothing to read) is left to disco.ts,
 * which answers the way it answers for an account without PEP. Part of the
 * pep module (pep.ts calls it).
 */
import { xml, type Element } from "@jabberfarm/xml";
import type { InboundEvent, OutboundEvent } from "../events.js";
import type { ModuleApi } from "../module-api.js";
import { NS_PUBSUB, type NodeConfig, type PepNodes } from "./pep-nodes.js";

const NS_DISCO_INFO = "http://jabber.org/protocol/disco#info";
const NS_DISCO_ITEMS = "http://jabber.org/protocol/disco#items";

export interface PepForDiscovery {
  nodes: PepNodes;
  mayAccess(owner: string, requester: string, config: NodeConfig): Promise<boolean>;
  validNode(node: string | undefined): node is string;
}

export function pepDiscovery(api: ModuleApi, { nodes, mayAccess, validNode }: PepForDiscovery, priority: number): void {
  /** Answers disco for PEP nodes; false leaves the query to disco.ts (the account itself, unknown nodes, strangers). */
  async function discover(stanza: Element, owner: string, requester: string): Promise<boolean> {
    const query = stanza.firstElement()!;
    if (stanza.attrs.type !== "get" || query.local !== "query") return false;
    const node = query.attrs.node;
    if (node === undefined || node === "") {
      if (query.ns !== NS_DISCO_ITEMS) return false;
      const visible: string[] = [];
      for (const [name, config] of await nodes.nodes(owner)) if (await mayAccess(owner, requester, config)) visible.push(name);
      if (visible.length === 0) return false;
      api.result(stanza, xml("query", { xmlns: NS_DISCO_ITEMS }, ...visible.sort().map((n) => xml("item", { jid: owner, node: n }))));
      return true;
    }
    const config = validNode(node) ? await nodes.node(owner, node) : null;
    if (config === null || !(await mayAccess(owner, requester, config))) return false;
    if (query.ns === NS_DISCO_INFO) {
      api.result(stanza, xml("query", { xmlns: NS_DISCO_INFO, node },
        xml("identity", { category: "pubsub", type: "leaf" }), xml("feature", { var: NS_PUBSUB }), xml("feature", { var: NS_DISCO_INFO })));
    } else {
      const items = config.persist ? await nodes.items(owner, node) : [];
      api.result(stanza, xml("query", { xmlns: NS_DISCO_ITEMS, node }, ...items.map((i) => xml("item", { jid: owner, name: i.id }))));
    }
    return true;
  }
  for (const ns of [NS_DISCO_INFO, NS_DISCO_ITEMS]) {
    api.on(`iq/self/${ns}`, ({ stanza, session }: OutboundEvent) => discover(stanza, session.bare, session.bare), priority);
    api.on(`iq/bare/${ns}`, ({ stanza, user, from }: InboundEvent) => discover(stanza, user, from.bareString()), priority);
  }
}
