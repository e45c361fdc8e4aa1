/**
 * Writing XEP-0227 files: the accounts of the farm as prosody and ejabberd
 * import them (`prosody-migrator` with an xep0227 input, ejabberd's
 * `import_piefxis`). Credentials go out as the SCRAM keys the farm holds
 * (`<scram-credentials xmlns='urn:xmpp:pie:0#scram'>`, the element
 * prosody 0.12 writes): there is no password to write, the farm never had it.
 *
 * What the modules stored as XML text (vCard, private XML, offline
 * messages, subscription requests) is written as stored: each is a
 * standalone element with its namespace on its root.
 */
import { escapeAttr, escapeText, parseElement } from "@jabberfarm/xml";
import { NS_PIE, NS_PIE_SCRAM } from "./pie-read.js";
import { STORES, type ExportedAccount } from "./account-records.js";

export const PIE_HEADER = `<?xml version='1.0' encoding='UTF-8'?>\n<server-data xmlns='${NS_PIE}'>\n`;
export const PIE_FOOTER = "</server-data>\n";

export function hostStart(domain: string): string {
  return `  <host jid='${escapeAttr(domain)}'>\n`;
}

export const HOST_END = "  </host>\n";

function attrs(a: Record<string, string | undefined>): string {
  let s = "";
  for (const [k, v] of Object.entries(a)) if (v !== undefined) s += ` ${k}='${escapeAttr(v)}'`;
  return s;
}

/** A stored client stanza with jabber:client on its root, whatever namespace it was stored in. */
function clientStanza(text: string): string {
  const el = parseElement(text, "jabber:client");
  const attrs: Record<string, string> = { xmlns: "jabber:client" };
  for (const [k, v] of Object.entries(el.attrs)) if (k !== "xmlns") attrs[k] = v;
  el.attrs = attrs;
  return el.toString();
}

/** One `<user>` element (indented for the host it sits in). */
export function userXml(a: ExportedAccount): string {
  const local = a.user.slice(0, a.user.lastIndexOf("@"));
  const out: string[] = [`    <user${attrs({ name: local })}>`];
  for (const c of a.credentials) {
    out.push(`      <scram-credentials xmlns='${NS_PIE_SCRAM}'${attrs({ mechanism: c.mechanism })}>` +
      `<server-key>${c.serverKey}</server-key><stored-key>${c.storedKey}</stored-key>` +
      `<iter-count>${c.iterations}</iter-count><salt>${c.salt}</salt></scram-credentials>`);
  }
  if (a.roster.length > 0) {
    out.push("      <query xmlns='jabber:iq:roster'>");
    for (const i of a.roster) {
      const groups = i.groups.map((g) => `<group>${escapeText(g)}</group>`).join("");
      const head = `        <item${attrs({ jid: i.jid, name: i.name, subscription: i.subscription, ask: i.ask, approved: i.approved ? "true" : undefined })}`;
      out.push(groups === "" ? `${head}/>` : `${head}>${groups}</item>`);
    }
    out.push("      </query>");
  }
  const kv = (store: string): Array<{ key: string; value: string }> => a.kv.filter((e) => e.store === store);
  for (const e of kv(STORES.vcard)) out.push(`      ${e.value}`);
  const priv = kv(STORES.private);
  if (priv.length > 0) out.push(`      <query xmlns='jabber:iq:private'>${priv.map((e) => e.value).join("")}</query>`);
  const offline = a.archive.filter((i) => i.store === STORES.offline);
  if (offline.length > 0) {
    out.push("      <offline-messages>");
    for (const m of offline) out.push(`        ${clientStanza(m.value)}`);
    out.push("      </offline-messages>");
  }
  for (const e of kv(STORES.pending)) out.push(`      ${clientStanza(e.value)}`);
  out.push("    </user>\n");
  return out.join("\n");
}
