/**
 * The message archive's writes, batched (not a module: mam.ts uses it).
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
import type { AppendedItem, ArchiveQuota, ArchiveStore } from "../module-store.js";

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

interface Pending extends ArchiveAppend {
  resolve(a: AppendedItem): void;
  reject(e: unknown): void;
}

export class ArchiveWriter {
  private queue: Pending[] = [];
  private running: Promise<void> | undefined;
  private scheduled = false;
  /** Appends per user since their size was last checked. */
  private readonly sinceTrim = new Map<string, number>();
  /** Batches written (for tests and the docs' figures). */
  batches = 0;

  constructor(private readonly archive: ArchiveStore, private readonly opts: ArchiveWriterOptions, private readonly log: Logger) {}

  /** The last append queued: batches go in order, so once it settled every earlier one has. */
  private last: Promise<unknown> = Promise.resolve();

  /** Queues an append; settles once its batch is stored (or failed). */
  append(item: ArchiveAppend): Promise<AppendedItem> {
    const p = new Promise<AppendedItem>((resolve, reject) => {
      this.queue.push({ ...item, resolve, reject });
      if (this.running === undefined && !this.scheduled) {
        // After the current burst of synchronous work, so that it batches together.
        this.scheduled = true;
        setImmediate(() => {
          this.scheduled = false;
          this.running ??= this.drain().finally(() => (this.running = undefined));
        });
      }
    });
    this.last = p.catch(() => undefined);
    return p;
  }

  /** Resolves once everything queued until now is written (or failed); what comes later is not waited for. */
  async written(): Promise<void> {
    await this.last;
  }

  /** The user's archive is gone: forget its count. */
  forget(user: string): void {
    this.sinceTrim.delete(user);
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.take();
      this.batches++;
      // Users due a size check go in a write that carries the count limit; the rest in one that does not.
      const due: Pending[] = [];
      const rest: Pending[] = [];
      const dueUsers = new Set<string>();
      for (const p of batch) {
        const n = (this.sinceTrim.get(p.user) ?? this.opts.trimEvery - 1) + 1;
        this.sinceTrim.set(p.user, n);
        if (n >= this.opts.trimEvery) dueUsers.add(p.user);
      }
      for (const p of batch) (dueUsers.has(p.user) ? due : rest).push(p);
      for (const u of dueUsers) this.sinceTrim.set(u, 0);
      const itemBytes: ArchiveQuota = { maxItemBytes: this.opts.maxItemBytes };
      const trimmed: ArchiveQuota = { ...itemBytes, maxItems: this.opts.maxItems, onFull: "drop-oldest" };
      await Promise.all([this.write(due, trimmed), this.write(rest, itemBytes)]);
    }
  }

  private take(): Pending[] {
    let bytes = 0;
    let n = 0;
    while (n < this.queue.length && n < this.opts.batchMaxItems) {
      // An upper bound of its size on the link: UTF-8, then escaped into the request.
      const size = this.queue[n]!.value.length * 3;
      if (n > 0 && bytes + size > this.opts.batchMaxBytes) break;
      bytes += size;
      n++;
    }
    return this.queue.splice(0, n);
  }

  private async write(items: Pending[], quota: ArchiveQuota): Promise<void> {
    if (items.length === 0) return;
    try {
      const r = await this.archive.appendMany(items.map(({ user, id, with: w, value }) => ({ user, id, with: w, value })), quota);
      items.forEach((p, i) => p.resolve(r[i]!));
    } catch (err) {
      this.log.error({ err, items: items.length }, "archive batch failed; its messages were delivered but not archived");
      for (const p of items) p.reject(err);
    }
  }
}
