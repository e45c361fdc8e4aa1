/**
 * Blocking Command (XEP-0191): a user's block list, kept in the module's
 * own store, pushed to every resource that asked for it, and enforced in
 * both directions whichever SM the other party lives on:
 *
 * - to our user from a blocked JID (`<kind>/in`, at the recipient's SM):
 *   presence is dropped without a word, a message or an iq request is
 *   answered service-unavailable (the user looks offline), the rest dropped;
 * - from our user to a blocked JID (`<kind>/egress`, at the sender's SM,
 *   which also sees presence broadcasts and probes made on their behalf):
 *   nothing is routed, and a message or iq the client sent is answered
 *   not-acceptable with <blocked xmlns='urn:xmpp:blocking:errors'/>.
 *
 * Lists of online users stay in memory (loaded when a session binds);
 * "this resource asked for the list, so gets pushes" is session data, so
 * it survives a takeover by another SM.
 */
import { Jid } from "@jabberfarm/jid";
import { canBounce, errorElement, stanzaErrorReply, xml } from "@jabberfarm/xml";
import type { EgressEvent, InboundEvent, OutboundEvent, StanzaKind } from "../events.js";
import type { ModuleApi } from "../module-api.js";

export const NS_BLOCKING = "urn:xmpp:blocking";
export const NS_BLOCKING_ERRORS = "urn:xmpp:blocking:errors";
/** Before every other handler of the same events: a blocked stanza goes nowhere else. */
const BLOCKING_PRIORITY = 1000;
/** Session data key: this resource asked for the list (XEP-0191 §3.3, pushes). */
const WANTS_PUSHES = "blocking";
const KINDS: readonly StanzaKind[] = ["message", "presence", "iq"];

/**
 * Whether `list` blocks `jid` (XEP-0191 §4 matching): the full JID, the bare
 * JID, the domain with that resource, or the domain or a parent domain.
 */
export function isBlocked(list: ReadonlySet<string>, jid: Jid): boolean {
  if (list.size === 0) return false;
  if (jid.local !== "") {
    if (jid.resource !== "" && list.has(jid.toString())) return true;
    if (list.has(jid.bareString())) return true;
  }
  if (jid.resource !== "" && list.has(`${jid.domain}/${jid.resource}`)) return true;
  for (let d = jid.domain; ; ) {
    if (list.has(d)) return true;
    const dot = d.indexOf(".");
    if (dot < 0) return false;
    d = d.slice(dot + 1);
  }
}

export function blocking(api: ModuleApi): void {
  api.addFeature(NS_BLOCKING);
  const store = api.openStore("blocking", { maxKeys: api.config.blocking.maxItems });
  /** Block lists of users with sessions here. */
  const cache = new Map<string, Set<string>>();

  async function load(user: string): Promise<Set<string>> {
    const list = new Set<string>();
    for await (const e of store.entries(user)) list.add(e.key);
    if (api.sessions.isOnline(user)) cache.set(user, list);
    return list;
  }

  /** The user's list: at once when cached (the hot path), else from storage. */
  function listOf(user: string): Set<string> | Promise<Set<string>> {
    return cache.get(user) ?? load(user);
  }

  api.on("session/bound", async ({ session }) => {
    if (!cache.has(session.bare)) await load(session.bare);
  });
  api.on("session/ended", ({ session }) => {
    if (!api.sessions.isOnline(session.bare)) cache.delete(session.bare);
  });
  api.on("user/deleted", ({ user }) => {
    cache.delete(user);
  });

  // ---- the list itself: get, block, unblock --------------------------------------

  api.on(`iq/self/${NS_BLOCKING}`, async ({ stanza, session }: OutboundEvent) => {
    const op = stanza.firstElement()!;
    const user = session.bare;
    const type = stanza.attrs.type;
    if (type === "get" && op.local === "blocklist") {
      const list = await listOf(user);
      if (session.data.get(WANTS_PUSHES) !== true) {
        session.data.set(WANTS_PUSHES, true);
        api.saveSession(session);
      }
      api.result(stanza, xml("blocklist", { xmlns: NS_BLOCKING }, ...[...list].sort().map((jid) => xml("item", { jid }))));
      return true;
    }
    if (type !== "set" || (op.local !== "block" && op.local !== "unblock")) {
      api.error(stanza, "bad-request", "expected a get of <blocklist/>, or a set of <block/> or <unblock/>");
      return true;
    }
    const jids: string[] = [];
    for (const item of op.getChildren("item")) {
      const jid = item.attrs.jid === undefined ? null : Jid.tryParse(item.attrs.jid);
      if (jid === null) {
        api.error(stanza, "jid-malformed", `'${item.attrs.jid ?? ""}' is not a JID`);
        return true;
      }
      jids.push(jid.toString());
    }
    const list = await listOf(user);
    if (op.local === "block") {
      if (jids.length === 0) {
        api.error(stanza, "bad-request", "a block names at least one JID");
        return true;
      }
      const added = [...new Set(jids)].filter((j) => !list.has(j));
      // Whoever may see the user's presence sees them go (§3.3), while that still gets through.
      for (const j of added) await presenceTo(user, j, "unavailable");
      const r = await store.setMany(user, added.map((key) => ({ key, value: "" })));
      if (!r.ok) {
        api.error(stanza, "resource-constraint", `a block list holds at most ${api.config.blocking.maxItems} JIDs`);
        return true;
      }
      for (const j of added) list.add(j);
      api.result(stanza);
      push(user, "block", jids);
      return true;
    }
    // Unblock the named JIDs, or everyone with none named (§3.5).
    const removed = jids.length === 0 ? [...list] : [...new Set(jids)].filter((j) => list.has(j));
    if (removed.length > 0) await store.setMany(user, removed.map((key) => ({ key, value: null })));
    for (const j of removed) list.delete(j);
    api.result(stanza);
    push(user, "unblock", jids);
    // Those who may see the user's presence get it again (§3.4).
    for (const j of removed) await presenceTo(user, j, "current");
    return true;
  });

  /** Pushes a change to every resource that asked for the list (§3.3, §3.4, §3.5). */
  function push(user: string, op: "block" | "unblock", jids: string[]): void {
    for (const s of api.sessions.of(user)) {
      if (s.data.get(WANTS_PUSHES) !== true) continue;
      api.deliver(s, xml("iq", { type: "set", id: `block-push-${Date.now().toString(36)}`, to: s.full },
        xml(op, { xmlns: NS_BLOCKING }, ...jids.map((jid) => xml("item", { jid })))));
    }
  }

  /**
   * The user's unavailable (on block) or current (on unblock) presence to a
   * JID allowed to see it: a contact with a subscription from the user.
   */
  async function presenceTo(user: string, target: string, what: "unavailable" | "current"): Promise<void> {
    const jid = Jid.tryParse(target);
    if (jid === null || jid.local === "") return;
    const item = await api.roster.item(user, jid.bareString());
    if (item?.subscription !== "from" && item?.subscription !== "both") return;
    for (const s of api.sessions.available(user)) {
      if (what === "unavailable") api.send(xml("presence", { type: "unavailable", from: s.full, to: target }));
      else if (s.presence) {
        const p = s.presence.clone();
        p.attrs.to = target;
        api.send(p);
      }
    }
  }

  // ---- enforcing it ----------------------------------------------------------------

  /** To our user from someone they blocked: they look offline (§3.3). */
  const inbound = (event: InboundEvent): boolean | Promise<boolean> => {
    const list = listOf(event.user);
    if (list instanceof Promise) return list.then((l) => refuseInbound(l, event));
    return refuseInbound(list, event);
  };
  function refuseInbound(list: ReadonlySet<string>, { stanza, from }: InboundEvent): boolean {
    if (!isBlocked(list, from)) return false;
    const answer = stanza.name === "message" || (stanza.name === "iq" && (stanza.attrs.type === "get" || stanza.attrs.type === "set"));
    if (answer && canBounce(stanza)) {
      api.send(stanzaErrorReply(stanza, "service-unavailable"));
    }
    return true;
  }

  /** From our user to someone they blocked: nothing leaves (§3.3). */
  const egress = (event: EgressEvent): boolean | Promise<boolean> => {
    // Error replies answer what the other side sent; what a blocked JID sends
    // is stopped on the way in (above), so an error on its way out is the
    // server's answer (this module's own service-unavailable, a storage
    // failure's internal-server-error) and must not wait on the list.
    if (event.stanza.attrs.type === "error") return false;
    const list = listOf(event.user);
    if (list instanceof Promise) return list.then((l) => refuseEgress(l, event));
    return refuseEgress(list, event);
  };
  function refuseEgress(list: ReadonlySet<string>, { stanza, from, to, user }: EgressEvent): boolean {
    if (!isBlocked(list, to)) return false;
    if (stanza.name === "presence" || !canBounce(stanza)) return true;
    // Told to the session that sent it (a stanza the server made on the user's behalf has none).
    const session = from.resource === "" ? undefined : api.sessions.byFullJid(user, from.resource);
    if (session === undefined) return true;
    const reply = stanzaErrorReply(stanza, "not-acceptable");
    const error = reply.getChild("error")!;
    reply.children[reply.children.indexOf(error)] = errorElement("not-acceptable").append(xml("blocked", { xmlns: NS_BLOCKING_ERRORS }));
    api.deliver(session, reply);
    return true;
  }

  for (const kind of KINDS) {
    api.on(`${kind}/in`, inbound, BLOCKING_PRIORITY);
    api.on(`${kind}/egress`, egress, BLOCKING_PRIORITY);
  }
}
