/**
 * Reading a MAM query (XEP-0313 §4, with RSM paging, XEP-0059) and writing
 * its answer; not a module: mam.ts uses it. Kept apart from the module so
 * that each file holds one concern: this one knows the protocol's forms,
 * that one the message path.
 */
import { findForm, formElement, readForm } from "@jabberfarm/dataform";
import { Jid } from "@jabberfarm/jid";
import { escapeAttr, xml, type Element } from "@jabberfarm/xml";
import type { ArchiveItem, ArchiveQuery } from "../module-store.js";

export const NS_MAM = "urn:xmpp:mam:2";
export const NS_MAM_EXTENDED = "urn:xmpp:mam:2#extended";
export const NS_RSM = "http://jabber.org/protocol/rsm";
const NS_FORWARD = "urn:xmpp:forward:0";
const NS_DELAY = "urn:xmpp:delay";

/** A query the client may not make: answered bad-request with this text. */
export class BadQuery extends Error {}

export interface MamQuery {
  queryid: string | undefined;
  /** What the store is asked (filters, position, direction, page size). */
  store: ArchiveQuery & { limit: number };
  /** Paging backwards (RSM `<before/>`): the page is read newest first and answered oldest first. */
  backwards: boolean;
  /** XEP-0313 `<flip-page/>`: answer the page in the order it was read. */
  flip: boolean;
  /** Only filters the store can count (none, or `with` alone): then the answer carries the RSM count. */
  countable: boolean;
  /** RSM max 0: the count only. */
  countOnly: boolean;
}

const FIELDS = new Set(["with", "start", "end", "before-id", "after-id", "ids"]);

function time(v: string | undefined, name: string): string | undefined {
  if (v === undefined) return undefined;
  const t = Date.parse(v);
  // XEP-0082 datetimes carry a zone; Date.parse takes more, so check the shape too.
  if (Number.isNaN(t) || !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(v)) throw new BadQuery(`'${name}' is not a datetime`);
  return new Date(t).toISOString();
}

/** Reads `<query xmlns='urn:xmpp:mam:2'>` of an iq set; `pageMax` bounds the page. */
export function readQuery(query: Element, pageMax: number): MamQuery {
  const store: ArchiveQuery & { limit: number } = { limit: pageMax };
  let countable = true;
  const x = findForm(query);
  if (x !== undefined) {
    let form;
    try {
      form = readForm(x);
    } catch (err) {
      throw new BadQuery((err as Error).message);
    }
    if (form.formType !== undefined && form.formType !== NS_MAM) throw new BadQuery(`a form of type '${form.formType}'`);
    for (const name of form.values.keys()) if (!FIELDS.has(name)) throw new BadQuery(`unknown field '${name}'`);
    const w = form.text("with");
    if (w !== undefined) {
      const jid = Jid.tryParse(w);
      if (jid === null) throw new BadQuery("'with' is not a JID");
      // Archived under bare JIDs: a full JID asks for the conversation with its account.
      store.with = jid.bareString();
    }
    const start = time(form.text("start"), "start");
    const end = time(form.text("end"), "end");
    if (start !== undefined) store.start = start;
    if (end !== undefined) store.end = end;
    const afterId = form.text("after-id");
    const beforeId = form.text("before-id");
    if (afterId !== undefined) store.after = afterId;
    if (beforeId !== undefined) store.before = beforeId;
    const ids = form.values.get("ids");
    if (ids !== undefined && ids.length > 0) store.ids = ids;
    countable = start === undefined && end === undefined && afterId === undefined && beforeId === undefined && ids === undefined;
  }
  let backwards = false;
  let countOnly = false;
  const set = query.getChild("set", NS_RSM);
  if (set !== undefined) {
    const max = set.getChildText("max");
    if (max !== undefined) {
      const n = Number(max);
      if (!Number.isInteger(n) || n < 0) throw new BadQuery("RSM max is not a count");
      countOnly = n === 0;
      store.limit = Math.max(1, Math.min(n, pageMax));
    }
    if (set.getChild("index") !== undefined) throw new BadQuery("RSM index is not supported; page with after and before");
    // RSM positions page within the filters; they take the place of after-id / before-id.
    const after = set.getChild("after");
    if (after !== undefined) store.after = after.text();
    const before = set.getChild("before");
    if (before !== undefined) {
      backwards = true;
      if (before.text() !== "") store.before = before.text();
    }
  }
  if (store.after === "" || store.before === "") throw new BadQuery("an empty item id");
  if (backwards) store.reverse = true;
  return { queryid: query.attrs.queryid, store, backwards, flip: query.getChild("flip-page") !== undefined, countable, countOnly };
}

/** The form a client asks for with an iq get (§4.1.1). */
export function queryForm(): Element {
  return xml("query", { xmlns: NS_MAM }, formElement("form", {
    formType: NS_MAM,
    fields: [
      { var: "with", type: "jid-single" },
      { var: "start", type: "text-single" },
      { var: "end", type: "text-single" },
      { var: "before-id", type: "text-single" },
      { var: "after-id", type: "text-single" },
      { var: "ids", type: "text-multi" },
    ],
  }));
}

/** One result message (§4.2): the stored message forwarded with its archive time. */
export function resultText(to: string, from: string, queryid: string | undefined, item: ArchiveItem): string {
  const qid = queryid === undefined ? "" : ` queryid='${escapeAttr(queryid)}'`;
  // The stored text is a whole message, explicit about its namespace: put in as it is.
  return `<message xmlns='jabber:client' to='${escapeAttr(to)}' from='${escapeAttr(from)}'>` +
    `<result xmlns='${NS_MAM}'${qid} id='${escapeAttr(item.id)}'><forwarded xmlns='${NS_FORWARD}'>` +
    `<delay xmlns='${NS_DELAY}' stamp='${escapeAttr(item.when)}'/>${item.value}</forwarded></result></message>`;
}

/** The `<fin/>` that ends the answer (§4.3): whether the last page was reached, and the RSM set. */
export function finElement(items: readonly ArchiveItem[], complete: boolean, count: number | undefined): Element {
  const set = xml("set", { xmlns: NS_RSM });
  if (items.length > 0) {
    set.append(xml("first", {}, items[0]!.id));
    set.append(xml("last", {}, items[items.length - 1]!.id));
  }
  if (count !== undefined) set.append(xml("count", {}, String(count)));
  return xml("fin", { xmlns: NS_MAM, complete: complete ? "true" : undefined }, set);
}
