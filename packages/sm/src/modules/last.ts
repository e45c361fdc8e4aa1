/**
 * Last Activity (XEP-0012): for the server, how long it has been up; for a
 * user's bare JID, how long ago they logged out and the status of their
 * last unavailable presence (0 seconds while they have an available
 * resource). A full JID is the client's to answer, as routing already does.
 *
 * Only the user and those allowed to see the user's presence (a
 * subscription from the user) may ask (§5); anyone else gets forbidden.
 * The logout is stored in the module's keyed store when the user's last
 * session ends.
 */
import { xml } from "@jabberfarm/xml";
import type { InboundEvent, OutboundEvent } from "../events.js";
import type { ModuleApi } from "../module-api.js";
import type { Session } from "../session.js";

export const NS_LAST = "jabber:iq:last";
/** Session data key: the status text of the unavailable presence the session sent. */
const STATUS = "last.status";
/** Sees unavailable presence before presence.ts handles (and ends) it. */
const WATCH_PRIORITY = 10;

interface LastLogout {
  /** ISO time. */
  at: string;
  status?: string;
}

export function lastActivity(api: ModuleApi): void {
  api.addFeature(NS_LAST);
  const store = api.openStore("last");
  const startedAt = Date.now();

  const query = (seconds: number, status?: string) =>
    xml("query", { xmlns: NS_LAST, seconds: String(Math.max(0, Math.floor(seconds))) }, status ?? null);

  // The server: its uptime (this SM process's, which is what answered).
  api.on(`iq/host/${NS_LAST}`, ({ stanza }) => {
    if (stanza.attrs.type !== "get") return false;
    api.result(stanza, query((Date.now() - startedAt) / 1000));
    return true;
  });

  async function answerFor(user: string, stanza: InboundEvent["stanza"]): Promise<void> {
    if (api.sessions.available(user).length > 0) {
      api.result(stanza, query(0));
      return;
    }
    const text = await store.get(user, "");
    if (text === null) {
      api.error(stanza, "item-not-found", "no logout on record");
      return;
    }
    const last = JSON.parse(text) as LastLogout;
    api.result(stanza, query((Date.now() - Date.parse(last.at)) / 1000, last.status));
  }

  // A contact asks about the user.
  api.on(`iq/bare/${NS_LAST}`, async ({ stanza, user, from }: InboundEvent) => {
    if (stanza.attrs.type !== "get") return false;
    const asker = from.bareString();
    const item = asker === user ? undefined : await api.roster.item(user, asker);
    if (asker !== user && item?.subscription !== "from" && item?.subscription !== "both") {
      api.error(stanza, "forbidden", "only those who may see the user's presence may ask");
      return true;
    }
    await answerFor(user, stanza);
    return true;
  });

  // The user asks about themselves (no 'to', or their own bare JID).
  api.on(`iq/self/${NS_LAST}`, async ({ stanza, session }: OutboundEvent) => {
    if (stanza.attrs.type !== "get") return false;
    await answerFor(session.bare, stanza);
    return true;
  });

  // The status of the unavailable presence a session sends, for the record.
  api.on("presence/out", ({ stanza, session }: OutboundEvent) => {
    if (stanza.attrs.type === "unavailable" && stanza.attrs.to === undefined) {
      const status = stanza.getChildText("status");
      if (status !== undefined) session.data.set(STATUS, status);
      else session.data.delete(STATUS);
      api.saveSession(session);
    }
    return false;
  }, WATCH_PRIORITY);

  // The user's last session ended: that is their logout.
  api.on("session/ended", async ({ session }: { session: Session }) => {
    if (api.sessions.isOnline(session.bare)) return;
    const status = session.data.get(STATUS);
    const record: LastLogout = { at: new Date().toISOString(), ...(typeof status === "string" ? { status } : {}) };
    try {
      await store.set(session.bare, "", JSON.stringify(record));
    } catch (err) {
      // An account removed a moment ago has nothing to keep.
      api.log.debug({ err: (err as Error).message, user: session.bare }, "last activity not stored");
    }
  });
}
