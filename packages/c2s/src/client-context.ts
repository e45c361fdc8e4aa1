/**
 * What a client connection needs from its c2s process (server.ts provides
 * it), and what the pieces of a connection share.
 */
import type { SecureContext } from "node:tls";
import type { Jid } from "@jabberfarm/jid";
import type { Metrics } from "@jabberfarm/metrics";
import type { ScramCredential } from "@jabberfarm/sasl";
import type { SaslOptions } from "./auth.js";
import type { AuthBans } from "./bans.js";
import type { ClientStream } from "./client-stream.js";
import type { ClientTransport } from "./client-transport.js";
import type { C2sConfig } from "./config.js";
import type { SlidingWindow } from "./limits.js";

export const NS_SESSION = "urn:ietf:params:xml:ns:xmpp-session";
export const NS_REGISTER = "jabber:iq:register";
export const NS_REGISTER_FEATURE = "http://jabber.org/features/iq-register";

/** The way to the routers. `send` is false when no router is reachable. */
export interface Outlet {
  send(text: string): boolean;
  readonly congested: boolean;
  /** The largest element the routers take (packages/component `maxElementBytes`). */
  readonly maxElementBytes: number;
  onceDrained(fn: () => void): void;
}

export interface ClientContext {
  readonly config: C2sConfig;
  /** Our domain, normalised. */
  readonly domain: string;
  /** This process's address, `c2s/INSTANCE`. */
  readonly address: string;
  readonly outlet: Outlet;
  /**
   * Sends a session's stanza to its SM, confirmed (docs/envelope.md,
   * "Confirmation"): `build` gets the attributes to put in the route's start
   * tag. Answers the route's number (0 when no router is reachable), for
   * `isConfirmed`.
   */
  routeToSm(build: (confirmAttrs: string) => string): number;
  /** Whether the SM acknowledged (handled) the route `routeToSm` numbered `n`. */
  isConfirmed(n: number): boolean;
  /**
   * The routes' flow-control window (`limits.maxUnconfirmedRoutes`): `full`
   * while that many wait for their acknowledgement (a session that routes
   * more pauses), `whenOpen()` once no more than half do.
   */
  readonly routesWindow: { readonly full: boolean; whenOpen(): Promise<void> };
  readonly storage: {
    getCredentials(user: string): Promise<ScramCredential[] | null>;
    createAccount(user: string, credentials: ScramCredential[]): Promise<boolean>;
  };
  readonly sasl: SaslOptions;
  readonly secureContext: SecureContext;
  readonly bans: AuthBans;
  readonly registrations: SlidingWindow;
  readonly metrics: Metrics | undefined;
  /**
   * The stream features the SMs' modules offer after authentication, as
   * they answered c2s (docs/envelope.md, `<features/>`): roster
   * versioning, pre-approval...
   */
  readonly smStreamFeatures: string;
  /** Where to send a new client on `via` (see-other-host, in that transport's terms), when this c2s is loaded above its share. */
  redirectTarget(via: ClientTransport): string | undefined;
  newSid(): string;
  /** Makes envelopes for `sid` reach this connection. */
  track(sid: string, client: ClientStream): void;
  untrack(sid: string, client: ClientStream): void;
  closed(client: ClientStream): void;
}

export interface BoundSession {
  sid: string;
  jid: Jid;
  full: string;
  bare: string;
  /** Bytes the route envelope adds around each stanza (confirmation attributes included), for the size check. */
  routeOverhead: number;
}
