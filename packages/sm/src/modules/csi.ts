/**
 * Client State Indication (XEP-0352): a client that says it is inactive (a
 * phone in a pocket) is spared what can wait. While inactive, presence
 * updates and chat states are held, the latest of each (per sender); a
 * message with a body, an iq or anything else that matters goes out at
 * once, after what was held (so the order the client sees stays the order
 * things happened). `active` sends what was held.
 *
 * The c2s passes the client's `<active/>`/`<inactive/>` on as a `csi`
 * session envelope; state and held stanzas are session data, so another SM
 * that takes the user over keeps them.
 */
import type { DeliverEvent, StanzaKind } from "../events.js";
import type { ModuleApi } from "../module-api.js";
import type { Session, SessionValue } from "../session.js";
import { parseTrusted } from "@jabberfarm/xml";

export const NS_CSI = "urn:xmpp:csi:0";
const NS_CHATSTATES = "http://jabber.org/protocol/chatstates";
const DATA = "csi";
/** Before stream management numbers a stanza: what is held is not sent yet. */
const CSI_PRIORITY = 100;
const KINDS: readonly StanzaKind[] = ["message", "presence", "iq"];

interface CsiState {
  inactive: boolean;
  /** Held stanzas by what they replace (presence of one sender, chat state of one conversation), oldest first. */
  held: Array<[string, string]>;
}

/** A message that only says someone is typing (no body, only chat state notifications and hints). */
function onlyChatState(ev: DeliverEvent): boolean {
  const m = ev.stanza;
  if (m.attrs.type === "error" || m.attrs.type === "groupchat") return false;
  let state = false;
  for (const c of m.getChildren()) {
    if (c.ns === NS_CHATSTATES) state = true;
    else if (c.local !== "thread" && c.ns !== "urn:xmpp:hints" && c.ns !== "urn:xmpp:sid:0") return false;
  }
  return state;
}

export function clientStateIndication(api: ModuleApi): void {
  api.addStreamFeature(parseTrusted(`<csi xmlns='${NS_CSI}'/>`));
  /** Sessions whose held stanzas are being sent now: they pass. */
  const flushing = new WeakSet<Session>();

  const stateOf = (s: Session): CsiState | undefined => s.data.get(DATA) as CsiState | undefined;
  const save = (s: Session, st: CsiState): void => {
    s.data.set(DATA, st as unknown as SessionValue);
    api.saveSession(s);
  };

  /** Sends what was held, in the order it came. */
  function flush(s: Session, st: CsiState): void {
    if (st.held.length === 0) return;
    const held = st.held;
    st.held = [];
    save(s, st);
    flushing.add(s);
    try {
      for (const [, text] of held) api.deliver(s, text);
    } finally {
      flushing.delete(s);
    }
  }

  api.onSessionControl("csi", (e, s) => {
    if (s === undefined || (e.state !== "active" && e.state !== "inactive")) return;
    const st = stateOf(s) ?? { inactive: false, held: [] };
    st.inactive = e.state === "inactive";
    save(s, st);
    if (!st.inactive) flush(s, st);
  });

  const hold = (ev: DeliverEvent): boolean => {
    const s = ev.session;
    const st = stateOf(s);
    if (st === undefined || !st.inactive || flushing.has(s)) return false;
    let key: string | undefined;
    if (ev.kind === "presence") {
      const type = ev.stanza.attrs.type;
      // Availability may wait; a subscription request or an error may not.
      if (type === undefined || type === "unavailable") key = `p ${ev.stanza.attrs.from ?? ""}`;
    } else if (ev.kind === "message" && onlyChatState(ev)) {
      key = `c ${(ev.stanza.attrs.from ?? "").split("/")[0]}`;
    }
    if (key === undefined) {
      // It matters: what was held goes first, then this one.
      flush(s, st);
      return false;
    }
    const i = st.held.findIndex(([k]) => k === key);
    if (i >= 0) st.held.splice(i, 1);
    st.held.push([key, ev.raw]);
    save(s, st);
    return true;
  };

  for (const kind of KINDS) api.on(`${kind}/deliver`, hold, CSI_PRIORITY);
}
