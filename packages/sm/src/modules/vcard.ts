/**
 * vcard-temp (XEP-0054): each user keeps one vCard; anyone may read it, only
 * the user may replace it. The element is stored as XML text, under the key
 * "" of the module's keyed store "vcard", and returned as stored; its size
 * is bounded by `vcard.maxBytes`.
 */
import { xml, type Element } from "@jabberfarm/xml";
import type { ModuleApi } from "../module-api.js";
import { storableXml, storedElement } from "./stanza-text.js";

const NS_VCARD = "vcard-temp";
/** The one key of a user's vCard in the store. */
const CARD = "";

function vcardOf(stanza: Element): Element | undefined {
  const v = stanza.firstElement();
  return v !== undefined && v.local === "vCard" ? v : undefined;
}

export function vcard(api: ModuleApi): void {
  api.addFeature(NS_VCARD);
  const maxBytes = api.config.vcard.maxBytes;
  const cards = api.openStore("vcard", { maxValueBytes: maxBytes });

  const answer = async (stanza: Element, user: string): Promise<void> => {
    const stored = await cards.get(user, CARD);
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
    const stored = await cards.set(session.bare, CARD, text);
    if (stored.ok) api.result(stanza);
    else api.error(stanza, "not-acceptable", `the vCard is larger than ${maxBytes} bytes`);
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
