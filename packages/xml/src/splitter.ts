/**
 * The fast path for streams between farm processes, which are trusted to
 * send well-formed XML (each process built it, or parsed it fully at the
 * farm's edge). It finds where each top-level element starts and ends and
 * reads only that element's own tag, working on bytes: text is skipped with
 * a native `indexOf('<')`, nothing is decoded except the start tag, and the
 * element's bytes are handed out as a view, to be written on unchanged.
 *
 * It checks that every end tag closes the element it should, the size
 * limit, and that nothing but white space sits between elements; it does
 * NOT check the rest of well-formedness (characters, entities, attribute
 * syntax). Never use it for a client or an
 * untrusted component: StreamParser is for those.
 */
import { Element } from "./element.js";
import { StreamError } from "./errors.js";
import { NS } from "./namespaces.js";

export interface SplitterHandlers {
  onElement(el: Element, raw: Buffer): void;
  onStreamEnd(): void;
  onError(err: StreamError): void;
}

export interface SplitterOptions {
  maxStanzaBytes?: number;
  /** The stream's default namespace, given to elements without their own xmlns. */
  contentNs?: string;
}

const LT = 0x3c;
const GT = 0x3e;
const SLASH = 0x2f;
const BANG = 0x21;
const QUESTION = 0x3f;
const DQ = 0x22;
const SQ = 0x27;

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}

const ENTITY = /&(?:(lt)|(gt)|(amp)|(quot)|(apos)|#x([0-9a-fA-F]+)|#([0-9]+));/g;

/** Replaces the predefined entities and character references in an attribute value or text. */
export function unescapeXml(s: string): string {
  if (s.indexOf("&") < 0) return s;
  return s.replace(ENTITY, (_m, lt, gt, amp, quot, apos, hex, dec) => {
    if (lt) return "<";
    if (gt) return ">";
    if (amp) return "&";
    if (quot) return '"';
    if (apos) return "'";
    return String.fromCodePoint(parseInt(hex ?? dec, hex ? 16 : 10));
  });
}

const ATTR = /([^\s=/>]+)\s*=\s*(?:"([^"]*)"|'([^']*)')/g;

/** Name and attributes of a start tag's text (`<name a='1' b="2">` or `.../>`). */
export function readStartTag(tag: string, contentNs: string): Element {
  let end = 1;
  while (end < tag.length) {
    const c = tag.charCodeAt(end);
    if (isSpace(c) || c === SLASH || c === GT) break;
    end++;
  }
  const name = tag.slice(1, end);
  const attrs: Record<string, string> = {};
  ATTR.lastIndex = end;
  for (let m = ATTR.exec(tag); m !== null; m = ATTR.exec(tag)) {
    attrs[m[1]!] = unescapeXml(m[2] ?? m[3] ?? "");
  }
  const uri = name.startsWith("stream:") ? NS.STREAMS : attrs.xmlns ?? contentNs;
  return new Element(name, attrs, [], uri);
}

export class StanzaSplitter {
  private readonly handlers: SplitterHandlers;
  private readonly max: number;
  private readonly contentNs: string;
  /** Bytes kept from earlier writes: the unfinished element (or tag) at their end. */
  private pending: Buffer | null = null;
  private depth = 0;
  private failed = false;
  private ended = false;

  constructor(handlers: SplitterHandlers, opts: SplitterOptions = {}) {
    this.handlers = handlers;
    this.max = opts.maxStanzaBytes ?? 256 * 1024;
    this.contentNs = opts.contentNs ?? "";
  }

  write(chunk: Buffer): void {
    if (this.failed || this.ended) return;
    // Rescanning the kept part is simpler than resuming mid-tag, and it is
    // short unless an element spans many reads.
    const buf = this.pending === null ? chunk : Buffer.concat([this.pending, chunk]);
    this.pending = null;
    this.depth = 0;
    const len = buf.length;
    // Start and end offsets of the names of the open elements, to check end tags.
    const names: number[] = [];
    let i = 0;
    let top = -1; // where the current top-level element starts
    let topTagEnd = -1;
    while (i < len) {
      const lt = buf.indexOf(LT, i);
      if (this.depth === 0) {
        const stop = lt < 0 ? len : lt;
        for (let k = i; k < stop; k++) {
          if (!isSpace(buf[k]!)) return this.fail(new StreamError("bad-format", "text outside of a stanza"));
        }
      }
      if (lt < 0) {
        i = len;
        break;
      }
      // Find the end of this tag, minding quoted attribute values.
      let j = lt + 1;
      let quote = 0;
      for (; j < len; j++) {
        const c = buf[j]!;
        if (quote !== 0) {
          if (c === quote) quote = 0;
        } else if (c === DQ || c === SQ) {
          quote = c;
        } else if (c === GT) {
          break;
        }
      }
      if (j >= len) {
        if (this.depth === 0) top = lt;
        break; // the tag continues in the next read
      }
      const second = buf[lt + 1];
      if (second === BANG || second === QUESTION) {
        return this.fail(new StreamError("restricted-xml", "comments, PIs, DTDs and CDATA are not expected between farm processes"));
      }
      if (second === SLASH) {
        if (this.depth === 0) {
          // </stream:stream>
          this.ended = true;
          this.handlers.onStreamEnd();
          return;
        }
        let ne = lt + 2;
        while (ne < j && !isSpace(buf[ne]!)) ne++;
        const oe = names.pop();
        const os = names.pop();
        if (os === undefined || oe === undefined || buf.compare(buf, lt + 2, ne, os, oe) !== 0) {
          return this.fail(new StreamError("not-well-formed", "mismatched end tag"));
        }
        this.depth--;
        i = j + 1;
        if (this.depth === 0) {
          if (!this.emit(buf, top, topTagEnd, i)) return;
          top = -1;
        }
        continue;
      }
      const selfClosing = buf[j - 1] === SLASH;
      if (this.depth === 0) {
        top = lt;
        topTagEnd = j + 1;
      }
      i = j + 1;
      if (selfClosing) {
        if (this.depth === 0) {
          if (!this.emit(buf, top, topTagEnd, i)) return;
          top = -1;
        }
      } else {
        let ne = lt + 1;
        while (ne < j && !isSpace(buf[ne]!) && buf[ne] !== SLASH) ne++;
        names.push(lt + 1, ne);
        this.depth++;
      }
    }
    if (top >= 0) {
      if (len - top > this.max) return this.fail(new StreamError("policy-violation", `stanza larger than ${this.max} bytes`));
      // Keep a copy of the unfinished element, not a view that pins the whole read.
      this.pending = Buffer.from(buf.subarray(top));
    }
    this.depth = 0;
  }

  /** The connection closed: an unfinished element is an error. */
  end(): void {
    if (this.failed || this.ended) return;
    if (this.pending !== null) this.fail(new StreamError("not-well-formed", "connection closed inside a stanza"));
  }

  private emit(buf: Buffer, start: number, tagEnd: number, end: number): boolean {
    if (end - start > this.max) {
      this.fail(new StreamError("policy-violation", `stanza larger than ${this.max} bytes`));
      return false;
    }
    const el = readStartTag(buf.toString("utf8", start, tagEnd), this.contentNs);
    // An element with text only (a handshake digest): keep its text.
    const close = buf.lastIndexOf(LT, end - 1);
    if (close > tagEnd && buf.indexOf(LT, tagEnd) === close) el.children.push(unescapeXml(buf.toString("utf8", tagEnd, close)));
    this.handlers.onElement(el, buf.subarray(start, end));
    return !this.failed && !this.ended;
  }

  private fail(err: StreamError): void {
    if (this.failed) return;
    this.failed = true;
    this.pending = null;
    this.handlers.onError(err);
  }
}

/**
 * The bytes at the end of `buf` that start a UTF-8 sequence not yet complete
 * (what a streaming decoder holds back), so a reader taking over a stream
 * mid-way loses nothing.
 */
export function incompleteUtf8Tail(buf: Uint8Array): Uint8Array {
  const n = buf.length;
  for (let back = 1; back <= 3 && back <= n; back++) {
    const b = buf[n - back]!;
    if ((b & 0xc0) === 0x80) continue; // a continuation byte: look further back
    const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    return need > back ? buf.subarray(n - back) : buf.subarray(n);
  }
  return buf.subarray(n);
}
