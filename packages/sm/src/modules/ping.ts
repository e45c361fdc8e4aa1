/** XMPP Ping (XEP-0199): the server answers for itself and for the user's own account. */
import type { Element } from "@jabberfarm/xml";
import type { ModuleApi } from "../module-api.js";

const NS_PING = "urn:xmpp:ping";

export function ping(api: ModuleApi): void {
  api.addFeature(NS_PING);
  // Only `get <ping/>` is a ping; anything else falls to service-unavailable.
  const pong = ({ stanza }: { stanza: Element }): boolean => {
    if (stanza.attrs.type !== "get" || stanza.firstElement()?.local !== "ping") return false;
    api.result(stanza);
    return true;
  };
  api.on(`iq/host/${NS_PING}`, pong);
  api.on(`iq/self/${NS_PING}`, pong);
}
