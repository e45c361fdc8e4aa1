/**
 * Each room's work happens in order (its stanzas, its loading and
 * unloading): a room reads then writes its state across storage round
 * trips, and occupants must see one order of messages. Rooms run side by
 * side. (The sm's user queue does the same per user.)
 */
export class SerialQueue {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key);
    const work = prev === undefined ? fn() : prev.then(fn, fn);
    const tail = work.then(undefined, () => undefined);
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return work;
  }

  /** Resolves once everything queued now has finished. */
  async idle(): Promise<void> {
    await Promise.all([...this.tails.values()]);
  }

  get size(): number {
    return this.tails.size;
  }
}
