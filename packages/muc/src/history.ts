/**
 * A room's messages after the fact: the history sent on entering
 * (XEP-0045 §7.2.14: maxstanzas, maxchars, seconds, since), the subject
 * after it (§7.2.15), and MAM queries on the room's JID (XEP-0313 §5.1),
 * all read from the room's archive in xdb.
 */
import { readForm, findForm, formElement } from "@jabberfarm/dataform";
import { NS, parseTrusted, xml, type Element } from "@jabberfarm/xml";
import type { MucContext } from "./context.js";
import { NS_DELAY, NS_FORWARD, NS_MAM, NS_RSM } from "./ns.js";
import type { ArchivedMessage } from "./room-store.js";
import { affiliationRank, bareOf, type Occupant, type Room } from "./room.js";

function delayed(room: Room, item: { when: string; value: string }): Element | undefined {
  try {
    const m = JSON.parse(item.value) as ArchivedMessage;
    const el = parseTrusted(m.xml, NS.COMPONENT);
    el.append(xml("delay", { xmlns: NS_DELAY, from: room.jid, stamp: item.when }));
    return el;
  } catch {
    return undefined;
  }
}

export async function sendHistory(ctx: MucContext, room: Room, o: Occupant, request: Element | undefined): Promise<void> {
  const h = ctx.config.history;
  const num = (name: string): number | undefined => {
    const v = request?.attrs[name];
    if (v === undefined) return undefined;
    const n = Number(v);
    return Number.isInteger(n) && n >= 0 ? n : undefined;
  };
  const maxstanzas = Math.min(num("maxstanzas") ?? h.default, h.max);
  const maxchars = num("maxchars");
  if (maxstanzas === 0 || maxchars === 0) return;
  const seconds = num("seconds");
  let start: string | undefined;
  if (seconds !== undefined) start = new Date(Date.now() - seconds * 1000).toISOString();
  const since = request?.attrs.since;
  if (since !== undefined && !Number.isNaN(Date.parse(since))) {
    const s = new Date(Date.parse(since)).toISOString();
    if (start === undefined || s > start) start = s;
  }
  let page;
  try {
    page = await ctx.store.history.query(room.jid, { reverse: true, limit: maxstanzas, ...(start === undefined ? {} : { start }) });
  } catch (err) {
    ctx.log.warn({ room: room.jid, err: (err as Error).message }, "history not read; entering without it");
    return;
  }
  const items = page.items.reverse();
  const out: string[] = [];
  let chars = 0;
  // maxchars counts whole stanzas, newest kept (§7.2.14).
  for (let i = items.length - 1; i >= 0; i--) {
    const el = delayed(room, items[i]!);
    if (!el) continue;
    el.attrs.to = o.jid;
    const text = el.toString();
    chars += text.length;
    if (maxchars !== undefined && chars > maxchars) break;
    out.unshift(text);
  }
  for (const text of out) ctx.sendText(text);
}

/** The subject, always (empty when none): clients take it as the end of the join (§7.2.15). */
export function sendSubject(ctx: MucContext, room: Room, o: Occupant): void {
  const s = room.subject;
  ctx.send(xml("message", { from: s && s.nick !== "" ? `${room.jid}/${s.nick}` : room.jid, to: o.jid, type: "groupchat" },
    xml("subject", {}, s?.text ?? "")));
}

/** MAM (XEP-0313) on the room's JID: who may read the archive. */
function mayQuery(room: Room, bare: string, occupant: Occupant | undefined): boolean {
  if (room.affiliationOf(bare) === "outcast") return false;
  if (room.config.membersOnly) return affiliationRank(room.affiliationOf(bare)) >= affiliationRank("member");
  return occupant !== undefined || room.config.public;
}

export async function onMamQuery(ctx: MucContext, room: Room, stanza: Element, query: Element, requester: string): Promise<void> {
  if (stanza.attrs.type === "get") {
    // The fields this archive filters by (XEP-0313 §5.1.1).
    ctx.send(xml("iq", { type: "result", id: stanza.attrs.id, from: room.jid, to: requester },
      xml("query", { xmlns: NS_MAM }, formElement("form", {
        formType: NS_MAM,
        fields: [{ var: "with", type: "jid-single" }, { var: "start", type: "text-single" }, { var: "end", type: "text-single" },
          { var: "before-id", type: "text-single" }, { var: "after-id", type: "text-single" }],
      }))));
    return;
  }
  if (!mayQuery(room, bareOf(requester), room.occupantByJid(requester))) {
    ctx.error(stanza, "forbidden", "only members may read this room's archive");
    return;
  }
  const form = findForm(query, NS_MAM);
  let fields;
  try {
    fields = form ? readForm(form) : undefined;
  } catch (e) {
    ctx.error(stanza, "bad-request", (e as Error).message);
    return;
  }
  const time = (name: string): string | undefined | null => {
    const v = fields?.text(name);
    if (v === undefined || v === "") return undefined;
    const t = Date.parse(v);
    return Number.isNaN(t) ? null : new Date(t).toISOString();
  };
  const start = time("start");
  const end = time("end");
  if (start === null || end === null) return ctx.error(stanza, "bad-request", "start and end are XEP-0082 times");
  const set = query.getChild("set", NS_RSM);
  const maxText = set?.getChildText("max");
  const max = maxText === undefined ? 50 : Number(maxText);
  if (!Number.isInteger(max) || max < 0) return ctx.error(stanza, "bad-request", "max is a number");
  const limit = Math.min(max, ctx.config.archive.maxPage);
  const beforeEl = set?.getChild("before");
  const after = set?.getChildText("after") || fields?.text("after-id") || undefined;
  // An empty <before/> asks for the last page (XEP-0059 §2.5).
  const lastPage = beforeEl !== undefined;
  const before = beforeEl?.text() || fields?.text("before-id") || undefined;
  const withJid = fields?.text("with");
  const queryid = query.attrs.queryid;
  let page;
  try {
    page = limit === 0 ? { items: [], complete: false } : await ctx.store.history.query(room.jid, {
      limit, reverse: lastPage,
      ...(after ? { after } : {}), ...(before ? { before } : {}), ...(start ? { start } : {}), ...(end ? { end } : {}),
      ...(withJid ? { with: bareOf(withJid) } : {}),
    });
  } catch (err) {
    const notFound = /item-not-found/.test((err as Error).message);
    ctx.error(stanza, notFound ? "item-not-found" : "internal-server-error", notFound ? "no such message in the archive" : "the archive is not reachable");
    return;
  }
  const items = lastPage ? page.items.reverse() : page.items;
  for (const item of items) {
    const archived = delayed(room, item);
    if (!archived) continue;
    const delay = archived.getChild("delay", NS_DELAY)!;
    archived.children = archived.children.filter((c) => c !== delay);
    ctx.send(xml("message", { from: room.jid, to: requester },
      xml("result", { xmlns: NS_MAM, queryid, id: item.id },
        xml("forwarded", { xmlns: NS_FORWARD }, xml("delay", { xmlns: NS_DELAY, stamp: item.when }), archived))));
  }
  const rsm = xml("set", { xmlns: NS_RSM });
  if (items.length > 0) {
    rsm.append(xml("first", {}, items[0]!.id), xml("last", {}, items[items.length - 1]!.id));
  }
  ctx.send(xml("iq", { type: "result", id: stanza.attrs.id, from: room.jid, to: requester },
    xml("fin", { xmlns: NS_MAM, complete: page.complete ? "true" : undefined }, rsm)));
}
