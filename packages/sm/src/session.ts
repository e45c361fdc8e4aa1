import type { Jid } from "@jabberfarm/jid";
import type { Element } from "@jabberfarm/xml";

/** A JSON value: what a module may keep on a session (it travels through Redis). */
export type SessionValue = string | number | boolean | null | SessionValue[] | { [k: string]: SessionValue };

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
  /**
   * What modules keep on the session, by module name (e.g. "blocking":
   * wants block-list pushes). Written through to the shared session record
   * with the rest (`api.saveSession`), so it is there again after another
   * SM takes the user over.
   */
  readonly data = new Map<string, SessionValue>();

  constructor(
    /** Farm-wide session id chosen by c2s (a new one when the session is resumed on a c2s, XEP-0198). */
    public sid: string,
    readonly jid: Jid,
    /** Address of the c2s holding the socket, e.g. `c2s/c2s-1` (another one after a resumption on it). */
    public c2s: string,
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
