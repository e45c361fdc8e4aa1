/**
 * Helpers for the router's tests: a router on a free loopback port, and a
 * bare socket that speaks just enough of the component protocol by hand to
 * test what a well-behaved library would never send.
 */
import { connect, type Socket } from "node:net";
import { pino } from "pino";
import { handshakeDigest } from "@jabberfarm/component";
import { Router } from "./router.js";
import type { RouterConfigInput } from "./config.js";

export const SECRETS = {
  "a.test": "secret-a-123", "b.test": "secret-b-123", "sm": "secret-sm-123", "c2s": "secret-c2s-123", "ext.test": "secret-ext-1",
};

export function testRouterConfig(over: Partial<RouterConfigInput> = {}): RouterConfigInput {
  return {
    host: "127.0.0.1",
    port: 0,
    domains: ["local.test"],
    components: {
      "a.test": { secret: SECRETS["a.test"], trusted: true },
      "b.test": { secret: SECRETS["b.test"], trusted: true },
      "sm": { secret: SECRETS.sm, trusted: true },
      "c2s": { secret: SECRETS.c2s, trusted: true },
      "ext.test": { secret: SECRETS["ext.test"] },
    },
    handshakeTimeoutMs: 2000,
    ...over,
  };
}

export async function startRouter(over: Partial<RouterConfigInput> = {}): Promise<{ router: Router; port: number }> {
  const router = new Router(testRouterConfig(over), { logger: pino({ level: "silent" }) });
  const addr = await router.start();
  return { router, port: addr.port };
}

/** A socket with a text buffer and a way to wait for what the peer writes. */
export class RawPeer {
  readonly socket: Socket;
  text = "";
  closed = false;
  private waiters: Array<() => void> = [];

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.setEncoding("utf8");
    socket.on("data", (d: string) => {
      this.text += d;
      this.wake();
    });
    socket.on("close", () => {
      this.closed = true;
      this.wake();
    });
    socket.on("error", () => {});
  }

  static connect(port: number): Promise<RawPeer> {
    return new Promise((resolve, reject) => {
      const s = connect({ host: "127.0.0.1", port }, () => resolve(new RawPeer(s)));
      s.once("error", reject);
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  write(s: string): void {
    this.socket.write(s);
  }

  /** Resolves with the whole text once `pred` holds, rejects after `ms`. */
  async until(pred: (text: string) => boolean, ms = 3000): Promise<string> {
    const deadline = Date.now() + ms;
    while (!pred(this.text)) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out; received so far: ${JSON.stringify(this.text.slice(-500))}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this.text;
  }

  async waitClosed(ms = 3000): Promise<void> {
    await this.until(() => this.closed, ms);
  }

  /** Opens a component stream as `name` and completes the handshake with `secret`. */
  async handshake(name: string, secret: string): Promise<string> {
    this.write(`<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='${name}'>`);
    const text = await this.until((t) => /<stream:stream [^>]*id='[^']+'/.test(t));
    const id = /id='([^']+)'/.exec(text)![1]!;
    this.write(`<handshake>${handshakeDigest(id, secret)}</handshake>`);
    return id;
  }

  close(): void {
    this.socket.destroy();
  }
}

export function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `pred` every 10 ms; rejects with `what` once `ms` have passed without it holding. */
export async function eventually(pred: () => boolean, what: string, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await delay(10);
  }
}
