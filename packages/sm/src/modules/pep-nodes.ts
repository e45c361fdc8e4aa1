/**
 * A user's PEP nodes and their items (XEP-0163 on the XEP-0060 subset in
 * docs/pep.md): node configuration, the options a publish may carry, and
 * their storage in the module's keyed store "pep". Not a module: pep.ts
 * is the one that registers anything.
 *
 * Keys, per user: `n\n<node>` → the node's configuration (JSON), and
 * `i\n<node>\n<item id>` → one item (JSON: its publish sequence and its
 * XML). A newline cannot be in a node name we accept (XML attribute values
 * are normalised, and pep.ts refuses one written as a character
 * reference), so a node's keys are exactly those with its prefix, and the
 * store's code point order keeps them together: one prefix read per node.
 */
import { formElement, readForm } from "@jabberfarm/dataform";
import type { Element } from "@jabberfarm/xml";
import type { KeyedStore, StoreOutcome } from "../module-store.js";

export const NS_PUBSUB = "http://jabber.org/protocol/pubsub";
export const NS_PUBSUB_OWNER = `${NS_PUBSUB}#owner`;
export const NS_PUBSUB_EVENT = `${NS_PUBSUB}#event`;
export const NS_PUBSUB_ERRORS = `${NS_PUBSUB}#errors`;
export const NS_PUBLISH_OPTIONS = `${NS_PUBSUB}#publish-options`;
export const NS_NODE_CONFIG = `${NS_PUBSUB}#node_config`;

export const ACCESS_MODELS = ["presence", "open", "whitelist"] as const;
export type AccessModel = (typeof ACCESS_MODELS)[number];
export const SEND_LAST = ["never", "on_sub", "on_sub_and_presence"] as const;
export type SendLast = (typeof SEND_LAST)[number];

export interface NodeConfig {
  access: AccessModel;
  persist: boolean;
  maxItems: number;
  sendLast: SendLast;
}

/** A node created by a publish without options (XEP-0163 §3: presence access; one item, as prosody keeps). */
export function defaultConfig(): NodeConfig {
  return { access: "presence", persist: true, maxItems: 1, sendLast: "on_sub_and_presence" };
}

export interface StoredItem {
  id: string;
  /** Publish order: later publishes have larger numbers. */
  seq: number;
  xml: string;
}

/** A form value we cannot take: the field it is in, and why. */
export class OptionError extends Error {
  constructor(readonly field: string, text: string) {
    super(text);
    this.name = "OptionError";
  }
}

const FIELDS = {
  access: "pubsub#access_model",
  persist: "pubsub#persist_items",
  maxItems: "pubsub#max_items",
  sendLast: "pubsub#send_last_published_item",
} as const;

/**
 * The node options a form (publish-options, or a configure submission)
 * asks for. `max` for max_items is `maxItemsLimit`. Fields we do not know
 * are ignored; a value we cannot honour throws OptionError.
 */
export function readOptions(x: Element, maxItemsLimit: number): Partial<NodeConfig> {
  let form;
  try {
    form = readForm(x);
  } catch (err) {
    throw new OptionError("", (err as Error).message);
  }
  const out: Partial<NodeConfig> = {};
  const access = form.text(FIELDS.access);
  if (access !== undefined) {
    if (!(ACCESS_MODELS as readonly string[]).includes(access)) throw new OptionError(FIELDS.access, `access model '${access}' is not supported (presence, open, whitelist)`);
    out.access = access as AccessModel;
  }
  if (form.values.has(FIELDS.persist)) {
    const persist = form.boolean(FIELDS.persist);
    if (persist === undefined) throw new OptionError(FIELDS.persist, "persist_items is a boolean");
    out.persist = persist;
  }
  const max = form.text(FIELDS.maxItems);
  if (max !== undefined) {
    const n = max === "max" ? maxItemsLimit : /^[0-9]{1,9}$/.test(max) ? Number(max) : NaN;
    if (!(n >= 1)) throw new OptionError(FIELDS.maxItems, `max_items '${max}' is not a number of items`);
    if (n > maxItemsLimit) throw new OptionError(FIELDS.maxItems, `a node keeps at most ${maxItemsLimit} items`);
    out.maxItems = n;
  }
  const sendLast = form.text(FIELDS.sendLast);
  if (sendLast !== undefined) {
    if (!(SEND_LAST as readonly string[]).includes(sendLast)) throw new OptionError(FIELDS.sendLast, `send_last_published_item '${sendLast}' is not supported`);
    out.sendLast = sendLast as SendLast;
  }
  return out;
}

/** The first option that `config` does not satisfy (XEP-0060 §7.1.5 preconditions), or undefined. */
export function unmetOption(config: NodeConfig, wanted: Partial<NodeConfig>): string | undefined {
  for (const k of Object.keys(wanted) as Array<keyof NodeConfig>) {
    if (wanted[k] !== config[k]) return FIELDS[k];
  }
  return undefined;
}

/** The node configuration form (XEP-0060 §8.2), as a `form` to fill or a `result`. */
export function configForm(config: NodeConfig): Element {
  return formElement("form", {
    formType: NS_NODE_CONFIG,
    fields: [
      { var: FIELDS.access, type: "list-single", values: [config.access], options: ACCESS_MODELS.map((value) => ({ value })) },
      { var: FIELDS.persist, type: "boolean", values: [config.persist ? "1" : "0"] },
      { var: FIELDS.maxItems, type: "text-single", values: [String(config.maxItems)] },
      { var: FIELDS.sendLast, type: "list-single", values: [config.sendLast], options: SEND_LAST.map((value) => ({ value })) },
    ],
  });
}

const nodeKey = (node: string): string => `n\n${node}`;
const itemPrefix = (node: string): string => `i\n${node}\n`;
/** One page of a prefix read: far within what a farm link carries. */
const PAGE_BYTES = 256 * 1024;

/** Sequence numbers that grow across publishes, SMs and restarts (time first). */
let lastSeq = 0;
function nextSeq(): number {
  lastSeq = Math.max(lastSeq + 1, Date.now() * 1000);
  return lastSeq;
}

export interface PepLimits {
  maxNodes: number;
  maxItemsPerNode: number;
  maxItemBytes: number;
}

export type PublishOutcome = { ok: true; removed: string[] } | { ok: false; why: "max-nodes" | "quota"; outcome?: StoreOutcome };

/** A user's nodes in the keyed store. Every call for a user runs in that user's queue (pep.ts), so read-then-write is safe. */
export class PepNodes {
  constructor(private readonly store: KeyedStore, private readonly limits: PepLimits) {}

  /** Entries whose keys start with `prefix`, in key order. */
  private async prefixed(user: string, prefix: string): Promise<Array<{ key: string; value: string }>> {
    const out: Array<{ key: string; value: string }> = [];
    // `after` is exclusive and the prefix itself is no key: the first page starts at the prefix's first key.
    let after = prefix;
    for (;;) {
      const page = await this.store.list(user, { after, limit: 100, maxBytes: PAGE_BYTES });
      for (const e of page.items) {
        if (!e.key.startsWith(prefix)) return out;
        out.push(e);
      }
      const last = page.items.at(-1);
      if (page.complete || last === undefined) return out;
      after = last.key;
    }
  }

  async node(user: string, node: string): Promise<NodeConfig | null> {
    const text = await this.store.get(user, nodeKey(node));
    return text === null ? null : { ...defaultConfig(), ...(JSON.parse(text) as Partial<NodeConfig>) };
  }

  /** Every node of the user, by name. */
  async nodes(user: string): Promise<Map<string, NodeConfig>> {
    const out = new Map<string, NodeConfig>();
    for (const e of await this.prefixed(user, "n\n")) out.set(e.key.slice(2), { ...defaultConfig(), ...(JSON.parse(e.value) as Partial<NodeConfig>) });
    return out;
  }

  /** A node's items, oldest first. */
  async items(user: string, node: string): Promise<StoredItem[]> {
    const prefix = itemPrefix(node);
    const items = (await this.prefixed(user, prefix)).map((e) => {
      const v = JSON.parse(e.value) as { seq: number; xml: string };
      return { id: e.key.slice(prefix.length), seq: v.seq, xml: v.xml };
    });
    return items.sort((a, b) => a.seq - b.seq);
  }

  async last(user: string, node: string): Promise<StoredItem | undefined> {
    return (await this.items(user, node)).at(-1);
  }

  /**
   * Stores a node's configuration (a new node when `config` is not stored
   * yet) and, for a persistent node, the item, dropping the oldest items
   * beyond `max_items`; all in one write.
   */
  async publish(user: string, node: string, config: NodeConfig, isNew: boolean, item: { id: string; xml: string } | undefined): Promise<PublishOutcome> {
    const entries: Array<{ key: string; value: string | null }> = [];
    if (isNew) {
      if ((await this.nodes(user)).size >= this.limits.maxNodes) return { ok: false, why: "max-nodes" };
      entries.push({ key: nodeKey(node), value: JSON.stringify(config) });
    }
    const removed: string[] = [];
    if (item !== undefined && config.persist) {
      const kept = (await this.items(user, node)).filter((i) => i.id !== item.id);
      for (const old of kept.slice(0, Math.max(0, kept.length + 1 - config.maxItems))) {
        removed.push(old.id);
        entries.push({ key: itemPrefix(node) + old.id, value: null });
      }
      entries.push({ key: itemPrefix(node) + item.id, value: JSON.stringify({ seq: nextSeq(), xml: item.xml }) });
    }
    if (entries.length === 0) return { ok: true, removed };
    const outcome = await this.store.setMany(user, entries);
    return outcome.ok ? { ok: true, removed } : { ok: false, why: "quota", outcome };
  }

  /** A new configuration; items beyond a lowered max_items (or all, when no longer persistent) go. */
  async configure(user: string, node: string, config: NodeConfig): Promise<StoreOutcome> {
    const items = await this.items(user, node);
    const drop = config.persist ? items.slice(0, Math.max(0, items.length - config.maxItems)) : items;
    return this.store.setMany(user, [
      { key: nodeKey(node), value: JSON.stringify(config) },
      ...drop.map((i) => ({ key: itemPrefix(node) + i.id, value: null })),
    ]);
  }

  /** Removes one item; false when there was none. */
  async retract(user: string, node: string, id: string): Promise<boolean> {
    if ((await this.store.get(user, itemPrefix(node) + id)) === null) return false;
    await this.store.set(user, itemPrefix(node) + id, null);
    return true;
  }

  /** Removes every item, and with `node` the node itself. */
  async clear(user: string, node: string, deleteNode: boolean): Promise<void> {
    const keys = (await this.prefixed(user, itemPrefix(node))).map((e) => e.key);
    if (deleteNode) keys.push(nodeKey(node));
    if (keys.length > 0) await this.store.setMany(user, keys.map((key) => ({ key, value: null })));
  }
}
