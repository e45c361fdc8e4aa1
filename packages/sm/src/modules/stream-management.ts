/**
 * Stream management (XEP-0198), the SM's half (docs/stream-management.md).
 *
 * The c2s speaks the protocol with the client (`<enable/>`, `<r/>`, `<a/>`,
 * `<resume/>`); what must outlive a c2s lives here, with the session: every
 * stanza delivered to the session is numbered and kept until the client's
 * `h` covers it, and the count of the client's stanzas handled is kept too.
 * So a client whose c2s died, or was stopped, resumes on any other c2s and
 * gets every stanza it had not acknowledged, in order.
 *
 * - `sm-enable` (c2s) → `sm-enabled` with the resumption id: user, SM and an
 *   unguessable token.
 * - every `<kind>/deliver`, last of all handlers: numbered, queued, written
 *   (held, not written, while detached).
 * - every `<kind>/out`, first: the client's count.
 * - `sm-ack` (c2s, the client's `<a h/>`): the queue shrinks.
 * - `detach` (c2s: the client's connection dropped), or `session/lost` (its
 *   c2s died or restarted): the session stays, detached, for `max` seconds;
 *   stanzas to it are held, not bounced nor stored offline; contacts see it
 *   go only when that time runs out, and then its held messages go where a
 *   message to the user goes now (another resource, offline storage).
 * - `resume` (c2s, after the client authenticated): the session moves to
 *   the new c2s connection and what the client had not acknowledged is sent
 *   again.
 *
 * The state travels in `session.data` (saved to Redis on every ack, on
 * detach and while detached), so an SM that takes the user over, also of a
 * detached session, carries on.
 */
import { randomBytes, timingSafeEqual } from "node:crypto";
import { sessionEnvelope, type SessionEnvelope } from "@jabberfarm/envelope";
import { Jid } from "@jabberfarm/jid";
import { parseTrusted, NS } from "@jabberfarm/xml";
import type { DeliverEvent, OutboundEvent, StanzaKind } from "../events.js";
import type { ModuleApi } from "../module-api.js";
import type { Session, SessionValue } from "../session.js";

export const NS_SM = "urn:xmpp:sm:3";
/** Session data key. */
const DATA = "sm";
/** Last of every deliver handler: what is numbered is what is written. */
const NUMBER_PRIORITY = -1000;
/** First of every out handler: every stanza the client sent counts. */
const COUNT_PRIORITY = 100_000;
const KINDS: readonly StanzaKind[] = ["message", "presence", "iq"];
/** XEP-0198 counts are unsigned 32-bit integers that wrap. */
const MOD = 2 ** 32;
const diff = (a: number, b: number): number => (((a - b) % MOD) + MOD) % MOD;

interface SmState {
  resumable: boolean;
  previd: string;
  /** Seconds a detached session waits for its client. */
  max: number;
  /** Stanzas numbered (sent) to the client; the last one's number. */
  out: number;
  /** The client's last `h`: how many of ours it had handled. */
  acked: number;
  /** Stanzas of the client handled. */
  in: number;
  /** Sent and not yet acknowledged, oldest first: [number, text]. */
  queue: Array<[number, string]>;
  /** When the client's connection was lost (ms), while detached. */
  detachedAt?: number;
}

/** `<user>.<sm instance>.<token>`: the user routes the resumption to their SM; the token is the secret. */
function makePrevid(user: string, instance: string): string {
  return `${Buffer.from(user).toString("base64url")}.${instance}.${randomBytes(16).toString("base64url")}`;
}

function userOf(previd: string): string | undefined {
  const dot = previd.indexOf(".");
  if (dot <= 0) return undefined;
  try {
    return Buffer.from(previd.slice(0, dot), "base64url").toString("utf8");
  } catch {
    return undefined;
  }
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export function streamManagement(api: ModuleApi): void {
  const { resumeTimeoutSeconds, maxUnacked } = api.config.streamManagement;
  api.addStreamFeature(parseTrusted(`<sm xmlns='${NS_SM}'/>`));
  const states = new WeakMap<Session, SmState>();
  const timers = new Map<Session, NodeJS.Timeout>();

  const stateOf = (s: Session): SmState | undefined => {
    let st = states.get(s);
    if (st === undefined) {
      // Taken over from another SM: the state came with the session's data.
      const saved = s.data.get(DATA) as SmState | undefined;
      if (saved !== undefined) {
        st = { ...saved, queue: saved.queue.map(([n, t]) => [n, t] as [number, string]) };
        states.set(s, st);
      }
    }
    return st;
  };

  const save = (s: Session, st: SmState): void => {
    s.data.set(DATA, st as unknown as SessionValue);
    api.saveSession(s);
  };

  const reply = (s: Session, e: SessionEnvelope, type: SessionEnvelope["type"], extra: Partial<SessionEnvelope> = {}): void => {
    api.toRouter(sessionEnvelope({ type, id: e.id, from: api.address, to: e.from, sid: s.sid, ...extra }));
  };

  // ---- enabling, counting, numbering -------------------------------------------------

  api.onSessionControl("sm-enable", (e, s) => {
    if (s === undefined) return;
    if (stateOf(s) !== undefined) {
      api.toRouter(sessionEnvelope({ type: "error", id: e.id, from: api.address, to: e.from, sid: e.sid, condition: "unexpected-request", reason: "stream management is enabled already" }));
      return;
    }
    const resumable = e.resume === "true" || e.resume === "1";
    const asked = Number(e.max);
    const max = Number.isInteger(asked) && asked > 0 ? Math.min(asked, resumeTimeoutSeconds) : resumeTimeoutSeconds;
    const st: SmState = { resumable, previd: makePrevid(s.bare, api.instance), max, out: 0, acked: 0, in: 0, queue: [] };
    states.set(s, st);
    save(s, st);
    // In order with the routes to the session: what was delivered before
    // this answer is not counted, everything after it is.
    reply(s, e, "sm-enabled", resumable ? { previd: st.previd, max: String(max), resume: "true" } : {});
  });

  const count = ({ session }: OutboundEvent): boolean => {
    const st = stateOf(session);
    if (st !== undefined) st.in = (st.in + 1) % MOD;
    return false;
  };

  const number = ({ session, raw }: DeliverEvent): boolean => {
    const st = stateOf(session);
    if (st === undefined) return false;
    st.out = (st.out + 1) % MOD;
    st.queue.push([st.out, raw]);
    if (st.detachedAt !== undefined) {
      // Held for the client to resume; on record, so a takeover keeps it too.
      save(session, st);
      return true;
    }
    if (st.queue.length > maxUnacked) {
      api.log.warn({ sid: session.sid, unacked: st.queue.length }, "client does not acknowledge what it gets; ending its session");
      void api.kick(session, "policy-violation", `more than ${maxUnacked} stanzas unacknowledged`);
      return true;
    }
    api.write(session, raw);
    return true;
  };

  for (const kind of KINDS) {
    api.on(`${kind}/out`, count, COUNT_PRIORITY);
    api.on(`${kind}/deliver`, number, NUMBER_PRIORITY);
  }

  api.onSessionControl("sm-ack", (e, s) => {
    if (s === undefined) return;
    const st = stateOf(s);
    const h = Number(e.h);
    if (st === undefined || !Number.isInteger(h) || h < 0 || h >= MOD) return;
    acknowledge(st, h);
    save(s, st);
  });

  /** The client handled everything up to `h`: those leave the queue. */
  function acknowledge(st: SmState, h: number): void {
    if (diff(h, st.acked) > diff(st.out, st.acked)) {
      // More than we know of sent: this SM took the session over after the
      // one that numbered them died. The client has them; count on from its h.
      st.out = h;
      st.queue = [];
    } else {
      let drop = diff(h, st.acked);
      while (drop-- > 0 && st.queue.length > 0) st.queue.shift();
    }
    st.acked = h;
  }

  // ---- losing and keeping ------------------------------------------------------------

  function detach(s: Session, st: SmState, why: string): void {
    if (st.detachedAt === undefined) st.detachedAt = Date.now();
    save(s, st);
    api.log.info({ sid: s.sid, jid: s.full, why, maxSeconds: st.max, held: st.queue.length }, "session detached; waiting for its client to resume");
    schedule(s, st);
  }

  function schedule(s: Session, st: SmState): void {
    clearTimeout(timers.get(s));
    const left = Math.max(0, st.max * 1000 - (Date.now() - (st.detachedAt ?? Date.now())));
    const t = setTimeout(() => {
      timers.delete(s);
      void api.serial(s.bare, () => expire(s)).catch((err: unknown) => api.log.error({ err, sid: s.sid }, "ending a detached session failed"));
    }, left);
    t.unref();
    timers.set(s, t);
  }

  /** No resumption in time: the session ends, and what it held goes where a message to the user goes now. */
  async function expire(s: Session): Promise<void> {
    const st = stateOf(s);
    if (st?.detachedAt === undefined || api.sessions.get(s.sid) !== s) return;
    const held = st.queue;
    st.queue = [];
    await api.endSession(s, "not resumed in time");
    let moved = 0;
    for (const [, text] of held) {
      if (!text.startsWith("<message")) continue;
      const el = parseTrusted(text, NS.CLIENT);
      const type = el.attrs.type;
      // Copies the server made for the user (carbons, archive results) are not messages to keep.
      if (type === "error" || type === "groupchat" || Jid.tryParse(el.attrs.from ?? "")?.bareString() === s.bare) continue;
      el.attrs.to = s.bare;
      api.send(el);
      moved++;
    }
    api.log.info({ sid: s.sid, jid: s.full, moved }, "detached session expired; its held messages moved on");
  }

  api.onSessionControl("detach", (e, s) => {
    if (s === undefined) return;
    const st = stateOf(s);
    if (st?.resumable) detach(s, st, e.reason ?? "the client's connection was lost");
    else void api.endSession(s, e.reason ?? "connection lost");
  });

  api.on("session/lost", ({ session, why }) => {
    const st = stateOf(session);
    if (!st?.resumable) return false;
    detach(session, st, why);
    return true;
  });

  api.on("session/adopted", ({ session }) => {
    const st = stateOf(session);
    if (st?.detachedAt !== undefined) schedule(session, st);
  });

  api.on("session/ended", ({ session }) => {
    clearTimeout(timers.get(session));
    timers.delete(session);
  });

  // ---- resuming --------------------------------------------------------------------

  api.onSessionControl("resume", async (e) => {
    const fail = (condition: string, extra: Partial<SessionEnvelope> = {}): void => {
      api.toRouter(sessionEnvelope({ type: "error", id: e.id, from: api.address, to: e.from, sid: e.sid, condition, ...extra }));
    };
    const previd = e.previd ?? "";
    const user = userOf(previd);
    // Only the account that authenticated on the new stream may resume its own session.
    if (user === undefined || user !== e.to) return fail("item-not-found");
    const session = api.sessions.of(user).find((s) => stateOf(s)?.previd !== undefined && sameSecret(stateOf(s)!.previd, previd));
    const st = session === undefined ? undefined : stateOf(session);
    if (session === undefined || st === undefined || !st.resumable) return fail("item-not-found");
    const h = Number(e.h);
    if (!Number.isInteger(h) || h < 0 || h >= MOD) return fail("bad-request");
    if (diff(h, st.acked) > diff(st.out, st.acked)) return fail("handled-count-too-high", { h: String(st.out) });
    if (st.detachedAt === undefined) {
      // Still attached where the client was (its old connection not yet
      // seen to drop): that stream ends, the session moves on.
      api.toRouter(sessionEnvelope({ type: "kick", from: api.address, to: session.c2s, sid: session.sid, condition: "conflict", reason: "the session was resumed on another stream" }));
    }
    clearTimeout(timers.get(session));
    timers.delete(session);
    acknowledge(st, h);
    delete st.detachedAt;
    api.rebind(session, e.sid, e.from);
    save(session, st);
    api.toRouter(sessionEnvelope({ type: "resumed", id: e.id, from: api.address, to: e.from, sid: e.sid, jid: session.full, h: String(st.in), previd }));
    // What the client had not acknowledged, again, in order (numbers unchanged).
    for (const [, text] of st.queue) api.write(session, text);
    api.log.info({ sid: session.sid, jid: session.full, resent: st.queue.length }, "session resumed");
    await api.sessionResumed(session);
  });
}
