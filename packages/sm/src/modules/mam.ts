/**
 * Message Archive Management (XEP-0313, `urn:xmpp:mam:2`) with stanza ids
 * (XEP-0359): every chat or normal message with content a user sends or
 * receives goes into their archive (module archive "mam", behind xdb),
 * which their clients query and page through (RSM, XEP-0059).
 *
 * On the message path (the hot one) it costs no round trip: the message is
 * stamped with its archive id at once, delivered at once, and its append
 * queues for the next batch (archive-writer.ts). Only the route that
 * brought the message waits for the write, before it is acknowledged
 * (`event.holds`): an SM that dies before writing has the message
 * redelivered to the next one, and the archive id is derived from the
 * message, so the redelivered write is a duplicate and stores nothing.
 *
 * - `message/out` (sender's SM): the sender's copy, `with` its recipient.
 * - `message/in` (recipient's SM): the recipient's copy, `with` its sender,
 *   stamped `<stanza-id by='user'/>` for the recipient's clients; any
 *   stanza id claiming to be ours that came with it is removed first. It
 *   runs above message.ts and offline.ts, so offline messages are archived
 *   (and stored for offline delivery with their stanza id).
 * - preferences (always / never / roster) per user in keyed store
 *   "mam-prefs", kept in memory while the user has sessions here.
 */
import { hash, randomUUID } from "node:crypto";
import { Jid } from "@jabberfarm/jid";
import { escapeAttr, xml, type Element } from "@jabberfarm/xml";
import type { InboundEvent, OutboundEvent } from "../events.js";
import type { ModuleApi } from "../module-api.js";
import { ArchiveWriter } from "@jabberfarm/xdb";
import { BadQuery, NS_MAM, NS_MAM_EXTENDED, finElement, queryForm, readQuery, resultText } from "./mam-query.js";
import { isUnknownAccount } from "../module-store.js";
import { messageType } from "./delivery-rules.js";
import { withChild } from "./stanza-text.js";

export const NS_SID = "urn:xmpp:sid:0";
const NS_HINTS = "urn:xmpp:hints";
const NS_CARBONS = "urn:xmpp:carbons:2";
/** Above carbons (which forward the stamped text) and message.ts / offline.ts (which deliver and store it). */
const MAM_PRIORITY = 20;
const PREFS_KEY = "prefs";

type Default = "always" | "never" | "roster";
/** Most users keep no lists: one shared empty set instead of two per user in memory (~300 bytes). */
const NONE: ReadonlySet<string> = new Set();
const setOf = (jids: readonly string[] | undefined): ReadonlySet<string> => (jids === undefined || jids.length === 0 ? NONE : new Set(jids));
interface Prefs {
  default: Default;
  always: ReadonlySet<string>;
  never: ReadonlySet<string>;
}

/**
 * Whether a message belongs in the archive (XEP-0313 §5.1.1 leaves the rules
 * to the server): chat or normal, not a carbon, not marked no-store or
 * no-permanent-store (XEP-0334), with a body or a store hint (chat states
 * and receipts alone are not conversation).
 */
export function archivable(stanza: Element): boolean {
  const type = messageType(stanza);
  if (type !== "chat" && type !== "normal") return false;
  let content = false;
  for (const c of stanza.children) {
    if (typeof c === "string") continue;
    if (c.ns === NS_HINTS) {
      if (c.local === "no-store" || c.local === "no-permanent-store") return false;
      if (c.local === "store") content = true;
    } else if (c.ns === NS_CARBONS) {
      return false;
    } else if (c.local === "body" || c.local === "encrypted") {
      content = true;
    }
  }
  return content;
}

/**
 * The archive id of a message in `user`'s archive: the same whenever the
 * same message comes again (a route redelivered after an SM died), so the
 * append is idempotent; random for a message without an id of its own,
 * which cannot be told from another one just like it.
 */
export function archiveId(user: string, stanza: Element): string {
  const id = stanza.attrs.id;
  if (id === undefined) return randomUUID();
  const text = `${user}\u0000${stanza.attrs.from ?? ""}\u0000${stanza.attrs.to ?? ""}\u0000${stanza.attrs.type ?? ""}\u0000${id}\u0000${stanza.getChildText("body") ?? ""}`;
  // One-shot hashing: a Hash object per message cost more than the rest of the archive's work on the message path.
  return hash("sha256", text, "base64url").slice(0, 24);
}

export function mam(api: ModuleApi): void {
  const config = api.config.mam;
  for (const ns of [NS_MAM, NS_MAM_EXTENDED, NS_SID]) api.addAccountFeature(ns);
  const archive = api.openArchive("mam");
  const prefsStore = api.openStore("mam-prefs");
  const writer = new ArchiveWriter(archive, config, api.log);
  /** Preferences of users with sessions here. */
  const cache = new Map<string, Prefs>();

  async function loadPrefs(user: string): Promise<Prefs> {
    let text: string | null;
    try {
      text = await prefsStore.get(user, PREFS_KEY);
    } catch (err) {
      // The archive must never stop a message or a login: the default, this once, and not remembered.
      api.log.warn({ err, user }, "archive preferences unreadable; the default applies");
      return { default: config.default, always: NONE, never: NONE };
    }
    const p = text === null ? undefined : (JSON.parse(text) as { default: Default; always: string[]; never: string[] });
    const prefs: Prefs = { default: p?.default ?? config.default, always: setOf(p?.always), never: setOf(p?.never) };
    if (api.sessions.isOnline(user)) cache.set(user, prefs);
    return prefs;
  }

  function wanted(user: string, contact: string): boolean | Promise<boolean> {
    const prefs = cache.get(user);
    if (prefs === undefined) return loadPrefs(user).then((p) => decide(user, p, contact));
    return decide(user, prefs, contact);
  }

  function decide(user: string, prefs: Prefs, contact: string): boolean | Promise<boolean> {
    if (prefs.never.has(contact)) return false;
    if (prefs.always.has(contact) || prefs.default === "always") return true;
    if (prefs.default === "never") return false;
    return api.roster.item(user, contact).then((i) => i !== undefined);
  }

  /** Queues the append; the route that brought the message is acknowledged only once it is written. */
  function append(user: string, id: string, contact: string, value: string, holds: Array<Promise<unknown>> | undefined): void {
    const written = writer.append({ user, id, with: contact, value });
    // Both copies of a message between two users of this SM land in the same batch: hold once.
    if (holds !== undefined && holds[holds.length - 1] !== written) holds.push(written);
  }

  // ---- the message path ------------------------------------------------------------

  api.on("message/out", (event: OutboundEvent) => {
    const { stanza, session } = event;
    if (!archivable(stanza)) return false;
    stripOurIds(event, session.bare);
    const to = stanza.attrs.to === undefined ? null : Jid.tryParse(stanza.attrs.to);
    // To the user's own account, the inbound side archives it (once).
    if (to === null || to.bareString() === session.bare) return false;
    const contact = to.bareString();
    const go = (yes: boolean): boolean => {
      if (yes) append(session.bare, archiveId(session.bare, event.stanza), contact, event.raw, event.holds);
      return false;
    };
    const w = wanted(session.bare, contact);
    return typeof w === "boolean" ? go(w) : w.then(go);
  }, MAM_PRIORITY);

  api.on("message/in", (event: InboundEvent) => {
    const { stanza, user, from } = event;
    if (!archivable(stanza)) return false;
    stripOurIds(event, user);
    const contact = from.bareString();
    const go = (yes: boolean): boolean => {
      if (!yes) return false;
      const id = archiveId(user, event.stanza);
      const stamp = `<stanza-id xmlns='${NS_SID}' by='${escapeAttr(user)}' id='${escapeAttr(id)}'/>`;
      event.raw = withChild(event.stanza, event.raw, stamp);
      event.stanza.append(xml("stanza-id", { xmlns: NS_SID, by: user, id }));
      append(user, id, contact, event.raw, event.holds);
      return false;
    };
    const w = wanted(user, contact);
    return typeof w === "boolean" ? go(w) : w.then(go);
  }, MAM_PRIORITY);

  // ---- queries and preferences -----------------------------------------------------

  api.on(`iq/self/${NS_MAM}`, async ({ stanza, session }: OutboundEvent) => {
    const op = stanza.firstElement()!;
    const user = session.bare;
    if (op.local === "prefs") {
      if (stanza.attrs.type === "get") api.result(stanza, prefsElement(cache.get(user) ?? (await loadPrefs(user))));
      else await setPrefs(stanza, op, user);
      return true;
    }
    if (op.local !== "query") {
      api.error(stanza, "bad-request", "expected <query/> or <prefs/>");
      return true;
    }
    if (stanza.attrs.type === "get") {
      api.result(stanza, queryForm());
      return true;
    }
    let q;
    try {
      q = readQuery(op, config.pageMax);
    } catch (err) {
      if (!(err instanceof BadQuery)) throw err;
      api.error(stanza, "bad-request", err.message);
      return true;
    }
    if (config.retentionDays > 0) {
      // Past the retention nothing is answered, whether or not it is deleted yet.
      const cutoff = new Date(Date.now() - config.retentionDays * 86_400_000).toISOString();
      if (q.store.start === undefined || q.store.start < cutoff) q.store.start = cutoff;
      q.countable = false;
    }
    // What this user's own messages still on their way to storage would add: wait for them.
    await writer.written();
    let page;
    try {
      page = q.countOnly ? { items: [], complete: false } : await archive.query(user, q.store);
    } catch (err) {
      if (!isItemNotFound(err)) throw err;
      api.error(stanza, "item-not-found", "no such item in the archive");
      return true;
    }
    const items = q.backwards && !q.flip ? [...page.items].reverse() : page.items;
    for (const item of items) api.deliver(session, resultText(session.full, user, q.queryid, item));
    const count = q.countable ? (await archive.count(user, q.store.with)).count : undefined;
    api.result(stanza, finElement(items, page.complete, count));
    return true;
  });

  async function setPrefs(stanza: Element, op: Element, user: string): Promise<void> {
    const d = op.attrs.default;
    if (d !== "always" && d !== "never" && d !== "roster") {
      api.error(stanza, "bad-request", "default is always, never or roster");
      return;
    }
    const list = (name: string): string[] => {
      const jids = (op.getChild(name)?.getChildren("jid") ?? []).map((j) => Jid.tryParse(j.text())?.bareString());
      if (jids.some((j) => j === undefined)) throw new BadQuery(`a JID in <${name}/> is not one`);
      return [...new Set(jids as string[])];
    };
    let prefs: Prefs;
    try {
      prefs = { default: d, always: setOf(list("always")), never: setOf(list("never")) };
    } catch (err) {
      api.error(stanza, "bad-request", (err as Error).message);
      return;
    }
    if (prefs.always.size + prefs.never.size > 1000) {
      api.error(stanza, "resource-constraint", "at most 1000 JIDs in the preferences");
      return;
    }
    await prefsStore.set(user, PREFS_KEY, JSON.stringify({ default: d, always: [...prefs.always], never: [...prefs.never] }));
    if (api.sessions.isOnline(user)) cache.set(user, prefs);
    api.result(stanza, prefsElement(prefs));
  }

  // ---- lifecycle ---------------------------------------------------------------------

  api.on("session/bound", async ({ session }) => {
    if (!cache.has(session.bare)) await loadPrefs(session.bare);
    if (config.retentionDays > 0) {
      // Expired messages go at login: off the message path, and before the user can ask for them.
      const before = new Date(Date.now() - config.retentionDays * 86_400_000).toISOString();
      archive.delete(session.bare, { before }).catch((err: unknown) => api.log.warn({ err, user: session.bare }, "archive retention failed"));
    }
  });
  api.on("session/ended", ({ session }) => {
    if (!api.sessions.isOnline(session.bare)) cache.delete(session.bare);
  });
  api.on("user/deleted", ({ user }) => {
    // The archive and preferences went with the account's stores.
    cache.delete(user);
    writer.forget(user);
  });
}

/** Removes stanza ids that claim to be `user`'s archive's: only we stamp those (XEP-0359 §5). */
function stripOurIds(event: { stanza: Element; raw: string }, user: string): void {
  const forged = event.stanza.getChildren("stanza-id", NS_SID).filter((s) => s.attrs.by === user);
  if (forged.length === 0) return;
  event.stanza.children = event.stanza.children.filter((c) => typeof c === "string" || !forged.includes(c));
  if (event.stanza.attrs.xmlns === undefined) event.stanza.attrs.xmlns = "jabber:client";
  event.raw = event.stanza.toString();
}

function prefsElement(p: Prefs): Element {
  const jids = (s: ReadonlySet<string>) => [...s].sort().map((j) => xml("jid", {}, j));
  return xml("prefs", { xmlns: NS_MAM, default: p.default }, xml("always", {}, ...jids(p.always)), xml("never", {}, ...jids(p.never)));
}

function isItemNotFound(err: unknown): boolean {
  return (err as { name?: string }).name === "ItemNotFoundError" || isUnknownAccount(err);
}
