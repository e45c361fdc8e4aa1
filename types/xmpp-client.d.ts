// The few parts of @xmpp/client (which ships no types) that the tests use.
declare module "@xmpp/client" {
  import type { EventEmitter } from "node:events";

  export interface XmppElement {
    name: string;
    attrs: Record<string, string | undefined>;
    children: Array<XmppElement | string>;
    is(name: string, ns?: string): boolean;
    getChild(name: string, ns?: string): XmppElement | undefined;
    getChildText(name: string, ns?: string): string | null;
    text(): string;
    toString(): string;
  }

  export interface XmppJid {
    toString(): string;
    local: string;
    domain: string;
    resource: string;
  }

  export type Authenticate = (credentials: { username: string; password: string }, mechanism: string) => Promise<void>;

  export interface XmppClient extends EventEmitter {
    jid: XmppJid | null;
    status: string;
    start(): Promise<XmppJid>;
    stop(): Promise<void>;
    send(el: XmppElement): Promise<void>;
    iqCaller: { request(el: XmppElement, timeout?: number): Promise<XmppElement> };
    /** Answers iq requests: the handler's element becomes the result's payload. */
    iqCallee: { get(ns: string, name: string, handler: (ctx: unknown) => XmppElement | boolean): void };
    reconnect: { stop(): void };
    /** The transport's wrapper while connected; `.socket` is node's socket (tests drop it without a word). */
    socket?: { socket?: { destroy(): void } | null; end(): void } | null;
  }

  export interface ClientOptions {
    service: string;
    domain: string;
    username?: string;
    password?: string;
    resource?: string;
    credentials?: (authenticate: Authenticate, mechanisms: string[]) => Promise<void>;
  }

  export function client(options: ClientOptions): XmppClient;
  export function xml(name: string, attrs?: Record<string, string | undefined> | null, ...children: Array<XmppElement | string>): XmppElement;
}
