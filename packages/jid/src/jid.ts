/**
 * XMPP addresses (JIDs) per RFC 7622: localpart@domainpart/resourcepart.
 */
import { JidError } from "./error.js";
import { prepDomainpart, prepLocalpart, prepResourcepart } from "./parts.js";

/** Maximum number of parsed JIDs remembered by Jid.parse(). */
const CACHE_MAX_ENTRIES = 10_000;
/** Longer inputs are parsed but not cached, so the cache stays small in bytes. */
const CACHE_MAX_KEY_LENGTH = 256;

/**
 * Bounded, approximately-LRU cache from input string to Jid, built from two
 * generations of Map: entries go into `young`; when it is full it becomes
 * `old` and the previous `old` is dropped wholesale. A hit in `old` copies the
 * entry into `young`, so anything used at least once per generation survives.
 * (Evicting single entries from one big Map with keys().next() looks simpler
 * but is O(number of deleted slots) in V8 and made a miss ~4 µs.)
 */
const GENERATION_SIZE = CACHE_MAX_ENTRIES / 2;
let young = new Map<string, Jid>();
let old = new Map<string, Jid>();

function cacheGet(key: string): Jid | undefined {
  const hit = young.get(key);
  if (hit !== undefined) return hit;
  const aged = old.get(key);
  if (aged !== undefined) cachePut(key, aged);
  return aged;
}

function cachePut(key: string, jid: Jid): void {
  if (young.size >= GENERATION_SIZE) {
    old = young;
    young = new Map();
  }
  young.set(key, jid);
}

/**
 * An immutable, normalised JID. Instances are frozen; equal addresses have
 * equal `local`, `domain` and `resource` strings, so `toString()` can be used
 * as a map key.
 */
export class Jid {
  /** Normalised localpart, '' when absent. */
  readonly local: string;
  /** Normalised domainpart: U-label form in lower case, "1.2.3.4", or "[canonical IPv6]". */
  readonly domain: string;
  /** Normalised resourcepart, '' when absent. */
  readonly resource: string;

  readonly #full: string;
  #bareString: string | undefined;
  #bare: Jid | undefined;

  private constructor(local: string, domain: string, resource: string, full?: string) {
    this.local = local;
    this.domain = domain;
    this.resource = resource;
    this.#full = full ?? Jid.#compose(local, domain, resource);
    Object.freeze(this); // private (#) fields stay writable for the lazy caches
  }

  static #compose(local: string, domain: string, resource: string): string {
    const bare = local === "" ? domain : local + "@" + domain;
    return resource === "" ? bare : bare + "/" + resource;
  }

  /**
   * Parses and normalises a JID, throwing JidError when it is invalid.
   * RFC 7622 section 3.1: the resourcepart is everything after the first '/';
   * the localpart is everything before the first '@' that precedes that '/'.
   * Results are cached (bounded to 10 000 entries, approximately LRU).
   */
  static parse(s: string): Jid {
    if (typeof s !== "string") throw new JidError("not-a-string", s, `expected a string, got ${typeof s}`);
    const hit = cacheGet(s);
    if (hit !== undefined) return hit;
    const jid = Jid.#parseUncached(s);
    if (s.length <= CACHE_MAX_KEY_LENGTH) cachePut(s, jid);
    return jid;
  }

  static #parseUncached(s: string): Jid {
    const slash = s.indexOf("/");
    const head = slash === -1 ? s : s.slice(0, slash);
    const at = head.indexOf("@");
    const rawLocal = at === -1 ? "" : head.slice(0, at);
    const rawDomain = at === -1 ? head : head.slice(at + 1);
    const rawResource = slash === -1 ? "" : s.slice(slash + 1);

    // An '@' / '/' separator with nothing on its other side is an error;
    // the prep functions report empty parts themselves.
    const local = at === -1 ? "" : prepLocalpart(rawLocal, s);
    const domain = prepDomainpart(rawDomain, s);
    const resource = slash === -1 ? "" : prepResourcepart(rawResource, s);

    // Already-normalised input (the usual case) is reused as the full string.
    const unchanged = local === rawLocal && domain === rawDomain && resource === rawResource;
    return new Jid(local, domain, resource, unchanged ? s : undefined);
  }

  /** Like parse(), but returns null instead of throwing for an invalid JID. */
  static tryParse(s: string): Jid | null {
    try {
      return Jid.parse(s);
    } catch (err) {
      if (err instanceof JidError) return null;
      throw err;
    }
  }

  /**
   * Builds a JID from separate parts, validating and normalising each of them.
   * An empty `local` or `resource` means "absent".
   */
  static of(local: string, domain: string, resource: string = ""): Jid {
    const input = Jid.#compose(String(local), String(domain), String(resource));
    const l = local === "" ? "" : prepLocalpart(local, input);
    const d = prepDomainpart(domain, input);
    const r = resource === "" ? "" : prepResourcepart(resource, input);
    return new Jid(l, d, r);
  }

  /**
   * True when the two strings are valid JIDs denoting the same address.
   * Invalid input is never equal to anything (no exception is thrown).
   */
  static equal(a: string, b: string): boolean {
    const ja = Jid.tryParse(a);
    if (ja === null) return false;
    const jb = Jid.tryParse(b);
    return jb !== null && ja.equals(jb);
  }

  /** Empties the parse cache (for tests and memory pressure). */
  static clearCache(): void {
    young = new Map();
    old = new Map();
  }

  /** Number of entries currently held by the parse cache (at most 10 000). */
  static get cacheSize(): number {
    return young.size + old.size;
  }

  /** The JID without its resource; returns `this` when already bare. */
  bare(): Jid {
    if (this.resource === "") return this;
    return (this.#bare ??= new Jid(this.local, this.domain, "", this.bareString()));
  }

  /** True when there is no resourcepart. */
  isBare(): boolean {
    return this.resource === "";
  }

  /** True when there is a resourcepart. */
  isFull(): boolean {
    return this.resource !== "";
  }

  /** "local@domain" or "domain". */
  bareString(): string {
    if (this.resource === "") return this.#full;
    return (this.#bareString ??= this.local === "" ? this.domain : this.local + "@" + this.domain);
  }

  /**
   * The same bare JID with another resource (validated and normalised).
   * An empty string gives the bare JID.
   */
  withResource(resource: string): Jid {
    if (resource === "") return this.bare();
    const r = prepResourcepart(resource, this.bareString() + "/" + String(resource));
    if (r === this.resource) return this;
    return new Jid(this.local, this.domain, r);
  }

  /** Same normalised address (all three parts). */
  equals(other: Jid): boolean {
    return (
      this === other ||
      (other instanceof Jid && this.domain === other.domain && this.local === other.local && this.resource === other.resource)
    );
  }

  /** The full normalised form, "local@domain/resource" with absent parts left out. */
  toString(): string {
    return this.#full;
  }

  toJSON(): string {
    return this.#full;
  }
}
