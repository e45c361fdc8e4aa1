/**
 * A component as the farm's processes use it: one link to every router in
 * the list, each reconnecting on its own with exponential backoff and
 * jitter.
 *
 * Which link a stanza leaves through (docs/scaling.md, "Routers that share
 * the load"): by its destination, so that every router carries a share and
 * all stanzas for one destination take one router, in order (RFC 6120
 * §10.1). The destination is read from the element's `to`: a process
 * address (`c2s/c2s-1`, `localhost/sm-2`), a user's bare JID, or a name
 * (`xdb`). Among the live links whose router serves that destination now
 * (its `<members/>` lists), not leaving and settled, rendezvous hashing on
 * the destination picks one, so every process agrees and a router joining
 * or leaving moves only its share. What no router's lists name (another
 * server's domain, an element without `to`) leaves through one sticky link,
 * as all traffic did before: the first settled one, kept until it dies or
 * its router says it is leaving.
 */
import { EventEmitter } from "node:events";
import { Element, NS, parseTrusted } from "@jabberfarm/xml";
import { FARM_ROUTER_NS, readMembers } from "./members.js";
import type { CloseReason, XmlConnectionOptions } from "./connection.js";
import { RouterLink, type RouterAddress } from "./link.js";
import { rendezvousScore, rendezvousSeed } from "./rendezvous.js";
import { FARM_LINK_MAX_BYTES, OversizeError, oversize } from "./limits.js";

export interface BackoffOptions {
  /** First retry delay. */
  initialMs: number;
  /** Ceiling of the delay. */
  maxMs: number;
}

export interface ComponentOptions extends XmlConnectionOptions {
  name: string;
  secret: string;
  routers: RouterAddress[];
  instance?: string;
  backoff?: Partial<BackoffOptions>;
  handshakeTimeoutMs?: number;
  /** Read the routers' streams with the splitter (see LinkOptions.splitter). */
  splitter?: boolean;
  /**
   * A link up for less than this is passed over for one up longer: its router
   * may have (re)started a moment ago and not yet heard from every component,
   * so it would bounce stanzas with service-unavailable. Default 1000 ms.
   */
  settleMs?: number;
}

export interface ComponentEvents {
  /** `raw` is bytes when the component reads with the splitter (`splitter: true`), else text. */
  stanza: [el: Element, raw: string | Buffer, via: RouterLink];
  up: [link: RouterLink];
  /** The link's router is stopping (`<leaving/>`): new stanzas go through another link while it drains. */
  leaving: [link: RouterLink];
  /**
   * One router's list of the instances serving `name`, as it arrives: for
   * every name the router serves, on every change (empty once nobody serves
   * it), and each name's current list when the link comes up.
   */
  members: [name: string, instances: string[], via: RouterLink];
  /**
   * `instancesOf(name)` changed: a router's notice, or a link going down and
   * taking its lists with it. Emitted only on a real change.
   */
  membership: [name: string, instances: ReadonlySet<string>];
  down: [link: RouterLink, reason: CloseReason];
}

/** Full jitter: a random delay between 0 and the exponential ceiling (so reconnect storms spread out). */
export function backoffDelay(attempt: number, o: BackoffOptions, random: () => number = Math.random): number {
  const ceiling = Math.min(o.maxMs, o.initialMs * 2 ** Math.min(attempt, 30));
  return Math.max(o.initialMs / 2, Math.floor(random() * ceiling));
}

interface Slot {
  address: RouterAddress;
  link: RouterLink | undefined;
  attempt: number;
  timer: NodeJS.Timeout | undefined;
  /** The latest non-empty list per name from this link's router; cleared when the link goes down. */
  members: Map<string, string[]>;
  /** The link's router sent `<leaving/>`: still read from it, send through another when there is one. */
  draining: boolean;
  /** `performance.now()` when the link came up. */
  upAt: number;
  /** Rendezvous seed of the router's address: the same in every process. */
  seed: number;
}

/** Where an element goes, as far as choosing a router goes: `name` (and `instance`) as the routers' lists say, `key` to hash. */
interface Destination {
  name: string;
  instance: string | undefined;
  key: string;
}

export class Component extends EventEmitter<ComponentEvents> {
  private readonly opts: ComponentOptions;
  private readonly backoff: BackoffOptions;
  private readonly settleMs: number;
  private readonly slots: Slot[];
  /** The slot whose link new stanzas leave through, kept while it is live and not draining. */
  private current: Slot | undefined;
  private stopped = true;
  /** The last union per name announced with `membership`. */
  private readonly membership = new Map<string, ReadonlySet<string>>();

  constructor(opts: ComponentOptions) {
    super();
    if (opts.routers.length === 0) throw new Error("a component needs at least one router address");
    this.opts = opts;
    this.backoff = { initialMs: opts.backoff?.initialMs ?? 100, maxMs: opts.backoff?.maxMs ?? 5000 };
    this.settleMs = opts.settleMs ?? 1000;
    this.slots = opts.routers.map((address) => ({
      address, link: undefined, attempt: 0, timer: undefined, members: new Map(), draining: false, upAt: 0, seed: rendezvousSeed(`${address.host}:${address.port}`),
    }));
  }

  get name(): string {
    return this.opts.name;
  }

  /** Links that have completed the handshake. */
  get liveLinks(): RouterLink[] {
    const out: RouterLink[] = [];
    for (const s of this.slots) if (s.link?.isReady) out.push(s.link);
    return out;
  }

  /** stop() or crash() was called: links going down now are not failures. */
  get stopping(): boolean {
    return this.stopped;
  }

  get isUp(): boolean {
    return this.pick() !== undefined;
  }

  /** True when a live link has more queued than its high-water mark. */
  get congested(): boolean {
    for (const s of this.slots) if (s.link?.congested) return true;
    return false;
  }

  /** The link new stanzas leave through now, if any is live. */
  get linkInUse(): RouterLink | undefined {
    return this.pick();
  }

  /** Bytes queued on every link, live or closing. */
  get queuedBytes(): number {
    let n = 0;
    for (const s of this.slots) n += s.link?.queuedBytes ?? 0;
    return n;
  }

  /**
   * The instances serving `name` as far as the live links' routers know: the
   * union of their latest lists. A process that died leaves every router's
   * list, so it leaves the union within a round trip; a router that died
   * takes its lists with it.
   */
  instancesOf(name: string): Set<string> {
    const out = new Set<string>();
    for (const s of this.slots) for (const id of s.members.get(name) ?? []) out.add(id);
    return out;
  }

  /** Starts every link; resolves once one of them is ready (or rejects after `timeoutMs`). */
  start(timeoutMs = 10_000): Promise<void> {
    this.stopped = false;
    for (const s of this.slots) this.connect(s);
    return this.waitUntilUp(timeoutMs);
  }

  waitUntilUp(timeoutMs = 10_000): Promise<void> {
    if (this.isUp) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.off("up", onUp);
        reject(new Error(`component '${this.opts.name}': no router answered within ${timeoutMs} ms`));
      }, timeoutMs);
      const onUp = (): void => {
        clearTimeout(timer);
        resolve();
      };
      this.once("up", onUp);
    });
  }

  /**
   * Resolves once every router in the list is linked, or after `ms`. A
   * short-lived process (the CLI) waits for it before asking: an answer may
   * come back through any router, and one we are not linked to yet bounces it.
   */
  async allLinked(ms: number): Promise<void> {
    const end = Date.now() + ms;
    while (this.liveLinks.length < this.slots.length && Date.now() < end) await new Promise((r) => setTimeout(r, 25));
  }

  /**
   * Sends through the link in use; false when no router is reachable now.
   * Throws OversizeError for an element larger than the router takes (it
   * would close the link, with all it carries): callers that build elements
   * from what others sent check `fits` first and fail that one request.
   */
  send(stanza: Element | string | Buffer): boolean {
    const text = stanza instanceof Element ? stanza.toString() : stanza;
    const link = this.linkFor(text);
    if (!link) return false;
    const bytes = oversize(text, link.maxElementBytes);
    if (bytes > 0) throw new OversizeError(bytes, link.maxElementBytes);
    link.send(text);
    return true;
  }

  /** The largest element the routers take from us (the smallest any live link announced). */
  get maxElementBytes(): number {
    let max = Infinity;
    for (const s of this.slots) if (s.link?.isReady && s.link.maxElementBytes < max) max = s.link.maxElementBytes;
    return max === Infinity ? this.opts.maxStanzaBytes ?? FARM_LINK_MAX_BYTES : max;
  }

  /** Whether `text` is small enough to send (see `send`). */
  fits(text: string | Buffer): boolean {
    return oversize(text, this.maxElementBytes) === 0;
  }

  /** Calls `fn` once no live link is congested. */
  onceDrained(fn: () => void): void {
    for (const s of this.slots) {
      if (s.link?.congested) {
        s.link.onceDrained(() => this.onceDrained(fn));
        return;
      }
    }
    fn();
  }

  /**
   * The link for `text` (see the file's comment): by destination among the
   * live links whose router serves it, else the sticky one.
   */
  linkFor(text: string | Buffer): RouterLink | undefined {
    const sticky = this.pick();
    if (sticky === undefined || this.slots.length === 1) return sticky;
    const to = destinationOf(text);
    if (to === undefined) return sticky;
    const now = performance.now();
    let best: Slot | undefined;
    let bestScore = -1;
    let bestSettled = false;
    for (const s of this.slots) {
      if (!s.link?.isReady || s.draining) continue;
      const served = s.members.get(to.name);
      if (served === undefined || (to.instance !== undefined && !served.includes(to.instance))) continue;
      const settled = now - s.upAt >= this.settleMs;
      if (best !== undefined && bestSettled && !settled) continue;
      const score = rendezvousScore(s.seed, to.key);
      if (best === undefined || (settled && !bestSettled) || score > bestScore) {
        best = s;
        bestScore = score;
        bestSettled = settled;
      }
    }
    return best?.link ?? sticky;
  }

  /** Closes every link and stops reconnecting. */
  async stop(): Promise<void> {
    this.stopped = true;
    const waits: Promise<void>[] = [];
    for (const s of this.slots) {
      clearTimeout(s.timer);
      const link = s.link;
      if (link?.isReady) waits.push(new Promise((resolve) => {
        this.on("down", function onDown(this: Component, l: RouterLink) {
          if (l === link) {
            this.off("down", onDown);
            resolve();
          }
        });
      }));
      link?.close();
    }
    await Promise.race([Promise.all(waits), new Promise((r) => setTimeout(r, 2500).unref())]);
  }

  /** Drops every socket at once, as a crash would. For tests. */
  crash(): void {
    this.stopped = true;
    for (const s of this.slots) {
      clearTimeout(s.timer);
      s.link?.destroy();
    }
  }

  private pick(): RouterLink | undefined {
    const current = this.current;
    if (current?.link?.isReady && !current.draining) return current.link;
    this.current = this.choose();
    return this.current?.link;
  }

  /**
   * The slot to send through when the current one is gone or draining: a live
   * one whose router is not leaving, settled ones first (see `settleMs`), then
   * the first in the list, so that the farm's processes tend to agree on one
   * router. When every live router is leaving, the current link stays (a
   * draining router still routes).
   */
  private choose(): Slot | undefined {
    const now = performance.now();
    let best: Slot | undefined;
    for (const s of this.slots) {
      if (!s.link?.isReady) continue;
      if (best === undefined || this.better(s, best, now)) best = s;
    }
    if (best?.draining && this.current?.link?.isReady) return this.current;
    return best;
  }

  /** Whether live `a` should carry new stanzas rather than live `b`, which comes before it in the list. */
  private better(a: Slot, b: Slot, now: number): boolean {
    if (a.draining !== b.draining) return !a.draining;
    return now - a.upAt >= this.settleMs && now - b.upAt < this.settleMs;
  }

  private connect(slot: Slot): void {
    if (this.stopped) return;
    const link = new RouterLink(slot.address, {
      ...this.opts,
      name: this.opts.name,
      secret: this.opts.secret,
    }, {
      onReady: (l) => {
        slot.attempt = 0;
        slot.upAt = performance.now();
        this.emit("up", l);
      },
      onStanza: (l, el, raw) => {
        // Only the router itself speaks in its namespace, and what it says
        // has no `from`: a routed element always has one (docs/router.md),
        // so a notice that names a sender was forged by one and is dropped.
        if (el.ns === FARM_ROUTER_NS) {
          if (el.attrs.from !== undefined) return;
          this.onRouterNotice(slot, l, el, raw);
          return;
        }
        this.emit("stanza", el, raw, l);
      },
      onDown: (l, reason) => {
        if (slot.link !== l) return;
        slot.link = undefined;
        const names = [...slot.members.keys()];
        slot.members.clear();
        if (this.current === slot) this.current = undefined;
        this.emit("down", l, reason);
        for (const name of names) this.recountMembership(name);
        this.schedule(slot);
      },
    });
    slot.link = link;
    slot.draining = false;
    link.open();
  }

  /** What the router says to the farm's processes (members.ts); an unknown notice is ignored. */
  private onRouterNotice(slot: Slot, link: RouterLink, el: Element, raw: string | Buffer): void {
    if (el.local === "members") {
      const m = readMembers(typeof raw === "string" ? el : parseTrusted(raw.toString("utf8"), NS.COMPONENT));
      if (m) this.onMembers(slot, link, m.name, m.instances);
    } else if (el.local === "leaving" && !slot.draining) {
      slot.draining = true;
      this.emit("leaving", link);
    }
  }

  private onMembers(slot: Slot, link: RouterLink, name: string, instances: string[]): void {
    if (instances.length === 0) slot.members.delete(name);
    else slot.members.set(name, instances);
    this.emit("members", name, instances, link);
    this.recountMembership(name);
  }

  private recountMembership(name: string): void {
    const now = this.instancesOf(name);
    const before = this.membership.get(name);
    if (before === undefined ? now.size === 0 : sameSet(before, now)) return;
    if (now.size === 0) this.membership.delete(name);
    else this.membership.set(name, now);
    this.emit("membership", name, now);
  }

  private schedule(slot: Slot): void {
    if (this.stopped) return;
    const delay = backoffDelay(slot.attempt++, this.backoff);
    // Not unref'd: a process whose only work is its router links must keep retrying.
    slot.timer = setTimeout(() => this.connect(slot), delay);
  }
}

const TO = " to='";

/**
 * The destination named by the `to` of `text`'s first start tag, or
 * undefined without one. The farm writes its start tags with single quotes
 * and escapes `'` in values (packages/xml), so " to='" cannot occur inside
 * another attribute's value, and `<` cannot occur in one at all: the first
 * " to='" before the second `<` is the element's own.
 */
export function destinationOf(text: string | Buffer): Destination | undefined {
  // The same searches on text and on bytes (ASCII needles are one byte each in UTF-8).
  const at = text.indexOf(TO);
  if (at < 0) return undefined;
  const lt = text.indexOf("<", 1);
  if (lt >= 0 && lt < at) return undefined;
  const start = at + TO.length;
  const end = text.indexOf("'", start);
  if (end < 0) return undefined;
  const to = typeof text === "string" ? text.slice(start, end) : text.toString("utf8", start, end);
  const atSign = to.indexOf("@");
  const slash = to.indexOf("/", atSign + 1);
  if (atSign >= 0) {
    // A user (or a room): all of its stanzas take one router, whichever resource.
    const bare = slash < 0 ? to : to.slice(0, slash);
    return { name: bare.slice(atSign + 1), instance: undefined, key: bare };
  }
  // A process (`c2s/c2s-1`, `localhost/sm-2`): only a router it is linked to can take it.
  if (slash >= 0) return { name: to.slice(0, slash), instance: to.slice(slash + 1), key: to };
  return { name: to, instance: undefined, key: to };
}

function sameSet(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  if (a.size !== b.size) return false;
  for (const x of a) if (!b.has(x)) return false;
  return true;
}

/**
 * Calls `fn` whenever an instance of `name` disappears from every router's
 * list (a process we send confirmed routes to died or stopped).
 */
export function resendWhenOneLeaves(component: Component, name: string, fn: () => void): void {
  let before: ReadonlySet<string> = new Set();
  component.on("membership", (n, now) => {
    if (n !== name) return;
    let lost = false;
    for (const id of before) if (!now.has(id)) lost = true;
    before = now;
    if (lost) fn();
  });
}
