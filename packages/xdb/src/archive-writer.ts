/**
 * An archive's writes, batched (the sm's message archive, mam.ts, and the
 * muc's room history use it).
 * Every archived message is an append; doing each as its own storage round
 * trip, awaited before the next, made the messages scenario fall from about
 * 24k to 480 messages a second. Here appends queue, and one batch at a time
 * goes to storage as a single `archive.appendMany` (one round trip, one
 * transaction): while a batch is on its way the next one fills, so the
 * batch size follows the load and the message path never waits for it.
 *
 * One batch at a time keeps each user's items in the order they were
 * appended (the archive's order is its seq). Appends are idempotent by id,
 * so a batch redone after an SM died stores nothing twice.
 *
 * Per-user size limits cost a count of the user's archive, so they ride on
 * a user's append only every `trimEvery` appends (their archive may
 * overshoot by that many); the item size limit rides on every append.
 */
import type { Logger } from "pino";
import type { ArchiveQuota, ArchiveStore } from "./stores.js";

export interface ArchiveAppend {
  user: string;
  id: string;
  with: string;
  value: string;
}

export interface ArchiveWriterOptions {
  batchMaxItems: number;
  batchMaxBytes: number;
  maxItems: number;
  maxItemBytes: number;
  trimEvery: number;
}

/** How many batches' worth may wait while one is written. */
const MAX_QUEUED_BATCHES = 100;

/** The appends waiting for the next batch, and the promise that batch settles. */
interface Batch {
  items: ArchiveAppend[];
  done: Promise<void>;
  settle(): void;
}

function newBatch(): Batch {
  let settle!: () => void;
  const done = new Promise<void>((r) => (settle = r));
  return { items: [], done, settle };
}

export class ArchiveWriter {
  /** Filling while the previous one is written; taken whole (or in parts of the batch limits) when that one is done. */
  private next: Batch = newBatch();
  /** The batch being written. */
  private current: Batch | undefined;
  private running: Promise<void> | undefined;
  private scheduled = false;
  /** Appends per user since their size was last checked. */
  private readonly sinceTrim = new Map<string, number>();
  /** Batches written (for tests and the docs' figures). */
  batches = 0;
  /** Appends refused because too many were queued. */
  dropped = 0;

  constructor(private readonly archive: ArchiveStore, private readonly opts: ArchiveWriterOptions, private readonly log: Logger) {}

  /**
   * Queues an append. The promise (one for everything in its batch: no
   * promise per message) resolves once the batch was written, or failed:
   * failures and refusals are logged here, and the message was delivered
   * either way.
   */
  append(item: ArchiveAppend): Promise<void> {
    if (this.next.items.length >= this.opts.batchMaxItems * MAX_QUEUED_BATCHES) {
      // Storage is not keeping up (xdb down, each batch timing out): the
      // messages still go through, but the queue must not grow without bound.
      if (this.dropped++ % 1000 === 0) this.log.warn({ dropped: this.dropped }, "archive writes queued beyond the limit: messages delivered but not archived");
      return this.next.done;
    }
    this.next.items.push(item);
    this.kick();
    return this.next.done;
  }

  /** Starts writing, unless it is under way (its loop takes what is queued meanwhile). */
  private kick(): void {
    if (this.running !== undefined || this.scheduled) return;
    // After the current burst of synchronous work, so that it batches together.
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.running = this.drain().finally(() => {
        this.running = undefined;
        // Queued after the loop's last look, before this: not left behind.
        if (this.next.items.length > 0) this.kick();
      });
    });
  }

  /** Resolves once everything queued until now is written (or failed); what comes later is not waited for. */
  written(): Promise<void> {
    if (this.next.items.length > 0) return this.next.done;
    return this.current?.done ?? Promise.resolve();
  }

  /** The user's archive is gone: forget its count. */
  forget(user: string): void {
    this.sinceTrim.delete(user);
  }

  private async drain(): Promise<void> {
    while (this.next.items.length > 0) {
      const batch = (this.current = this.next);
      this.next = newBatch();
      // More than one write's worth: in parts, one after the other (each user's order kept).
      for (let from = 0; from < batch.items.length;) {
        const n = this.partSize(batch.items, from);
        await this.writePart(batch.items.slice(from, from + n));
        from += n;
      }
      batch.settle();
      this.current = undefined;
    }
  }

  private partSize(items: readonly ArchiveAppend[], from: number): number {
    let bytes = 0;
    let n = 0;
    while (from + n < items.length && n < this.opts.batchMaxItems) {
      // An upper bound of its size on the link: UTF-8, then escaped into the request.
      const size = items[from + n]!.value.length * 3;
      if (n > 0 && bytes + size > this.opts.batchMaxBytes) break;
      bytes += size;
      n++;
    }
    return n;
  }

  private async writePart(part: ArchiveAppend[]): Promise<void> {
    this.batches++;
    // Users due a size check go in a write that carries the count limit; the rest in one that does not.
    const dueUsers = new Set<string>();
    for (const p of part) {
      const n = (this.sinceTrim.get(p.user) ?? this.opts.trimEvery - 1) + 1;
      this.sinceTrim.set(p.user, n);
      if (n >= this.opts.trimEvery) dueUsers.add(p.user);
    }
    for (const u of dueUsers) this.sinceTrim.set(u, 0);
    const due = dueUsers.size === 0 ? [] : part.filter((p) => dueUsers.has(p.user));
    const rest = dueUsers.size === 0 ? part : part.filter((p) => !dueUsers.has(p.user));
    const itemBytes: ArchiveQuota = { maxItemBytes: this.opts.maxItemBytes };
    const trimmed: ArchiveQuota = { ...itemBytes, maxItems: this.opts.maxItems, onFull: "drop-oldest" };
    await Promise.all([this.write(due, trimmed), this.write(rest, itemBytes)]);
  }

  private async write(items: ArchiveAppend[], quota: ArchiveQuota): Promise<void> {
    if (items.length === 0) return;
    // Once more after a failure: every item carries its id, so a write that
    // did happen before its answer was lost stores nothing twice.
    for (let attempt = 1; ; attempt++) {
      try {
        const r = await this.archive.appendMany(items, quota);
        r.forEach((a, i) => {
          if ("refused" in a) this.log.info({ user: items[i]!.user, limit: a.refused }, "message not archived: over the archive's limit");
        });
        return;
      } catch (err) {
        if (attempt < 2) continue;
        this.log.error({ err, items: items.length }, "archive batch failed twice; its messages were delivered but not archived");
        return;
      }
    }
  }
}
