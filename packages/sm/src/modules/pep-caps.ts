/**
 * Entity capabilities (XEP-0115) as PEP needs them: which resources asked
 * for notifications of a node (`NODE+notify` among their features). A
 * presence carries `<c hash ver node/>`; the features behind a `ver` are
 * learnt by asking one resource that sent it (disco#info on `node#ver`),
 * checked against the hash (§5.1, with identities, features and extended
 * forms) and, once verified, kept for every resource that sends the same
 * hash (a bounded LRU per SM). Not a module: pep.ts uses it.
 */
import { createHash, randomBytes } from "node:crypto";
import { xml, type Element } from "@jabberfarm/xml";
import { NS_DATA } from "@jabberfarm/dataform";

export const NS_CAPS = "http://jabber.org/protocol/caps";
const NS_DISCO_INFO = "http://jabber.org/protocol/disco#info";

export interface CapsRef {
  hash: string;
  node: string;
  ver: string;
}

/** The hash functions of XEP-0115 §5.4 (IANA names) that node's crypto has. */
const HASHES: Readonly<Record<string, string>> = { "sha-1": "sha1", "sha-224": "sha224", "sha-256": "sha256", "sha-384": "sha384", "sha-512": "sha512", md5: "md5" };

/** The caps a presence carries, or undefined (none, or the legacy form without a hash, which cannot be verified). */
export function readCaps(presence: Element | null | undefined): CapsRef | undefined {
  const c = presence?.getChild("c", NS_CAPS);
  const { hash, node, ver } = c?.attrs ?? {};
  if (hash === undefined || node === undefined || ver === undefined || HASHES[hash] === undefined) return undefined;
  return { hash, node, ver };
}

export const sameCaps = (a: CapsRef | undefined, b: CapsRef | undefined): boolean =>
  a?.hash === b?.hash && a?.ver === b?.ver && a?.node === b?.node;

/**
 * The verification string of a disco#info answer (XEP-0115 §5.1): sorted
 * identities, features and extended forms (by FORM_TYPE, fields by var,
 * values sorted), each followed by `<`, hashed and base64-encoded.
 * Undefined when the answer breaks the rules of §5.4 (duplicates, a form
 * without FORM_TYPE), which makes it unverifiable.
 */
export function capsVer(query: Element, hash: string): string | undefined {
  const algo = HASHES[hash];
  if (algo === undefined) return undefined;
  const identities = query.getChildren("identity").map((i) =>
    `${i.attrs.category ?? ""}/${i.attrs.type ?? ""}/${i.attrs["xml:lang"] ?? ""}/${i.attrs.name ?? ""}`);
  const features = query.getChildren("feature").map((f) => f.attrs.var ?? "");
  if (new Set(identities).size !== identities.length || new Set(features).size !== features.length) return undefined;
  let s = identities.sort().map((i) => `${i}<`).join("") + features.sort().map((f) => `${f}<`).join("");
  const forms: Array<{ type: string; text: string }> = [];
  for (const x of query.getChildren("x", NS_DATA)) {
    const fields = x.getChildren("field");
    const formType = fields.find((f) => f.attrs.var === "FORM_TYPE");
    if (formType === undefined) continue; // §5.4 3.6: forms without FORM_TYPE are left out
    const type = formType.getChildren("value").map((v) => v.text())[0] ?? "";
    const rest = fields.filter((f) => f !== formType).map((f) => ({ v: f.attrs.var ?? "", values: f.getChildren("value").map((v) => v.text()).sort() }));
    rest.sort((a, b) => (a.v < b.v ? -1 : a.v > b.v ? 1 : 0));
    forms.push({ type, text: `${type}<` + rest.map((f) => `${f.v}<` + f.values.map((v) => `${v}<`).join("")).join("") });
  }
  if (new Set(forms.map((f) => f.type)).size !== forms.length) return undefined;
  s += forms.sort((a, b) => (a.type < b.type ? -1 : a.type > b.type ? 1 : 0)).map((f) => f.text).join("");
  return createHash(algo).update(s, "utf8").digest("base64");
}

export type Features = ReadonlySet<string>;

interface Pending {
  key: string;
  ref: CapsRef;
  /** The resource asked. */
  full: string;
  timer: NodeJS.Timeout;
  waiters: Array<{ full: string; resolve: (f: Features | undefined) => void }>;
}

/** Asks for and remembers the features behind verification strings. */
export class CapsResolver {
  /** Verified strings (`hash ver`) → features, most recently used last. */
  private readonly verified = new Map<string, Features>();
  /** Queries in flight by iq id, and by the string they ask about (one query per string at a time). */
  private readonly pending = new Map<string, Pending>();
  private readonly pendingByKey = new Map<string, string>();
  private counter = 0;

  constructor(
    /** Sends a disco#info query (its `from` the user the presence came to). */
    private readonly send: (iq: Element) => void,
    private readonly size = 10_000,
    private readonly timeoutMs = 10_000,
  ) {}

  /** How many verified strings are kept (for tests and metrics). */
  get cached(): number {
    return this.verified.size;
  }

  /** The features of a resource that sent `ref`: at once when verified before, else after asking it (undefined: unknown). */
  features(asker: string, full: string, ref: CapsRef): Features | Promise<Features | undefined> {
    const key = `${ref.hash} ${ref.ver}`;
    const hit = this.verified.get(key);
    if (hit !== undefined) {
      this.verified.delete(key);
      this.verified.set(key, hit);
      return hit;
    }
    return new Promise((resolve) => {
      const inFlight = this.pendingByKey.get(key);
      if (inFlight !== undefined) {
        this.pending.get(inFlight)!.waiters.push({ full, resolve });
        return;
      }
      if (this.pending.size >= this.size) {
        resolve(undefined); // a flood of unknown strings: no more memory for it
        return;
      }
      const id = `caps${(++this.counter).toString(36)}-${randomBytes(4).toString("hex")}`;
      const timer = setTimeout(() => this.settle(id, undefined), this.timeoutMs);
      timer.unref();
      this.pending.set(id, { key, ref, full, timer, waiters: [{ full, resolve }] });
      this.pendingByKey.set(key, id);
      this.send(xml("iq", { type: "get", id, from: asker, to: full }, xml("query", { xmlns: NS_DISCO_INFO, node: `${ref.node}#${ref.ver}` })));
    });
  }

  /** An iq result or error that answers one of our queries: consumed (true), else false. */
  answer(iq: Element): boolean {
    const id = iq.attrs.id;
    const p = id === undefined ? undefined : this.pending.get(id);
    // Only the resource asked may answer (an id is no secret).
    if (p === undefined || iq.attrs.from !== p.full || (iq.attrs.type !== "result" && iq.attrs.type !== "error")) return false;
    const query = iq.attrs.type === "result" ? iq.getChild("query", NS_DISCO_INFO) : undefined;
    if (query === undefined) {
      this.settle(id!, undefined);
      return true;
    }
    const features: Features = new Set(query.getChildren("feature").map((f) => f.attrs.var ?? ""));
    if (capsVer(query, p.ref.hash) === p.ref.ver) {
      this.verified.set(p.key, features);
      if (this.verified.size > this.size) this.verified.delete(this.verified.keys().next().value!);
      this.settle(id!, features);
    } else {
      // §5.4: not cached. The resource that answered gets what it said for
      // itself; others that sent the same string learn nothing from it.
      const answered = p.waiters.filter((w) => w.full === p.full);
      p.waiters = p.waiters.filter((w) => w.full !== p.full);
      this.settle(id!, undefined);
      for (const w of answered) w.resolve(features);
    }
    return true;
  }

  private settle(id: string, features: Features | undefined): void {
    const p = this.pending.get(id);
    if (p === undefined) return;
    clearTimeout(p.timer);
    this.pending.delete(id);
    this.pendingByKey.delete(p.key);
    for (const w of p.waiters) w.resolve(features);
  }

  stop(): void {
    for (const id of [...this.pending.keys()]) this.settle(id, undefined);
  }
}
