/**
 * One user's work happens in order: their stanzas, session starts and ends,
 * takeover (RFC 6120 §10.1 wants stanzas between two entities delivered in
 * order, and a module reading then writing a user's roster must not race
 * another stanza of the same user).
 *
 * Work that finishes synchronously while nothing else is queued for the
 * user runs at once and leaves nothing behind: no promise, no map entry.
 * Only work that waits (storage) makes later work for the same user queue.
 */
import { isPromise } from "./events.js";

export class UserQueue {
  private readonly tails = new Map<string, Promise<unknown>>();

  /**
   * Runs `fn` after every earlier piece of work for `user`. Its answer comes
   * back as it is (a value when it ran at once and synchronously); a
   * synchronous throw is thrown here.
   */
  run<T>(user: string, fn: () => T | Promise<T>): T | Promise<T> {
    const prev = this.tails.get(user);
    if (prev === undefined) {
      const r = fn();
      if (isPromise(r)) this.track(user, r);
      return r;
    }
    const run = prev.then(fn, fn);
    this.track(user, run);
    return run;
  }

  /** Whether work for `user` is queued or running (waiting on something) now. */
  isBusy(user: string): boolean {
    return this.tails.has(user);
  }

  /** `run`, always as a promise (the module API's `serial`). */
  serial<T>(user: string, fn: () => T | Promise<T>): Promise<T> {
    try {
      return Promise.resolve(this.run(user, fn));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Resolves once everything queued now has finished (or failed). */
  async idle(): Promise<void> {
    await Promise.all([...this.tails.values()]);
  }

  private track(user: string, work: Promise<unknown>): void {
    const tail = work.then(undefined, () => undefined);
    this.tails.set(user, tail);
    void tail.then(() => {
      if (this.tails.get(user) === tail) this.tails.delete(user);
    });
  }
}
