/**
 * Confirmed delivery between farm processes (docs/envelope.md,
 * "Confirmation"): a stanza a c2s accepted from a client, or one an SM
 * hands on for a user, must not vanish because the router carrying it died
 * mid-flight or because the process it went to died before handling it.
 *
 * The sender numbers what it wants confirmed (`seq='EPOCH.N'`, EPOCH being
 * random per process start) and keeps it until the receiver acknowledges
 * it; what stays unacknowledged is sent again at once when a router link
 * went down or a receiving process left, else after `resendAfterMs`. The receiver acknowledges a
 * number once it has *handled* the element (an SM after its work for it is
 * done, a c2s once written to the client), in batches, and drops numbers it
 * has seen, so a resent copy is harmless. The sender also says the lowest
 * number it still holds (`low`), which lets the receiver forget every
 * number below it: the receiver's memory is the sender's window, not its
 * history.
 */
import { randomBytes } from "node:crypto";
import { escapeAttr, type Element } from "@jabberfarm/xml";
import { ENVELOPE_NS } from "./envelope.js";

export interface ConfirmedSenderOptions {
  /** Resend what is unacknowledged after this long on a link that stayed up. */
  resendAfterMs?: number;
  /** Give up on an element after this many sends (logged by the caller through `onGiveUp`). */
  maxSends?: number;
  /** Bound on what is held; beyond it the oldest are given up. */
  maxPending?: number;
  onGiveUp?: (text: string, sends: number) => void;
  /**
   * Number `n` (what `send` answered) is no longer held: acknowledged,
   * bounced by a router, or given up. For a sender that must tell its own
   * peer once the receiver handled it (s2s, XEP-0198 on server streams).
   */
  onSettled?: (n: number) => void;
  /**
   * Flow control (docs/envelope.md, "Confirmation"): with this many held,
   * `full` says so, and `whenOpen()` settles once no more than half are.
   * The sender itself never refuses; its caller stops feeding it (a c2s
   * pauses the session, an SM holds back its own acknowledgements).
   */
  window?: number;
}

interface Pending {
  text: string;
  sentAt: number;
  sends: number;
}

/** The sender's side: numbers, holds and resends. */
export class ConfirmedSender {
  readonly epoch = randomBytes(4).toString("hex");
  private seq = 0;
  /** No number below this one is held (see `low`). */
  private lowest = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly resendAfterMs: number;
  private readonly maxSends: number;
  private readonly maxPending: number;
  private readonly timer: NodeJS.Timeout;
  /** What `whenOpen()` handed out while the window was over half full. */
  private opening: { promise: Promise<void>; resolve: () => void } | undefined;
  resent = 0;

  constructor(
    /** Puts text on a router link; false when no link is up (the element stays held). */
    private readonly out: (text: string) => boolean,
    private readonly o: ConfirmedSenderOptions = {},
  ) {
    // Long: a receiver that is only slow (an overloaded box) must not be
    // sent everything twice. A router link going down, or a receiver leaving
    // (membership), resends at once through `linkLost`.
    this.resendAfterMs = o.resendAfterMs ?? 15_000;
    this.maxSends = o.maxSends ?? 10;
    this.maxPending = o.maxPending ?? 200_000;
    this.timer = setInterval(() => this.resendOlderThan(this.resendAfterMs), Math.min(1000, Math.max(100, this.resendAfterMs / 4)));
    this.timer.unref();
  }

  /**
   * Sends the element `build` makes from the confirmation attributes (to be
   * put in its start tag as they are); answers its number. 0 when no router
   * link is up: the element is not held then, and the caller answers for it.
   */
  send(build: (confirmAttrs: string) => string): number {
    const n = ++this.seq;
    const text = build(` seq='${this.epoch}.${n}' low='${this.low(n)}'`);
    if (!this.out(text)) return 0;
    this.pending.set(n, { text, sentAt: Date.now(), sends: 1 });
    if (this.pending.size > this.maxPending) {
      const [oldest, p] = this.pending.entries().next().value as [number, Pending];
      this.pending.delete(oldest);
      this.o.onGiveUp?.(p.text, p.sends);
      this.settled(oldest);
    }
    return n;
  }

  /** Whether number `n` (what `send` answered) is still waiting for its acknowledgement. */
  isPending(n: number): boolean {
    return this.pending.has(n);
  }

  /** Numbers the receiver acknowledged (from an `<ack/>` for our epoch). */
  acknowledge(numbers: Iterable<number>): void {
    for (const n of numbers) if (this.pending.delete(n)) this.settled(n);
  }

  /**
   * A router bounced one of ours (its `seq` attribute, copied into the
   * error): it was answered, if with an error, so it is not held any more.
   */
  settleBounce(seqAttr: string | undefined): void {
    if (seqAttr === undefined || !seqAttr.startsWith(this.epoch + ".")) return;
    const n = Number(seqAttr.slice(this.epoch.length + 1));
    if (this.pending.delete(n)) this.settled(n);
  }

  /**
   * A router link went down, or a process we send to left: whatever was in
   * flight may be lost; send everything held again now (copies are harmless).
   */
  linkLost(): void {
    this.resendOlderThan(0);
  }

  get size(): number {
    return this.pending.size;
  }

  /** Whether `window` elements are held (see ConfirmedSenderOptions.window); never without a window. */
  get full(): boolean {
    return this.o.window !== undefined && this.pending.size >= this.o.window;
  }

  /** Settles once no more than half of `window` is held: at once if so now (or without a window). */
  whenOpen(): Promise<void> {
    if (this.o.window === undefined || this.pending.size <= this.o.window >> 1) return Promise.resolve();
    if (this.opening === undefined) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      this.opening = { promise, resolve };
    }
    return this.opening.promise;
  }

  /** Number `n` is no longer held: tells the caller, and opens the window once half empty. */
  private settled(n: number): void {
    this.o.onSettled?.(n);
    const opening = this.opening;
    if (opening !== undefined && this.pending.size <= this.o.window! >> 1) {
      this.opening = undefined;
      opening.resolve();
    }
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /**
   * The lowest number still held (or `next` when none): every number below
   * it is settled. A cursor that only moves forward, not the map's first
   * key: a Map whose oldest entries were deleted keeps their slots until it
   * rehashes, and finding its first key walked over all of them, ~2 µs per
   * send with a few thousand routes in flight (docs/performance.md).
   */
  private low(next: number): number {
    let n = this.lowest;
    while (n < next && !this.pending.has(n)) n++;
    this.lowest = n;
    return n;
  }

  private resendOlderThan(ms: number): void {
    if (this.pending.size === 0) return;
    const now = Date.now();
    // The map stays in number order (entries are updated in place).
    for (const [n, p] of this.pending) {
      if (now - p.sentAt < ms) continue;
      if (p.sends >= this.maxSends) {
        this.pending.delete(n);
        this.o.onGiveUp?.(p.text, p.sends);
        this.settled(n);
        continue;
      }
      if (!this.out(p.text)) return; // no link now; the next tick tries again
      p.sentAt = now;
      p.sends++;
      this.resent++;
    }
  }
}

interface Peer {
  /** Numbers being handled (false) or handled (true). */
  readonly seen: Map<number, boolean>;
  /** The same numbers in arrival order, for forgetting below `low`. */
  order: number[];
  head: number;
  low: number;
  lastHeard: number;
}

export type Receipt = "new" | "duplicate";

/**
 * The receiver's side: one per process. `receive` tells whether an element
 * is new; `handled` acknowledges it (batched per sender).
 */
export class ConfirmedReceiver {
  private readonly peers = new Map<string, Peer>();
  /** Acknowledgements waiting to go, per sender address and epoch. */
  private readonly outbox = new Map<string, { to: string; epoch: string; numbers: number[] }>();
  private flushTimer: NodeJS.Timeout | undefined;
  private readonly sweep: NodeJS.Timeout;
  duplicates = 0;

  constructor(
    /** This process's address (the acknowledgements' `from`). */
    private readonly self: string,
    private readonly out: (text: string) => boolean,
    private readonly o: { flushMs?: number; batch?: number; forgetPeerAfterMs?: number } = {},
  ) {
    const forget = o.forgetPeerAfterMs ?? 120_000;
    this.sweep = setInterval(() => {
      const now = Date.now();
      for (const [k, p] of this.peers) if (now - p.lastHeard > forget) this.peers.delete(k);
    }, Math.min(forget, 30_000));
    this.sweep.unref();
  }

  /**
   * Looks at an element's confirmation attributes. Undefined when it carries
   * none (nothing to confirm); "duplicate" when this number was seen before
   * (drop it: if it was already handled, it is acknowledged again).
   */
  receive(from: string, seqAttr: string | undefined, lowAttr: string | undefined): { ticket: Ticket; receipt: Receipt } | undefined {
    if (seqAttr === undefined) return undefined;
    const dot = seqAttr.indexOf(".");
    const n = Number(seqAttr.slice(dot + 1));
    if (dot <= 0 || !Number.isSafeInteger(n)) return undefined;
    const epoch = seqAttr.slice(0, dot);
    const key = `${from} ${epoch}`;
    let peer = this.peers.get(key);
    if (peer === undefined) {
      peer = { seen: new Map(), order: [], head: 0, low: 0, lastHeard: 0 };
      this.peers.set(key, peer);
    }
    peer.lastHeard = Date.now();
    const low = Number(lowAttr);
    if (Number.isSafeInteger(low) && low > peer.low) this.forgetBelow(peer, low);
    const ticket: Ticket = { from, epoch, n, key };
    const state = peer.seen.get(n);
    if (state !== undefined || n < peer.low) {
      this.duplicates++;
      if (state !== false) this.handled(ticket); // handled before: the first ack may have been lost
      return { ticket, receipt: "duplicate" };
    }
    peer.seen.set(n, false);
    peer.order.push(n);
    return { ticket, receipt: "new" };
  }

  /** The element of `ticket` is handled: acknowledge it (soon, with others). */
  handled(ticket: Ticket): void {
    const key = ticket.key;
    const peer = this.peers.get(key);
    if (peer?.seen.has(ticket.n)) peer.seen.set(ticket.n, true);
    let box = this.outbox.get(key);
    if (box === undefined) {
      box = { to: ticket.from, epoch: ticket.epoch, numbers: [] };
      this.outbox.set(key, box);
    }
    box.numbers.push(ticket.n);
    if (box.numbers.length >= (this.o.batch ?? 256)) this.flushOne(key, box);
    else this.flushTimer ??= setTimeout(() => this.flush(), this.o.flushMs ?? 10);
  }

  /** Sends every waiting acknowledgement now. */
  flush(): void {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    for (const [key, box] of this.outbox) this.flushOne(key, box);
  }

  stop(): void {
    this.flush();
    clearInterval(this.sweep);
  }

  private flushOne(key: string, box: { to: string; epoch: string; numbers: number[] }): void {
    this.outbox.delete(key);
    if (box.numbers.length === 0) return;
    // Lost when no router is up: the sender resends and we acknowledge the copy.
    this.out(ackEnvelope(this.self, box.to, box.epoch, box.numbers));
  }

  private forgetBelow(peer: Peer, low: number): void {
    peer.low = low;
    const order = peer.order;
    let i = peer.head;
    // Numbers arrive nearly in order; those below low at the front go.
    while (i < order.length && order[i]! < low) {
      const n = order[i]!;
      if (peer.seen.get(n) !== false) peer.seen.delete(n);
      i++;
    }
    peer.head = i;
    if (i > 1024 && i * 2 > order.length) {
      peer.order = order.slice(i);
      peer.head = 0;
    }
  }
}

export interface Ticket {
  readonly from: string;
  readonly epoch: string;
  readonly n: number;
  /** The sender's key among the receiver's peers (`from epoch`). */
  readonly key: string;
}

/** `<ack xmlns=… from to ep>1 2 3</ack>`: numbers of `epoch` that `from` handled. */
export function ackEnvelope(from: string, to: string, epoch: string, numbers: readonly number[]): string {
  return `<ack xmlns='${ENVELOPE_NS}' from='${escapeAttr(from)}' to='${escapeAttr(to)}' ep='${escapeAttr(epoch)}'>${numbers.join(" ")}</ack>`;
}

/** The numbers of an `<ack/>` meant for `epoch` (empty when it is for an earlier run of ours). */
export function readAck(el: Element, epoch: string): number[] {
  if (el.attrs.ep !== epoch) return [];
  const out: number[] = [];
  for (const s of el.text().split(" ")) {
    const n = Number(s);
    if (s !== "" && Number.isSafeInteger(n)) out.push(n);
  }
  return out;
}
