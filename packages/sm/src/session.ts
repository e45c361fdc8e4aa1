import type { Jid } from "@jabberfarm/jid";
import type { Element } from "@jabberfarm/xml";

/** One bound resource, as the SM knows it. The socket lives on a c2s. */
export class Session {
  /** Set when the client sent its initial presence and until unavailable (RFC 6121 §4.2). */
  available = false;
  priority = 0;
  /** The last available presence broadcast, stamped with the session's full JID. */
  presence: Element | null = null;
  /** Requested the roster, so receives roster pushes (RFC 6121 §2.1.6). */
  interested = false;
  /** Full or bare JIDs this session sent directed presence to (RFC 6121 §4.6), owed an unavailable. */
  readonly directedTo = new Set<string>();

  constructor(
    /** Farm-wide session id chosen by c2s. */
    readonly sid: string,
    readonly jid: Jid,
    /** Address of the c2s holding the socket, e.g. `c2s/c2s-1`. */
    readonly c2s: string,
    /** When it began (kept when another SM takes the session over). */
    readonly startedAt: number = Date.now(),
  ) {}

  get bare(): string {
    return this.jid.bareString();
  }

  get full(): string {
    return this.jid.toString();
  }
}
