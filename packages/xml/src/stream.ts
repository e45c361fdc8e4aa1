import { escapeAttr } from "./element.js";
import { NS } from "./namespaces.js";

export interface StreamHeaderOptions {
  /** Default namespace of the stream's content: jabber:client, jabber:component:accept... */
  contentNs: string;
  from?: string;
  to?: string;
  id?: string;
  version?: string;
  lang?: string;
  /** Prefix an XML declaration (RFC 6120 §11.5 recommends it). */
  declaration?: boolean;
}

/** The opening `<stream:stream ...>` tag (never self-closed). */
export function streamHeader(o: StreamHeaderOptions): string {
  let s = o.declaration === false ? "" : "<?xml version='1.0'?>";
  s += `<stream:stream xmlns='${escapeAttr(o.contentNs)}' xmlns:stream='${NS.STREAMS}'`;
  if (o.from !== undefined) s += ` from='${escapeAttr(o.from)}'`;
  if (o.to !== undefined) s += ` to='${escapeAttr(o.to)}'`;
  if (o.id !== undefined) s += ` id='${escapeAttr(o.id)}'`;
  if (o.version !== undefined) s += ` version='${escapeAttr(o.version)}'`;
  if (o.lang !== undefined) s += ` xml:lang='${escapeAttr(o.lang)}'`;
  return s + ">";
}

export function streamFooter(): string {
  return "</stream:stream>";
}
