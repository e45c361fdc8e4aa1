import { escapeAttr, type Element } from "./element.js";
import { StreamError } from "./errors.js";
import { NS } from "./namespaces.js";
import { StreamParser, type ParserLimits } from "./parser.js";

/**
 * Parses one complete element, as a stanza inside a stream whose default
 * namespace is `contentNs`. For tests, and for the rare path where a process
 * that parsed shallowly needs the whole tree (an error reply). The same
 * restricted-XML rules and limits apply; a violation is thrown as StreamError.
 */
export function parseElement(text: string, contentNs: string = NS.COMPONENT, limits?: Partial<ParserLimits>): Element {
  let result: Element | undefined;
  let error: StreamError | undefined;
  let count = 0;
  const header = `<stream:stream xmlns='${escapeAttr(contentNs)}' xmlns:stream='${NS.STREAMS}'>`;
  const parser = new StreamParser({
    onStreamStart() {},
    onElement(el) {
      result = el;
      count++;
    },
    onStreamEnd() {},
    onError(err) {
      error ??= err;
    },
  }, { ...limits, maxHeaderBytes: Buffer.byteLength(header) });
  parser.write(header);
  parser.write(text);
  parser.end();
  if (error) throw error;
  if (count !== 1 || !result) throw new StreamError("not-well-formed", "expected exactly one complete element");
  return result;
}
