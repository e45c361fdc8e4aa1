/**
 * The operator's queries (docs/envelope.md, "Operator queries"): this SM's
 * status, a user's sessions, and ending one session (`jabberfarm status`,
 * `sessions`, `kick`). Only the farm's trusted components can reach it: the
 * routers refuse envelopes from any other.
 */
import { Jid } from "@jabberfarm/jid";
import { AdminFailure, answerAdmin, processFacts, type SessionInfo } from "@jabberfarm/envelope";
import type { Session } from "../session.js";
import type { ModuleApi } from "../module-api.js";

/** The stream error a kicked client gets (RFC 6120 §4.9.3.14). */
const KICK_CONDITION = "policy-violation";
const KICK_TEXT = "kicked by the operator";

export function admin(api: ModuleApi): void {
  const info = (s: Session): SessionInfo => ({
    jid: s.full, sid: s.sid, c2s: s.c2s, sm: api.address, available: s.available, priority: s.priority, since: new Date(s.startedAt).toISOString(),
  });
  const send = (text: string): void => api.toRouter(text);

  api.onEnvelope("admin", (el) => void answerAdmin(el, api.address, {
    status: () => ({
      process: "sm", address: api.address, instance: api.instance, ...processFacts(),
      domain: api.domain, sessions: api.sessions.size, users: api.sessions.userCount,
    }),
    // In the user's queue, so the answer reflects every session start and end before it.
    sessions: ({ user }) => {
      const bare = Jid.parse(user).bareString();
      return api.serial(bare, async () => ({ sessions: api.sessions.of(bare).map(info) }));
    },
    kick: ({ jid }) => {
      const full = Jid.parse(jid);
      const user = full.bareString();
      return api.serial(user, async () => {
        const session = api.sessions.byFullJid(user, full.resource);
        if (!session) throw new AdminFailure("item-not-found", `no session ${full.toString()} on ${api.address}`);
        api.log.info({ sid: session.sid, jid: session.full }, "session kicked by the operator");
        // As for any end: contacts and the user's other resources get unavailable presence.
        await api.kick(session, KICK_CONDITION, KICK_TEXT);
        return { kicked: info(session) };
      });
    },
  }, send));
}
