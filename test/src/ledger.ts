/**
 * The fault tests' account of every chat message: who sent it on which
 * connection and when, who received it (live, or from offline storage at the
 * next login), which came back as an error to its sender, and which copies
 * arrived twice. From that, per step: sent, accepted, delivered, stored
 * offline, bounced, duplicates and lost.
 *
 * "Accepted" is what the farm can be held to. A client cannot know whether
 * the server read a message it wrote just before its connection died, so:
 * - a message sent on a connection that is still up (or that the client
 *   closed itself) is accepted: the c2s reads a live stream in order;
 * - on a connection the server side ended (c2s killed, or drained with
 *   see-other-host), a message is accepted only if something the client sent
 *   *later on the same connection* came out the other end (delivered, stored
 *   or bounced): a stream is read in order, so the c2s read this one too.
 *   Messages after the last such one were perhaps never read ("unconfirmed")
 *   and are neither accepted nor lost. For a c2s killed with -9 this is
 *   exactly the brief's "messages sent by a client whose own c2s was killed
 *   in that instant are not counted as accepted".
 */

export interface SentMessage {
  id: string;
  step: string;
  from: string;
  /** Bare JID of the recipient. */
  to: string;
  /** The sender's connection (`user#n`). */
  conn: string;
  /** Position of this message on its connection. */
  seq: number;
  at: number;
}

export interface Receipt {
  by: string;
  how: "live" | "offline";
  at: number;
  copies: number;
}

export interface Tally {
  step: string;
  sent: number;
  accepted: number;
  /** Sent on a connection the server ended, after the last message known to be read there. */
  unconfirmed: number;
  delivered: number;
  offline: number;
  /** Answered to the sender with a stanza error (the sender knows it went nowhere). */
  bounced: number;
  bouncedConditions: Record<string, number>;
  duplicates: number;
  lost: number;
  lostIds: string[];
  /** Received by somebody other than the recipient. */
  misdelivered: number;
  /** Longest time from send to first receipt among those received live. */
  maxLatencyMs: number;
}

export class Ledger {
  readonly sent = new Map<string, SentMessage>();
  readonly received = new Map<string, Receipt>();
  readonly bounced = new Map<string, { condition: string; at: number }>();
  private readonly misdelivered = new Set<string>();
  private readonly failedSends = new Set<string>();
  private readonly seqs = new Map<string, number>();
  /** Connections the server side ended, and when. */
  private readonly endedConns = new Map<string, number>();
  /** Per connection, the highest position received or bounced so far. */
  private readonly lastSettled = new Map<string, number>();

  /** Records a message about to be written on connection `conn`; returns its record. */
  send(m: Omit<SentMessage, "seq" | "at">, at = Date.now()): SentMessage {
    if (this.sent.has(m.id)) throw new Error(`message id ${m.id} used twice`);
    const seq = (this.seqs.get(m.conn) ?? 0) + 1;
    this.seqs.set(m.conn, seq);
    const rec = { ...m, seq, at };
    this.sent.set(m.id, rec);
    return rec;
  }

  /** The write itself failed locally (socket already closed): it never reached the server. */
  sendFailed(id: string): void {
    this.failedSends.add(id);
  }

  receive(id: string, by: string, how: "live" | "offline", at = Date.now()): void {
    const s = this.sent.get(id);
    if (s === undefined) return; // not one of ours
    if (s.to !== by) this.misdelivered.add(id);
    this.settledOne(s);
    const r = this.received.get(id);
    if (r) r.copies++;
    else this.received.set(id, { by, how, at, copies: 1 });
  }

  bounce(id: string, condition: string, at = Date.now()): void {
    const s = this.sent.get(id);
    if (s === undefined || this.bounced.has(id)) return;
    this.bounced.set(id, { condition, at });
    this.settledOne(s);
  }

  /** The server ended connection `conn` (killed c2s, stream error, see-other-host). */
  connectionEnded(conn: string, at = Date.now()): void {
    if (!this.endedConns.has(conn)) this.endedConns.set(conn, at);
  }

  /** Whether the farm may be held to this message (see the file's comment). */
  accepted(s: SentMessage): boolean {
    if (this.failedSends.has(s.id)) return false;
    if (!this.endedConns.has(s.conn)) return true;
    return s.seq <= (this.lastSettled.get(s.conn) ?? 0);
  }

  /** Received or answered with an error. */
  settled(id: string): boolean {
    return this.received.has(id) || this.bounced.has(id);
  }

  /** Accepted messages of `step` that nobody has received or bounced yet. */
  outstanding(step?: string): SentMessage[] {
    const out: SentMessage[] = [];
    for (const s of this.sent.values()) {
      if ((step === undefined || s.step === step) && this.accepted(s) && !this.settled(s.id)) out.push(s);
    }
    return out;
  }

  /** Waits until every accepted message of `step` is settled, or `ms` passed; resolves with what is still missing. */
  async settle(step: string, ms: number): Promise<SentMessage[]> {
    const deadline = Date.now() + ms;
    for (;;) {
      const missing = this.outstanding(step);
      if (missing.length === 0 || Date.now() > deadline) return missing;
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  tally(step: string, filter: (s: SentMessage) => boolean = () => true): Tally {
    const t: Tally = {
      step, sent: 0, accepted: 0, unconfirmed: 0, delivered: 0, offline: 0, bounced: 0, bouncedConditions: {},
      duplicates: 0, lost: 0, lostIds: [], misdelivered: 0, maxLatencyMs: 0,
    };
    for (const s of this.sent.values()) {
      if (s.step !== step || !filter(s)) continue;
      t.sent++;
      const r = this.received.get(s.id);
      const b = this.bounced.get(s.id);
      if (r) {
        if (r.how === "live") {
          t.delivered++;
          t.maxLatencyMs = Math.max(t.maxLatencyMs, r.at - s.at);
        } else {
          t.offline++;
        }
        t.duplicates += r.copies - 1;
      }
      if (b) {
        t.bounced++;
        t.bouncedConditions[b.condition] = (t.bouncedConditions[b.condition] ?? 0) + 1;
      }
      if (this.misdelivered.has(s.id)) t.misdelivered++;
      if (this.accepted(s)) {
        t.accepted++;
        if (!r && !b) {
          t.lost++;
          t.lostIds.push(s.id);
        }
      } else if (!this.failedSends.has(s.id)) {
        t.unconfirmed++;
      }
    }
    return t;
  }

  /** Delivery times (live) of messages to `to` sent at or after `since`, in order. */
  deliveriesTo(to: string, since: number): number[] {
    const out: number[] = [];
    for (const [id, r] of this.received) {
      const s = this.sent.get(id)!;
      if (s.to === to && s.at >= since && r.how === "live") out.push(r.at);
    }
    return out.sort((a, b) => a - b);
  }

  private settledOne(s: SentMessage): void {
    if (s.seq > (this.lastSettled.get(s.conn) ?? 0)) this.lastSettled.set(s.conn, s.seq);
  }
}

/** One line for the test output: what a step counted. */
export function describeTally(t: Tally): string {
  const bounced = Object.entries(t.bouncedConditions).map(([c, n]) => `${c}=${n}`).join(",");
  return `${t.step}: sent ${t.sent}, accepted ${t.accepted}, unconfirmed ${t.unconfirmed}, delivered ${t.delivered}, ` +
    `offline ${t.offline}, bounced ${t.bounced}${bounced ? ` (${bounced})` : ""}, duplicates ${t.duplicates}, ` +
    `lost ${t.lost}${t.lost ? ` [${t.lostIds.slice(0, 10).join(" ")}]` : ""}, max latency ${t.maxLatencyMs} ms`;
}
