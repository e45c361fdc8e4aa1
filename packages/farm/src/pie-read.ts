/**
 * Reading XEP-0227 (Portable Import/Export Format) files, what prosody's
 * `prosody-migrator` (one file per user) and ejabberd's `export_piefxis`
 * (one file for all) write: `<server-data xmlns='urn:xmpp:pie:0'>`, a
 * `<host jid=...>` per domain, a `<user name=... password=...>` per account
 * with its credentials, roster, vCard, private XML, offline messages and
 * pending subscription requests.
 *
 * The file is read as a stream, one user at a time, so a file of any size
 * costs the memory of its largest user (bounded by `maxUserBytes`). Every
 * mistake names the file, the line and the element it is about.
 */
import { createReadStream } from "node:fs";
import { SaxesParser, type SaxesTagNS } from "saxes";
import { Jid } from "@jabberfarm/jid";
import { canonicalElement, Element, serialize } from "@jabberfarm/xml";

export const NS_PIE = "urn:xmpp:pie:0";
export const NS_PIE_SCRAM = "urn:xmpp:pie:0#scram";
const NS_ROSTER = "jabber:iq:roster";
const NS_PRIVATE = "jabber:iq:private";
const NS_VCARD = "vcard-temp";
const NS_CLIENT = "jabber:client";
const NS_DELAY = "urn:xmpp:delay";
const SUBSCRIPTIONS = new Set(["none", "to", "from", "both"]);

export interface PieLimits {
  /** Largest `<user>` element, in characters: what one account may hold. */
  maxUserChars: number;
  /** Deepest nesting inside a `<user>` (the user is depth 1). */
  maxDepth: number;
}

export const PIE_LIMITS: Readonly<PieLimits> = { maxUserChars: 16 * 1024 * 1024, maxDepth: 64 };

/** A file the import cannot trust: nothing of it is written. */
export class PieError extends Error {}

/** SCRAM credentials as the file gives them; checked against what the farm can hold by the caller. */
export interface PieScram {
  mechanism: string;
  iterations: number;
  salt: string;
  storedKey: string;
  serverKey: string;
}

export interface PieRosterItem {
  jid: string;
  name?: string;
  subscription: "none" | "to" | "from" | "both";
  ask?: "subscribe";
  approved?: boolean;
  groups: string[];
}

/** One account of the file, its XML parts as the text the farm's modules store. */
export interface PieUser {
  /** The account's bare JID, normalised. */
  jid: string;
  /** Where its `<user>` starts: `file:line`. */
  where: string;
  password?: string;
  scram: PieScram[];
  roster: PieRosterItem[];
  vcard?: string;
  privateXml: Array<{ key: string; value: string }>;
  offline: Array<{ value: string; when?: string; with?: string }>;
  /** Inbound subscription requests the user has not answered: contact → the presence stanza. */
  pending: Array<{ contact: string; value: string }>;
  /** Children of `<user>` nothing here reads (PEP, MAM archives...): their names, to report. */
  ignored: string[];
}

function bad(where: string, message: string): PieError {
  return new PieError(`${where}: ${message}`);
}

function tagName(tag: { local: string; uri: string }): string {
  return tag.uri === "" ? `<${tag.local}>` : `<${tag.local} xmlns='${tag.uri}'>`;
}

/** The element as text that stands on its own: its namespace on the root. */
function standalone(el: Element, ns: string = el.ns): string {
  // xmlns first, as the farm writes it everywhere: the same element is then the same text.
  const attrs: Record<string, string> = { xmlns: ns };
  for (const [k, v] of Object.entries(el.attrs)) if (k !== "xmlns") attrs[k] = v;
  const copy = new Element(el.name, attrs, el.children, el.uri);
  return serialize(copy);
}

/** Every account of `file`, in file order; throws PieError at the first mistake. */
export async function* readPie(file: string, limits: PieLimits = PIE_LIMITS): AsyncGenerator<PieUser> {
  const parser = new SaxesParser({ xmlns: true, fileName: file, position: true });
  const ready: PieUser[] = [];
  const stack: Element[] = [];
  let depth = 0;
  let sawRoot = false;
  let host: string | undefined;
  let userStart = 0;
  let userLine = 0;
  const at = (): string => `${file}:${parser.line}`;
  const tooLarge = (): PieError => bad(`${file}:${userLine}`, `<user> larger than ${limits.maxUserChars} characters (the import's limit for one account)`);
  parser.on("error", (err) => {
    throw new PieError(`${err.message} (not well-formed XML)`);
  });
  parser.on("doctype", () => {
    throw bad(at(), "a DOCTYPE is not allowed in an XEP-0227 file");
  });
  parser.on("opentag", (tag: SaxesTagNS) => {
    depth++;
    if (depth === 1) {
      if (tag.local !== "server-data" || tag.uri !== NS_PIE) throw bad(at(), `expected <server-data xmlns='${NS_PIE}'> (XEP-0227), found ${tagName(tag)}`);
      sawRoot = true;
    } else if (depth === 2) {
      if (tag.local !== "host" || tag.uri !== NS_PIE) throw bad(at(), `expected <host jid='DOMAIN'> in <server-data>, found ${tagName(tag)}`);
      const jid = tag.attributes.jid?.value;
      const domain = jid === undefined ? undefined : Jid.tryParse(jid);
      if (!domain || domain.local !== "" || domain.resource !== "") throw bad(at(), `<host> needs a jid that is a domain, got ${jid === undefined ? "none" : `'${jid}'`}`);
      host = domain.domain;
    } else if (depth === 3) {
      if (tag.local !== "user" || tag.uri !== NS_PIE) throw bad(at(), `expected <user name='...'> in <host jid='${host}'>, found ${tagName(tag)}`);
      userStart = parser.position;
      userLine = parser.line;
      stack.push(canonicalElement(tag, NS_PIE));
    } else {
      if (depth - 2 > limits.maxDepth) throw bad(at(), `elements nested deeper than ${limits.maxDepth} in a <user>`);
      const parent = stack[stack.length - 1]!;
      const el = canonicalElement(tag, parent.uri);
      parent.children.push(el);
      stack.push(el);
    }
  });
  parser.on("text", (text) => {
    if (depth >= 3) stack[stack.length - 1]!.children.push(text);
    else if (text.trim() !== "") throw bad(at(), `text outside of a <user>: '${text.trim().slice(0, 40)}'`);
  });
  parser.on("cdata", (text) => {
    if (depth >= 3) stack[stack.length - 1]!.children.push(text);
  });
  parser.on("closetag", () => {
    if (depth >= 3) {
      const el = stack.pop()!;
      if (depth === 3) {
        // Checked here too: a small file comes in one chunk, closed before the check between chunks.
        if (parser.position - userStart > limits.maxUserChars) throw tooLarge();
        ready.push(pieUser(el, host!, `${file}:${userLine}`));
      }
    }
    depth--;
  });

  const stream = createReadStream(file, { encoding: "utf8", highWaterMark: 64 * 1024 });
  try {
    for await (const chunk of stream) {
      parser.write(chunk as string);
      if (depth >= 3 && parser.position - userStart > limits.maxUserChars) {
        throw tooLarge();
      }
      yield* ready.splice(0);
    }
    parser.close();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") throw new PieError(`${file}: no such file`);
    if ((err as NodeJS.ErrnoException).code === "EISDIR") throw new PieError(`${file}: a directory, not a file`);
    throw err;
  } finally {
    stream.destroy();
  }
  if (!sawRoot) throw new PieError(`${file}: empty; expected an XEP-0227 document (<server-data xmlns='${NS_PIE}'>)`);
  yield* ready.splice(0);
}

/** The account a `<user>` element describes. */
function pieUser(el: Element, host: string, where: string): PieUser {
  const name = el.attrs.name;
  if (name === undefined || name === "") throw bad(where, `<user> without a name in <host jid='${host}'>`);
  const jid = Jid.tryParse(`${name}@${host}`);
  if (!jid || jid.local === "" || jid.resource !== "" || name.includes("@") || name.includes("/")) {
    throw bad(where, `<user name='${name}'>: '${name}@${host}' is not a valid account JID`);
  }
  const user = jid.bareString();
  const u: PieUser = { jid: user, where, scram: [], roster: [], privateXml: [], offline: [], pending: [], ignored: [] };
  if (el.attrs.password !== undefined && el.attrs.password !== "") u.password = el.attrs.password;
  for (const c of el.getChildren()) {
    const ns = c.ns;
    if (c.local === "scram-credentials" && ns === NS_PIE_SCRAM) u.scram.push(scram(c, where));
    else if (c.local === "query" && ns === NS_ROSTER) u.roster.push(...roster(c, where, user));
    else if (c.local === "vCard" && ns === NS_VCARD) u.vcard = standalone(c);
    else if (c.local === "query" && ns === NS_PRIVATE) {
      for (const item of c.getChildren()) u.privateXml.push({ key: `${item.local} ${item.ns}`, value: standalone(item) });
    } else if (c.local === "offline-messages") {
      for (const m of c.getChildren()) {
        if (m.local !== "message") throw bad(where, `<offline-messages> of ${user} holds a <${m.local}>, not a <message>`);
        u.offline.push(offlineMessage(m, where));
      }
    } else if (c.local === "presence" && (ns === NS_CLIENT || ns === NS_PIE) && c.attrs.type === "subscribe") {
      const from = Jid.tryParse(c.attrs.from ?? "");
      if (!from) throw bad(where, `a pending <presence type='subscribe'> of ${user} without a valid from`);
      const contact = from.bareString();
      u.pending.push({ contact, value: standalone(new Element("presence", { ...c.attrs, from: contact, to: user }, c.children), NS_CLIENT) });
    } else u.ignored.push(ns === NS_PIE ? c.local : `${c.local} xmlns='${ns}'`);
  }
  return u;
}

function scram(el: Element, where: string): PieScram {
  const text = (name: string): string => {
    const v = el.getChildText(name)?.trim();
    if (!v) throw bad(where, `<scram-credentials mechanism='${el.attrs.mechanism ?? ""}'> without <${name}>`);
    return v;
  };
  const iterations = Number(text("iter-count"));
  if (!Number.isInteger(iterations) || iterations < 1) throw bad(where, `<iter-count> is not a positive integer: '${text("iter-count")}'`);
  return { mechanism: el.attrs.mechanism ?? "", iterations, salt: text("salt"), storedKey: text("stored-key"), serverKey: text("server-key") };
}

function roster(query: Element, where: string, user: string): PieRosterItem[] {
  const out: PieRosterItem[] = [];
  for (const item of query.getChildren("item")) {
    const raw = item.attrs.jid;
    const jid = raw === undefined ? undefined : Jid.tryParse(raw);
    if (!jid) throw bad(where, `roster item of ${user} with ${raw === undefined ? "no jid" : `jid '${raw}', not a JID`}`);
    const subscription = item.attrs.subscription ?? "none";
    if (!SUBSCRIPTIONS.has(subscription)) throw bad(where, `roster item ${raw} of ${user}: subscription '${subscription}' (expected none, to, from or both)`);
    const r: PieRosterItem = {
      jid: jid.toString(),
      subscription: subscription as PieRosterItem["subscription"],
      groups: [...new Set(item.getChildren("group").map((g) => g.text()))],
    };
    if (item.attrs.name !== undefined) r.name = item.attrs.name;
    if (item.attrs.ask === "subscribe") r.ask = "subscribe";
    if (item.attrs.approved === "true" || item.attrs.approved === "1") r.approved = true;
    out.push(r);
  }
  return out;
}

function offlineMessage(m: Element, where: string): PieUser["offline"][number] {
  // Written in the file's namespace (or none) by some exporters: it is a client's message all the same.
  const ns = m.ns === NS_PIE || m.ns === "" ? NS_CLIENT : m.ns;
  const out: PieUser["offline"][number] = { value: standalone(m, ns) };
  const stamp = m.getChildren("delay").find((d) => d.ns === NS_DELAY)?.attrs.stamp;
  if (stamp !== undefined) {
    const t = new Date(stamp);
    if (Number.isNaN(t.getTime())) throw bad(where, `offline message with a delay stamp that is not a time: '${stamp}'`);
    out.when = t.toISOString();
  }
  const from = m.attrs.from === undefined ? undefined : Jid.tryParse(m.attrs.from);
  if (from) out.with = from.bareString();
  return out;
}
