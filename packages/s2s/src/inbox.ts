/**
 * The elements of a stream being negotiated, to be awaited one at a time:
 * negotiation is a dialogue (header, features, starttls, proceed...), read
 * most clearly as sequential code. Once a stream is up its elements go to
 * `live` as they come.
 */
import type { CloseReason } from "@jabberfarm/component";
import { StreamError, type Element, type StreamHeader } from "@jabberfarm/xml";

export type Incoming = { header: StreamHeader; el?: undefined } | { el: Element; header?: undefined };

export class StreamClosed extends Error {
  constructor(readonly reason: CloseReason) {
    super(reason.error ? `stream closed: ${reason.error.condition}${reason.error.text ? ` (${reason.error.text})` : ""}` : `stream closed${reason.socketError ? `: ${reason.socketError}` : ""}`);
  }
}

export class Inbox {
  private readonly items: Incoming[] = [];
  private wake: (() => void) | undefined;
  private closed: CloseReason | undefined;
  live: ((el: Element) => void) | undefined;

  push(item: Incoming): void {
    if (this.live !== undefined && item.el !== undefined) {
      this.live(item.el);
      return;
    }
    this.items.push(item);
    this.wake?.();
  }

  close(reason: CloseReason): void {
    this.closed ??= reason;
    this.wake?.();
  }

  /** The next header or element; rejects when the stream closes or `deadline` (Date.now() ms) passes. */
  async next(deadline: number): Promise<Incoming> {
    for (;;) {
      const item = this.items.shift();
      if (item !== undefined) return item;
      if (this.closed !== undefined) throw new StreamClosed(this.closed);
      const wait = deadline - Date.now();
      if (wait <= 0) throw new StreamClosed({ error: new StreamError("connection-timeout", "no answer in time") });
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, wait);
        this.wake = () => {
          clearTimeout(timer);
          this.wake = undefined;
          resolve();
        };
      });
    }
  }

  async header(deadline: number): Promise<StreamHeader> {
    const item = await this.next(deadline);
    if (item.header === undefined) throw new StreamClosed({ error: new StreamError("invalid-xml", `expected a stream header, got <${item.el.name}/>`) });
    return item.header;
  }

  async element(deadline: number): Promise<Element> {
    const item = await this.next(deadline);
    if (item.el === undefined) throw new StreamClosed({ error: new StreamError("invalid-xml", "a second stream header") });
    return item.el;
  }
}
