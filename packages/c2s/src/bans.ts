/**
 * Failed-authentication bans, as ejabberd's mod_fail2ban does them: every
 * failure is answered at once, and an address (or an account) with too many
 * failures in a window is refused for a while, cheaply, before any TLS,
 * storage or PBKDF2 work. A growing answer delay would do the same harm to
 * an attacker only by making every client that mistyped wait.
 *
 * Kept in memory per c2s process, bounded in size; docs/security.md says
 * what that means for a farm of several c2s.
 */
import { BlockList, isIPv4, isIPv6 } from "node:net";
import { StreamError } from "@jabberfarm/xml";
import { SlidingWindow } from "./limits.js";

export interface BanRule {
  /** Failures within `windowMs` that start a ban; 0 turns the rule off. */
  failures: number;
  windowMs: number;
  banMs: number;
}

/** Keys kept at once per rule; the least recently touched go first. */
const MAX_KEYS = 100_000;

/** Failures per key in a sliding window; a key that reaches the rule's count is banned for `banMs`. */
export class FailureBans {
  private readonly window: SlidingWindow;
  /** key → when its ban ends (ms since the epoch), in the order the bans began. */
  private readonly until = new Map<string, number>();

  constructor(readonly rule: BanRule, private readonly maxKeys = MAX_KEYS) {
    this.window = new SlidingWindow({ windowMs: rule.windowMs, maxPerKey: Math.max(1, rule.failures), maxKeys });
  }

  /** How long the ban on `key` lasts from `now`; 0 when there is none. */
  bannedFor(key: string, now: number = Date.now()): number {
    const end = this.until.get(key);
    if (end === undefined) return 0;
    if (end > now) return end - now;
    this.until.delete(key);
    return 0;
  }

  /** Records a failure; true when it starts a ban. */
  fail(key: string, now: number = Date.now()): boolean {
    if (this.rule.failures === 0 || this.bannedFor(key, now) > 0) return false;
    if (this.window.add(key, now) < this.rule.failures) return false;
    // Counting starts over once the ban ends.
    this.window.forget(key);
    if (this.until.size >= this.maxKeys) {
      const oldest = this.until.keys().next();
      if (!oldest.done) this.until.delete(oldest.value);
    }
    this.until.set(key, now + this.rule.banMs);
    return true;
  }

  /** Bans in force. */
  get size(): number {
    return this.until.size;
  }

  sweep(now: number = Date.now()): void {
    this.window.sweep(now);
    for (const [key, end] of this.until) if (end <= now) this.until.delete(key);
  }
}

/**
 * What addresses are counted as: an IPv4 address (an IPv4-mapped IPv6 one
 * as its IPv4 form), and for IPv6 its /64, since anybody with one IPv6
 * address holds a whole /64 to try from.
 */
export function addressKey(ip: string): string {
  if (ip.startsWith("::ffff:") && isIPv4(ip.slice(7))) return ip.slice(7);
  if (!isIPv6(ip)) return ip;
  const bare = ip.split("%")[0]!;
  const [head, tail] = bare.includes("::") ? bare.split("::") as [string, string] : [bare, undefined];
  const h = head === "" ? [] : head.split(":");
  const t = tail === undefined || tail === "" ? [] : tail.split(":");
  const tailGroups = t.reduce((n, g) => n + (g.includes(".") ? 2 : 1), 0);
  const groups = tail === undefined ? h : [...h, ...new Array<string>(Math.max(0, 8 - h.length - tailGroups)).fill("0"), ...t];
  return `${groups.slice(0, 4).map((g) => Number.parseInt(g, 16).toString(16)).join(":")}::/64`;
}

/** Addresses that per-address limits and bans never apply to (`limits.exemptAddresses`: addresses and CIDR ranges). */
export function exemptList(entries: readonly string[]): BlockList {
  const list = new BlockList();
  for (const e of entries) {
    const [addr, bits] = e.split("/") as [string, string | undefined];
    const type = isIPv4(addr) ? "ipv4" : "ipv6";
    if (bits === undefined) list.addAddress(addr, type);
    else list.addSubnet(addr, Number(bits), type);
  }
  return list;
}

/** A valid `exemptAddresses` entry: an IP address, or one with a prefix length. */
export function isAddressOrRange(entry: string): boolean {
  const [addr, bits, extra] = entry.split("/");
  if (extra !== undefined || addr === undefined) return false;
  const v = isIPv4(addr) ? 32 : isIPv6(addr) ? 128 : 0;
  if (v === 0) return false;
  return bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= v);
}

export interface AuthBansOptions {
  address: BanRule;
  account: BanRule;
  exempt: readonly string[];
  /** A ban began: for a log line and a metric. `key` is the address (addressKey) or the account. */
  onBan?: (kind: "address" | "account", key: string, banMs: number) => void;
}

/** The c2s's bans: by client address and by account (bare JID). */
export class AuthBans {
  readonly addresses: FailureBans;
  readonly accounts: FailureBans;
  private readonly exempt: BlockList;

  constructor(private readonly o: AuthBansOptions) {
    this.addresses = new FailureBans(o.address);
    this.accounts = new FailureBans(o.account);
    this.exempt = exemptList(o.exempt);
  }

  /** Never limited nor banned by address. */
  isExempt(ip: string): boolean {
    const key = ip.startsWith("::ffff:") && isIPv4(ip.slice(7)) ? ip.slice(7) : ip;
    if (isIPv4(key)) return this.exempt.check(key, "ipv4");
    if (isIPv6(key)) return this.exempt.check(key.split("%")[0]!, "ipv6");
    return false;
  }

  /** How long the address's ban lasts; 0 when none (or the address is exempt). */
  addressBannedFor(ip: string, now: number = Date.now()): number {
    return this.isExempt(ip) ? 0 : this.addresses.bannedFor(addressKey(ip), now);
  }

  accountBannedFor(account: string, now: number = Date.now()): number {
    return this.accounts.bannedFor(account, now);
  }

  /**
   * A wrong password (or unknown account) from `ip` for `account` (the bare
   * JID the client named, if it named a valid one). Says which bans it began.
   */
  failed(ip: string, account: string | undefined, now: number = Date.now()): { address: boolean; account: boolean } {
    const key = addressKey(ip);
    const began = {
      address: !this.isExempt(ip) && this.addresses.fail(key, now),
      account: account !== undefined && this.accounts.fail(account, now),
    };
    if (began.address) this.o.onBan?.("address", key, this.o.address.banMs);
    if (began.account) this.o.onBan?.("account", account!, this.o.account.banMs);
    return began;
  }

  sweep(now: number = Date.now()): void {
    this.addresses.sweep(now);
    this.accounts.sweep(now);
  }
}

/** "10 min", "45 s": how long a ban lasts, for the texts clients see. */
export function humanDuration(ms: number): string {
  const s = Math.ceil(ms / 1000);
  return s >= 60 ? `${Math.ceil(s / 60)} min` : `${s} s`;
}

/** What a banned address is told, after a stream header of ours. */
export function bannedError(ms: number): StreamError {
  return new StreamError("policy-violation", `temporarily banned after too many failed authentication attempts; try again in ${humanDuration(ms)}`);
}
