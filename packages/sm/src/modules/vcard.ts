/**
 * vcard-temp (XEP-0054): each user keeps one vCard; anyone may read it, only
 * the user may replace it. The element is stored as XML text and returned as
 * stored.
 */
import { xml, type Element } from "@jabberfarm/xml";
import type { ModuleApi } from "../module-api.js";
import { storableXml, storedElement } from "./shared.js";

const NS_VCARD = "vcard-temp";
/** Enough for a full card with a small avatar; bigger ones belong in XEP-0084. */
export const MAX_VCARD_BYTES = 64 * 1024;

function vcardOf(stanza: Element): Element | undefined {
  const v = stanza.firstElement();
  return v !== undefined && v.local === "vCard" ? v : undefined;
}

export function vcard(api: ModuleApi): void {
  api.addFeature(NS_VCARD);

  const answer = async (stanza: Element, user: string): Promise<void> => {
    const stored = await api.storage.getVcard(user);
    api.result(stanza, stored === null ? xml("vCard", { xmlns: NS_VCARD }) : storedElement(stored));
  };

  api.on(`iq/self/${NS_VCARD}`, async ({ stanza, session }) => {
    const card = vcardOf(stanza);
    if (!card) {
      api.error(stanza, "bad-request", "expected <vCard xmlns='vcard-temp'/>");
      return true;
    }
    if (stanza.attrs.type === "get") {
      await answer(stanza, session.bare);
      return true;
    }
    const text = storableXml(card);
    if (text === null) {
      api.error(stanza, "not-acceptable", "the vCard does not stand on its own as XML");
      return true;
    }
    if (Buffer.byteLength(text) > MAX_VCARD_BYTES) {
      api.error(stanza, "not-acceptable", `the vCard is larger than ${MAX_VCARD_BYTES} bytes`);
      return true;
    }
    await api.storage.setVcard(session.bare, text);
    api.result(stanza);
    return true;
  });

  api.on(`iq/bare/${NS_VCARD}`, async ({ stanza, user }) => {
    if (!vcardOf(stanza)) {
      api.error(stanza, "bad-request", "expected <vCard xmlns='vcard-temp'/>");
      return true;
    }
    if (stanza.attrs.type === "set") api.error(stanza, "forbidden", "only its owner may change a vCard");
    else await answer(stanza, user);
    return true;
  });
}
