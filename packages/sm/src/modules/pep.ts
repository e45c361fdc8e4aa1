/**
 * Personal Eventing Protocol (XEP-0163) on a PubSub subset (XEP-0060, with
 * XEP-0223's persistent private nodes): every account is a pubsub service
 * of its own (disco identity pubsub/pep), whose nodes hold avatars,
 * bookmarks, nicknames, OMEMO keys... docs/pep.md has what is supported.
 *
 * - Publish (auto-create, publish-options as preconditions), retract,
 *   items, create, configure, delete, purge; nodes and items in the keyed
 *   store "pep" (pep-nodes.ts), so any SM that owns the user later reads them.
 * - Notifications go to each full JID whose presence reached the owner's
 *   SM with entity capabilities listing `NODE+notify` (pep-caps.ts):
 *   the owner's own resources (their presence passes `presence/out`) and
 *   contacts' resources (`presence/in`, the broadcasts and probe answers
 *   that come to the owner whichever SM the contact is on), filtered by
 *   the node's access model.
 * - A resource whose +notify becomes known (new presence, new caps) gets
 *   the last item of each such node; so does a contact whose subscription
 *   the owner approves.
 *
 * Everything for one owner runs in the owner's queue (their iqs, the
 * stanzas to them), so reading then writing a node is safe; the features
 * behind a caps hash are asked outside it, so that no queue waits on a
 * client's answer.
 */
import { randomUUID } from "node:crypto";
import { Jid } from "@jabberfarm/jid";
import { findForm } from "@jabberfarm/dataform";
import { canBounce, stanzaErrorReply, xml, type Element, type StanzaErrorCondition } from "@jabberfarm/xml";
import type { InboundEvent, OutboundEvent } from "../events.js";
import type { ModuleApi } from "../module-api.js";
import { bookmarksCompat } from "./pep-bookmarks.js";
import { pepDiscovery } from "./pep-disco.js";
import { CapsResolver, readCaps, sameCaps, type CapsRef, type Features } from "./pep-caps.js";
import {
  NS_PUBSUB, NS_PUBSUB_ERRORS, NS_PUBSUB_EVENT, NS_PUBSUB_OWNER, OptionError, PepNodes,
  configForm, defaultConfig, readOptions, unmetOption, type NodeConfig, type StoredItem,
} from "./pep-nodes.js";
import { storableXml, storedElement } from "./stanza-text.js";

/** What XEP-0163 §9 and XEP-0223 §3 ask a PEP service to say it supports (as `pubsub#` features). */
const FEATURES = [
  "access-open", "access-presence", "access-whitelist", "auto-create", "auto-subscribe", "config-node", "create-and-configure",
  "create-nodes", "delete-items", "delete-nodes", "filtered-notifications", "item-ids", "last-published", "persistent-items",
  "publish", "publish-options", "purge-nodes", "retract-items", "retrieve-items",
];
/** Ahead of presence.ts and disco.ts (which handle these events), as an observer or a more specific answer. */
const PEP_PRIORITY = 10;
/** After an SM took a user over: contacts' presences that come back are not news; no last items for them. */
const ADOPTION_QUIET_MS = 5000;
/** What one items answer holds at most (the newest items first), far within a farm link. */
const ITEMS_ANSWER_BYTES = 512 * 1024;

/** A resource whose presence reached the owner: its caps, and their features once known. */
interface Watcher {
  ref: CapsRef | undefined;
  features?: Features | undefined;
  /** Nodes published to while its features were still being asked for: their last items are owed to it. */
  missed?: Set<string>;
}

const bareOf = (jid: string): string => Jid.tryParse(jid)?.bareString() ?? jid;
const isTrue = (v: string | undefined): boolean => v === "true" || v === "1";

export function pep(api: ModuleApi): void {
  const limits = api.config.pep;
  const nodes = new PepNodes(api.openStore("pep", { maxBytes: limits.maxBytes, maxValueBytes: limits.maxItemBytes + 1024 }), limits);
  const caps = new CapsResolver((iq) => api.send(iq), limits.capsCacheSize);
  api.addAccountIdentity({ category: "pubsub", type: "pep" });
  for (const f of FEATURES) api.addAccountFeature(`${NS_PUBSUB}#${f}`);
  api.addAccountFeature(NS_PUBSUB);

  /** Per owner: the full JIDs (own resources and contacts') whose presence reached us, with their caps. */
  const watchers = new Map<string, Map<string, Watcher>>();
  const quietUntil = new Map<string, number>();

  // ---- errors and access --------------------------------------------------------------

  /** An error reply with an application condition of pubsub#errors (XEP-0060 §7, §6.5); handles the event. */
  function fail(stanza: Element, condition: StanzaErrorCondition, app?: string, text?: string, appAttrs: Record<string, string> = {}): true {
    if (!canBounce(stanza)) return true;
    const reply = stanzaErrorReply(stanza, condition, text === undefined ? {} : { text });
    if (reply.attrs.from === undefined) reply.attrs.from = bareOf(stanza.attrs.from ?? "");
    if (app !== undefined) reply.getChild("error")!.append(xml(app, { xmlns: NS_PUBSUB_ERRORS, ...appAttrs }));
    api.send(reply);
    return true;
  }

  async function mayAccess(owner: string, requester: string, config: NodeConfig): Promise<boolean> {
    if (requester === owner || config.access === "open") return true;
    if (config.access === "whitelist") return false; // the owner alone (XEP-0223): no affiliations to add others
    const item = await api.roster.item(owner, requester);
    return item?.subscription === "from" || item?.subscription === "both";
  }

  const denied = (stanza: Element, config: NodeConfig): true => config.access === "whitelist"
    ? fail(stanza, "not-allowed", "closed-node", "the node is the owner's alone")
    : fail(stanza, "not-authorized", "presence-subscription-required", "the node is for contacts subscribed to the owner's presence");

  /** A node name we keep: present, non-empty, no newline (pep-nodes.ts keys). */
  const validNode = (node: string | undefined): node is string => node !== undefined && node !== "" && !node.includes("\n") && node.length <= 1024;

  // ---- notifications ------------------------------------------------------------------

  function notifyOne(owner: string, full: string, payload: Element): void {
    const message = xml("message", { from: owner, to: full, type: "headline", id: `pep-${randomUUID()}` }, xml("event", { xmlns: NS_PUBSUB_EVENT }, payload));
    const session = bareOf(full) === owner ? api.sessions.byFullJid(owner, Jid.parse(full).resource) : undefined;
    if (session !== undefined) api.deliver(session, message);
    else if (bareOf(full) !== owner) api.send(message);
  }

  /** The event (`payload` in `<event/>`) to every resource with `node+notify` that may see the node. */
  async function notifyAll(owner: string, node: string, config: NodeConfig, payload: Element): Promise<void> {
    const want = `${node}+notify`;
    const allowed = new Map<string, boolean>();
    for (const [full, w] of watchers.get(owner) ?? []) {
      if (w.features === undefined && w.ref !== undefined) (w.missed ??= new Set()).add(node);
      if (w.features?.has(want) !== true) continue;
      const bare = bareOf(full);
      let ok = allowed.get(bare);
      if (ok === undefined) allowed.set(bare, (ok = await mayAccess(owner, bare, config)));
      if (ok) notifyOne(owner, full, payload);
    }
  }

  const itemElement = (item: StoredItem | { id: string; xml: string }): Element => xml("item", { id: item.id }, storedElement(item.xml));

  /** The last item of every node `full` wants (and may see) whose send_last_published_item says so now, and of those in `owed`. */
  async function sendLast(owner: string, full: string, features: Features, why: "presence" | "subscription" | "none", owed: ReadonlySet<string> = new Set()): Promise<void> {
    for (const [node, config] of await nodes.nodes(owner)) {
      if (!features.has(`${node}+notify`) || !config.persist) continue;
      const policy = why === "subscription" ? config.sendLast !== "never" : why === "presence" && config.sendLast === "on_sub_and_presence";
      if (!policy && !owed.has(node)) continue;
      if (!(await mayAccess(owner, bareOf(full), config))) continue;
      const last = await nodes.last(owner, node);
      // Still there (a resource that went away meanwhile gets nothing).
      if (last !== undefined && watchers.get(owner)?.has(full)) notifyOne(owner, full, xml("items", { node }, itemElement(last)));
    }
  }

  // ---- who wants what: presence and caps ------------------------------------------------

  /** A resource's presence (with `ref`, its caps) reached `owner`: learn its features, then give it the last items. */
  function watch(owner: string, full: string, ref: CapsRef | undefined): void {
    let map = watchers.get(owner);
    if (map === undefined) watchers.set(owner, (map = new Map()));
    if (map.has(full) && sameCaps(map.get(full)!.ref, ref)) return; // a status change: nothing new
    const w: Watcher = { ref };
    map.set(full, w);
    if (ref === undefined) return;
    const quiet = (quietUntil.get(owner) ?? 0) > Date.now();
    const known = (features: Features | undefined): void => {
      if (watchers.get(owner)?.get(full) !== w) return; // gone, or newer caps since
      w.features = features;
      const missed = w.missed;
      delete w.missed;
      // Right after a takeover only what was published while we asked is news; otherwise all last items are.
      if (features === undefined || (quiet && missed === undefined)) return;
      api.serial(owner, () => sendLast(owner, full, features, quiet ? "none" : "presence", missed))
        .catch((err: unknown) => api.log.warn({ err, user: owner, to: full }, "pep: could not send the last items"));
    };
    // Never awaited here: this runs in the owner's queue, and the answer may have to pass through it.
    const f = caps.features(owner, full, ref);
    if (f instanceof Promise) void f.then(known);
    else known(f);
  }

  function unwatch(owner: string, full: string): void {
    const map = watchers.get(owner);
    map?.delete(full);
    if (map?.size === 0) watchers.delete(owner);
  }

  // The owner's own resources: their broadcast presence.
  api.on("presence/out", ({ stanza, session }: OutboundEvent) => {
    if (stanza.attrs.to !== undefined) return false;
    if (stanza.attrs.type === "unavailable") unwatch(session.bare, session.full);
    else if (stanza.attrs.type === undefined) watch(session.bare, session.full, readCaps(stanza));
    return false;
  }, PEP_PRIORITY);
  api.on("session/ended", ({ session }) => unwatch(session.bare, session.full));

  // Contacts' resources: their presence to the owner (broadcasts, probe answers, directed), whatever SM they are on.
  api.on("presence/in", ({ stanza, user, from }: InboundEvent) => {
    if (from.resource === "" || from.bareString() === user) return false;
    const type = stanza.attrs.type;
    if (type === "unavailable" || type === "error") unwatch(user, from.toString());
    else if (type === undefined) watch(user, from.toString(), readCaps(stanza));
    return false;
  }, PEP_PRIORITY);

  // Answers to our disco#info queries about caps: from contacts (in) and from the owner's own resources (out).
  api.on("iq/in", ({ stanza }: InboundEvent) => caps.answer(stanza), 1000);
  api.on("iq/out", ({ stanza }: OutboundEvent) => caps.answer(stanza), 1000);

  // The owner approved a contact's subscription: the contact's known resources get the last items.
  api.on("presence/egress", ({ stanza, user, to }) => {
    if (stanza.attrs.type !== "subscribed") return false;
    const contact = to.bareString();
    api.serial(user, async () => {
      for (const [full, w] of watchers.get(user) ?? []) {
        if (bareOf(full) === contact && w.features !== undefined) await sendLast(user, full, w.features, "subscription");
      }
    }).catch((err: unknown) => api.log.warn({ err, user }, "pep: could not send the last items"));
    return false;
  });

  // Taken over from another SM: its memory of who watches is gone; probes bring the contacts' presence back.
  api.on("session/adopted", async ({ session }) => {
    const owner = session.bare;
    if (session.available) watch(owner, session.full, readCaps(session.presence));
    if ([...(watchers.get(owner)?.keys() ?? [])].some((full) => bareOf(full) !== owner)) return;
    quietUntil.set(owner, Date.now() + ADOPTION_QUIET_MS);
    for (const item of (await api.roster.get(owner)).items.values()) {
      if ((item.subscription === "to" || item.subscription === "both") && item.jid !== owner) {
        api.send(xml("presence", { type: "probe", from: owner, to: item.jid }));
      }
    }
  });

  api.on("user/deleted", ({ user }) => {
    // The nodes and items went with the account's stores.
    watchers.delete(user);
    quietUntil.delete(user);
  });

  // ---- the pubsub protocol --------------------------------------------------------------

  async function publish(stanza: Element, owner: string, pubsub: Element, op: Element): Promise<true> {
    const node = op.attrs.node;
    if (!validNode(node)) return fail(stanza, "bad-request", "nodeid-required");
    const items = op.getChildren("item");
    if (items.length !== 1) return fail(stanza, "bad-request", items.length === 0 ? "item-required" : "invalid-payload", "publish one item at a time");
    const payloads = items[0]!.getChildren();
    if (payloads.length !== 1) return fail(stanza, "bad-request", payloads.length === 0 ? "payload-required" : "invalid-payload", "an item holds one payload");
    const text = storableXml(payloads[0]!);
    if (text === null) return fail(stanza, "bad-request", "invalid-payload", "the payload does not stand on its own as XML");
    if (Buffer.byteLength(text) > limits.maxItemBytes) return fail(stanza, "not-acceptable", "payload-too-big", `an item holds at most ${limits.maxItemBytes} bytes`);
    const id = items[0]!.attrs.id || randomUUID();
    if (id.includes("\n")) return fail(stanza, "bad-request", "invalid-payload", "an item id without newlines");

    const optionsEl = pubsub.getChild("publish-options");
    const form = optionsEl === undefined ? undefined : findForm(optionsEl);
    let wanted: Partial<NodeConfig> = {};
    try {
      if (form !== undefined) wanted = readOptions(form, limits.maxItemsPerNode);
    } catch (err) {
      if (err instanceof OptionError) return fail(stanza, "conflict", "precondition-not-met", err.message);
      throw err;
    }
    const existing = await nodes.node(owner, node);
    const unmet = existing === null ? undefined : unmetOption(existing, wanted);
    if (unmet !== undefined) return fail(stanza, "conflict", "precondition-not-met", `the node's ${unmet} is not what publish-options asks for`);
    const config = existing ?? { ...defaultConfig(), ...wanted };
    const stored = await nodes.publish(owner, node, config, existing === null, { id, xml: text });
    if (!stored.ok) return limitFailure(stanza, stored.why);
    api.result(stanza, xml("pubsub", { xmlns: NS_PUBSUB }, xml("publish", { node }, xml("item", { id }))));
    await notifyAll(owner, node, config, xml("items", { node }, itemElement({ id, xml: text })));
    return true;
  }

  const limitFailure = (stanza: Element, why: "max-nodes" | "quota"): true => why === "max-nodes"
    ? fail(stanza, "policy-violation", "max-nodes-exceeded", `an account has at most ${limits.maxNodes} nodes`)
    : fail(stanza, "policy-violation", undefined, `the account's PEP storage is full (${limits.maxBytes} bytes)`);

  async function retrieve(stanza: Element, owner: string, requester: string, op: Element): Promise<true> {
    const node = op.attrs.node;
    if (!validNode(node)) return fail(stanza, "bad-request", "nodeid-required");
    const config = await nodes.node(owner, node);
    if (config === null) return fail(stanza, "item-not-found");
    if (!(await mayAccess(owner, requester, config))) return denied(stanza, config);
    const maxAttr = op.attrs.max_items;
    const max = maxAttr === undefined ? undefined : /^[0-9]{1,9}$/.test(maxAttr) && Number(maxAttr) > 0 ? Number(maxAttr) : NaN;
    if (Number.isNaN(max)) return fail(stanza, "bad-request", undefined, "max_items is a positive number");
    let items = config.persist ? await nodes.items(owner, node) : [];
    const ids = op.getChildren("item").map((i) => i.attrs.id).filter((id): id is string => id !== undefined);
    if (ids.length > 0) {
      items = items.filter((i) => ids.includes(i.id));
      if (items.length === 0) return fail(stanza, "item-not-found");
    }
    if (max !== undefined) items = items.slice(-max);
    // The newest that fit one answer.
    let budget = ITEMS_ANSWER_BYTES;
    let from = items.length;
    while (from > 0 && (budget -= items[from - 1]!.xml.length + 64) >= 0) from--;
    api.result(stanza, xml("pubsub", { xmlns: NS_PUBSUB }, xml("items", { node }, ...items.slice(from).map(itemElement))));
    return true;
  }

  async function retract(stanza: Element, owner: string, op: Element): Promise<true> {
    const node = op.attrs.node;
    if (!validNode(node)) return fail(stanza, "bad-request", "nodeid-required");
    const id = op.getChild("item")?.attrs.id;
    if (id === undefined) return fail(stanza, "bad-request", "item-required");
    const config = await nodes.node(owner, node);
    if (config === null || !(await nodes.retract(owner, node, id))) return fail(stanza, "item-not-found");
    api.result(stanza);
    if (isTrue(op.attrs.notify)) await notifyAll(owner, node, config, xml("items", { node }, xml("retract", { id })));
    return true;
  }

  async function create(stanza: Element, owner: string, pubsub: Element, op: Element): Promise<true> {
    const node = op.attrs.node;
    if (!validNode(node)) return fail(stanza, "not-acceptable", "nodeid-required", "PEP nodes have names (no instant nodes)");
    if ((await nodes.node(owner, node)) !== null) return fail(stanza, "conflict", undefined, "the node exists");
    const form = pubsub.getChild("configure") && findForm(pubsub.getChild("configure")!);
    let config = defaultConfig();
    try {
      if (form !== undefined) config = { ...config, ...readOptions(form, limits.maxItemsPerNode) };
    } catch (err) {
      if (err instanceof OptionError) return fail(stanza, "not-acceptable", "invalid-options", err.message);
      throw err;
    }
    const stored = await nodes.publish(owner, node, config, true, undefined);
    if (!stored.ok) return limitFailure(stanza, stored.why);
    api.result(stanza);
    return true;
  }

  /** The owner namespace (XEP-0060 §8): configure, default, delete, purge. */
  async function own(stanza: Element, owner: string, op: Element): Promise<true> {
    if (op.local === "default") return (api.result(stanza, xml("pubsub", { xmlns: NS_PUBSUB_OWNER }, xml("default", {}, configForm(defaultConfig())))), true);
    const node = op.attrs.node;
    if (!validNode(node)) return fail(stanza, "bad-request", "nodeid-required");
    const config = await nodes.node(owner, node);
    if (config === null) return fail(stanza, "item-not-found");
    if (op.local === "configure") {
      if (stanza.attrs.type === "get") return (api.result(stanza, xml("pubsub", { xmlns: NS_PUBSUB_OWNER }, xml("configure", { node }, configForm(config)))), true);
      const form = findForm(op);
      if (form === undefined) return fail(stanza, "bad-request", undefined, "a configuration form is missing");
      if (form.attrs.type === "cancel") return (api.result(stanza), true);
      let next: NodeConfig;
      try {
        next = { ...config, ...readOptions(form, limits.maxItemsPerNode) };
      } catch (err) {
        if (err instanceof OptionError) return fail(stanza, "not-acceptable", "invalid-options", err.message);
        throw err;
      }
      const stored = await nodes.configure(owner, node, next);
      if (!stored.ok) return limitFailure(stanza, "quota");
      api.result(stanza);
      return true;
    }
    if (op.local === "delete" || op.local === "purge") {
      // Who is told: those who were allowed to see it, before it goes.
      await nodes.clear(owner, node, op.local === "delete");
      api.result(stanza);
      await notifyAll(owner, node, config, xml(op.local, { node }));
      return true;
    }
    return fail(stanza, "feature-not-implemented", "unsupported", undefined, { feature: op.local });
  }

  /** What PEP does not do: subscriptions are implicit (presence and +notify), affiliations are the owner's. */
  const UNSUPPORTED: Readonly<Record<string, string>> = {
    subscribe: "subscribe", unsubscribe: "subscribe", options: "subscription-options",
    subscriptions: "retrieve-subscriptions", affiliations: "retrieve-affiliations",
  };

  // From the owner's own resources.
  api.on(`iq/self/${NS_PUBSUB}`, async ({ stanza, session }: OutboundEvent) => {
    const pubsub = stanza.firstElement()!;
    const op = pubsub.getChildren().find((c) => c.local !== "publish-options" && c.local !== "configure") ?? pubsub.getChild("configure");
    const set = stanza.attrs.type === "set";
    if (op === undefined) return fail(stanza, "bad-request", undefined, "an empty pubsub request");
    if (op.local === "publish" && set) return publish(stanza, session.bare, pubsub, op);
    if (op.local === "items" && !set) return retrieve(stanza, session.bare, session.bare, op);
    if (op.local === "retract" && set) return retract(stanza, session.bare, op);
    if (op.local === "create" && set) return create(stanza, session.bare, pubsub, op);
    const feature = UNSUPPORTED[op.local];
    if (feature !== undefined) return fail(stanza, "feature-not-implemented", "unsupported", undefined, { feature });
    return fail(stanza, "bad-request", undefined, `no '${op.local}' in a pubsub ${stanza.attrs.type}`);
  });
  api.on(`iq/self/${NS_PUBSUB_OWNER}`, ({ stanza, session }: OutboundEvent) => {
    const op = stanza.firstElement()!.firstElement();
    return op === undefined ? fail(stanza, "bad-request") : own(stanza, session.bare, op);
  });

  // From anyone else: reading, as the access model allows; the rest is the owner's.
  api.on(`iq/bare/${NS_PUBSUB}`, ({ stanza, user, from }: InboundEvent) => {
    const op = stanza.firstElement()!.firstElement();
    if (op?.local === "items" && stanza.attrs.type === "get") return retrieve(stanza, user, from.bareString(), op);
    return fail(stanza, "forbidden", undefined, "only the owner changes a PEP node");
  });
  api.on(`iq/bare/${NS_PUBSUB_OWNER}`, ({ stanza }: InboundEvent) => fail(stanza, "forbidden", undefined, "only the owner changes a PEP node"));

  // Nodes on the bare JID in disco (pep-disco.ts).
  pepDiscovery(api, { nodes, mayAccess, validNode }, PEP_PRIORITY);

  // Bookmarks kept in private XML storage by older clients are the PEP node's (XEP-0402 §5.3).
  bookmarksCompat(api, { nodes, maxItemsPerNode: limits.maxItemsPerNode, notifyAll, fail }, PEP_PRIORITY);
}
