/**
 * Streaming XMPP parser on saxes. It reads one stream: the header, then each
 * top-level element (a stanza, or a stream-level element such as
 * <stream:features/>) as one `Element`, together with its raw text so that a
 * process which only forwards a stanza can write those characters again
 * without serialising.
 *
 * It enforces RFC 6120 §11 restricted XML and the farm's limits, and reports
 * every violation as a `StreamError` with the condition the RFC asks for. The
 * first error stops the parser: later input is ignored.
 */
import { SaxesParser, type SaxesTagNS } from "saxes";
import { Element, escapeAttr } from "./element.js";
import { StreamError } from "./errors.js";
import { NS } from "./namespaces.js";
import { canonicalElement } from "./canonical.js";
import { readPlainElement } from "./plain-element.js";

export interface ParserLimits {
  /** Largest top-level element, in bytes of UTF-8 (RFC 6120 §13.12 asks for at least 10,000). */
  maxStanzaBytes: number;
  /** Deepest nesting inside a stanza (the stanza itself is depth 1). */
  maxDepth: number;
  /** Most attributes on one element, namespace declarations included. */
  maxAttributes: number;
  /** Largest stream header (everything up to and including the `<stream:stream ...>` tag). */
  maxHeaderBytes: number;
}

export const DEFAULT_LIMITS: Readonly<ParserLimits> = Object.freeze({
  maxStanzaBytes: 256 * 1024,
  maxDepth: 32,
  maxAttributes: 64,
  maxHeaderBytes: 4096,
});

export interface StreamHeader {
  /** Qualified name as written, e.g. "stream:stream". */
  name: string;
  /** Namespace URI of the root element (must be NS.STREAMS). */
  uri: string;
  /** Default namespace in force for stanzas (jabber:client, jabber:component:accept...). */
  contentNs: string;
  attrs: Record<string, string>;
}

export interface StreamParserHandlers {
  onStreamStart(header: StreamHeader): void;
  /** A complete top-level element. `raw` is its exact text as received. */
  onElement(el: Element, raw: string): void;
  onStreamEnd(): void;
  onError(err: StreamError): void;
}

export interface StreamParserOptions extends Partial<ParserLimits> {
  /**
   * Build only the top-level element with its attributes, not its children.
   * For a process that routes by `to`/`from` and forwards `raw`: it saves an
   * allocation per child node. Use `parseElement(raw)` when the tree is needed.
   */
  shallow?: boolean;
  /**
   * Build every element of a stanza in canonical form (canonical.ts): local
   * names, namespaces as `xmlns` attributes only where they change, no
   * prefixes, CDATA as plain text. Its `toString()` is then what the farm
   * forwards: whatever tricks the sender's XML played (prefixes declared on
   * the stream header, CDATA, odd quoting) do not travel past this parser.
   */
  canonical?: boolean;
  /**
   * Read plain, complete stanzas with the quick reader (plain-element.ts)
   * and give only the rest to saxes. On by default; off only to compare
   * the two in tests and benchmarks.
   */
  quick?: boolean;
}

// Larger writes are fed to saxes in slices so that a limit is noticed after at
// most this many characters, not after a whole (possibly huge) socket read.
const SLICE = 16 * 1024;

/** Thrown from inside saxes to abandon it: the stream ended, or a handler called reset(). */
const STOP = Symbol("stop");

/** XML's white space (S production): the only characters allowed between stanzas. */
function isXmlSpace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x09 || c === 0x0d;
}

/** Maps a saxes error message to the stream error condition RFC 6120 asks for. */
function conditionFor(message: string, beforeHeader: boolean): StreamError {
  const m = message.replace(/^(?:[^:\n]*:)?\d+:\d+: /, "");
  if (/doctype/i.test(m)) return new StreamError("restricted-xml", "DTDs are not allowed");
  // A well-formed reference to an entity nobody declared: the only way to
  // declare one is a DTD, which restricted XML forbids (RFC 6120 §11.1).
  if (/^undefined entity/.test(m)) return new StreamError("restricted-xml", "only the predefined entities are allowed");
  // A header without xmlns:stream (RFC 6120 §4.9.3.2 gives exactly this example).
  if (beforeHeader && /^unbound namespace prefix/.test(m)) return new StreamError("bad-namespace-prefix", m);
  return new StreamError("not-well-formed", m);
}

export class StreamParser {
  private readonly handlers: StreamParserHandlers;
  private readonly limits: ParserLimits;
  private readonly shallow: boolean;
  private readonly canonical: boolean;
  private readonly quick: boolean;
  private readonly decoder = new TextDecoder("utf-8", { fatal: true });
  /** Null while released (`release()`): an idle stream holds no saxes until data comes. */
  private sax: SaxesParser<{ xmlns: true; position: true }> | null = null;
  /** While a released parser reads its stream's header again: the header is known, no handler is told. */
  private replaying = false;
  /** The last byte fed was not ASCII: the decoder may hold part of a character. */
  private tailHigh = false;

  /** Text received but not yet handed out, starting at absolute position `base`. */
  private buf = "";
  private base = 0;
  /**
   * Absolute position where the current top-level element's text begins (its
   * `<`), or, between elements, the end of the last one.
   */
  private mark = 0;
  /**
   * Characters never given to saxes: keepalive white space skipped between
   * stanzas. Absolute position = saxes position + skipped.
   */
  private skipped = 0;
  private depth = 0;
  private stack: Element[] = [];
  private header: StreamHeader | null = null;
  private failed = false;
  private ended = false;
  /** Counts reset() calls, so that a reset from inside a handler is noticed. */
  private generation = 0;
  /** Input after the element whose handler called reset(), to feed the new stream. */
  private leftover = "";
  /** Set by handOff(): receives the unread rest of the input, and this parser stops. */
  private handoff: ((rest: string) => void) | undefined;

  constructor(handlers: StreamParserHandlers, opts: StreamParserOptions = {}) {
    this.handlers = handlers;
    this.limits = {
      maxStanzaBytes: opts.maxStanzaBytes ?? DEFAULT_LIMITS.maxStanzaBytes,
      maxDepth: opts.maxDepth ?? DEFAULT_LIMITS.maxDepth,
      maxAttributes: opts.maxAttributes ?? DEFAULT_LIMITS.maxAttributes,
      maxHeaderBytes: opts.maxHeaderBytes ?? DEFAULT_LIMITS.maxHeaderBytes,
    };
    this.shallow = opts.shallow ?? false;
    this.canonical = opts.canonical ?? false;
    this.quick = opts.quick ?? true;
    this.reset();
  }

  /** True once the stream header has been read. */
  get started(): boolean {
    return this.header !== null;
  }

  /** Between top-level elements, nothing of the next one read yet (a WebSocket message held exactly whole elements). */
  get betweenElements(): boolean {
    return !this.failed && this.idle();
  }

  get streamHeader(): StreamHeader | null {
    return this.header;
  }

  /**
   * Forget the current stream and expect a new header (after STARTTLS or SASL,
   * RFC 6120 §4.3.3). May be called from a handler: input that followed the
   * element being handled is then read as the start of the new stream.
   */
  reset(): void {
    this.generation++;
    this.sax = new SaxesParser({ xmlns: true, position: true });
    this.tailHigh = false;
    this.buf = "";
    this.base = 0;
    this.mark = 0;
    this.skipped = 0;
    this.depth = 0;
    this.stack = [];
    this.header = null;
    this.ended = false;
    this.install();
  }

  /**
   * Stop reading and give everything not yet handed out to `take` (decoded
   * text), so another reader can continue the stream: the splitter, once a
   * trusted peer is known. From inside a handler, the rest is what followed
   * the element being handled.
   */
  handOff(take: (rest: string) => void): void {
    if (this.failed || this.ended) return;
    if (this.inWrite) {
      this.handoff = take;
      this.generation++;
      return;
    }
    const rest = this.buf.slice(this.mark - this.base);
    this.ended = true;
    this.buf = "";
    take(rest);
  }

  private inWrite = false;

  /**
   * Frees saxes while the stream is idle: header read, between stanzas,
   * nothing pending, no partial character in the decoder. An idle client
   * stream otherwise keeps a parser of ~80 fields in dictionary mode, its
   * arrays and its last chunk (docs/performance.md, "Memory per idle
   * session"). The next data that is not keepalive white space starts a new
   * saxes, fed the header again (rebuilt from what was read, so the
   * namespace declarations in force are the same) without telling the
   * handlers. Answers whether it is released now.
   */
  release(): boolean {
    if (this.sax === null) return true;
    if (this.failed || this.ended || this.inWrite || this.tailHigh || !this.idle()) return false;
    this.sax = null;
    this.buf = "";
    this.base = this.mark;
    return true;
  }

  /** Whether saxes is released (for tests and metrics). */
  get released(): boolean {
    return this.sax === null;
  }

  /** A new saxes for a released parser; `spaces` keepalive characters at the start of this write are skipped. */
  private revive(spaces: number): void {
    const header = this.header!;
    let text = `<${header.name}`;
    for (const name in header.attrs) text += ` ${name}='${escapeAttr(header.attrs[name]!)}'`;
    text += ">";
    const sax = (this.sax = new SaxesParser({ xmlns: true, position: true }));
    this.install();
    this.header = null;
    this.replaying = true;
    try {
      sax.write(text);
    } finally {
      this.replaying = false;
      this.header = header;
    }
    // Absolute positions go on from where the released parser stopped.
    // (Not sax.position: between writes saxes counts its last chunk twice.)
    this.skipped = this.mark + spaces - text.length;
  }

  /** Feed bytes (or already decoded text) from the socket. */
  write(chunk: Uint8Array | string): void {
    if (this.failed || this.ended) return;
    this.inWrite = true;
    try {
      this.writeText(chunk);
    } finally {
      this.inWrite = false;
    }
  }

  private writeText(chunk: Uint8Array | string): void {
    let text: string;
    if (typeof chunk === "string") text = chunk;
    else {
      this.tailHigh = chunk.length > 0 && chunk[chunk.length - 1]! >= 0x80;
      try {
        text = this.decoder.decode(chunk, { stream: true });
      } catch {
        this.fail(new StreamError("unsupported-encoding", "the stream is not valid UTF-8"));
        return;
      }
    }
    let i = 0;
    while (i < text.length && !this.failed && !this.ended) {
      let part = i === 0 && text.length <= SLICE ? text : text.slice(i, i + SLICE);
      i += part.length;
      if (this.quick && this.idle()) {
        let read: number | typeof STOP;
        try {
          read = this.readPlain(part);
        } catch (e) {
          // A handler threw: as on saxes's path.
          this.fail(e instanceof StreamError ? e : new StreamError("internal-server-error", (e as Error).message));
          return;
        }
        if (read === STOP) {
          // A handler reset the stream or handed it off; what follows is the new stream's.
          if (this.ended || this.failed) return;
          if (this.handoff) {
            const take = this.handoff;
            this.handoff = undefined;
            const rest = this.leftover + text.slice(i);
            this.leftover = "";
            this.ended = true;
            this.buf = "";
            take(rest);
            return;
          }
          text = this.leftover + text.slice(i);
          this.leftover = "";
          i = 0;
          continue;
        }
        if (read === part.length) continue;
        part = part.slice(read);
      }
      const idle = this.idle();
      this.buf = this.buf.length === 0 ? part : this.buf + part;
      let input = part;
      if (idle) {
        // Between stanzas, with nothing pending: keepalive white space is
        // skipped here rather than piled up inside saxes, and anything else
        // than a tag is refused at once.
        let k = 0;
        while (k < part.length && isXmlSpace(part.charCodeAt(k))) k++;
        input = k === 0 ? part : part.slice(k);
        if (this.sax === null && input.length > 0) this.revive(k);
        else this.skipped += k;
        if (input.length > 0 && input.charCodeAt(0) !== 0x3c /* < */) {
          this.fail(new StreamError("bad-format", "text outside of a stanza"));
          return;
        }
      }
      try {
        if (input.length > 0) this.sax!.write(input);
      } catch (e) {
        if (e === STOP) {
          // The stream ended (nothing more is read), or a handler called
          // reset() and what followed goes to the new stream.
          if (this.ended || this.failed) return;
          if (this.handoff) {
            const take = this.handoff;
            this.handoff = undefined;
            const rest = this.leftover + text.slice(i);
            this.leftover = "";
            this.ended = true;
            this.buf = "";
            take(rest);
            return;
          }
          text = this.leftover + text.slice(i);
          this.leftover = "";
          i = 0;
          continue;
        }
        this.fail(e instanceof StreamError ? e : new StreamError("internal-server-error", (e as Error).message));
        return;
      }
      this.compact();
      this.checkPendingSize();
    }
  }

  /**
   * Between stanzas: hands out the complete plain elements at the start of
   * `part` (plain-element.ts) without saxes, which never sees them (their
   * characters count as skipped). Returns how much of `part` was used,
   * keepalive white space included, up to the first element it declines;
   * or STOP when a handler reset the stream or handed it off, with the
   * unread rest in `leftover`.
   */
  private readPlain(part: string): number | typeof STOP {
    const header = this.header!;
    const options = { contentNs: header.contentNs, canonical: this.canonical, shallow: this.shallow, limits: this.limits };
    let used = 0;
    for (;;) {
      let k = used;
      while (k < part.length && isXmlSpace(part.charCodeAt(k))) k++;
      if (k === part.length || part.charCodeAt(k) !== 0x3c /* < */) return used;
      const read = readPlainElement(part, k, options);
      if (read === undefined) return used;
      // Idle, so the buffer is empty up to `mark` and part[0] sits at `mark`.
      const start = this.mark - used;
      this.mark = this.base = start + read.end;
      this.buf = "";
      if (this.sax !== null) this.skipped += read.end - used;
      used = read.end;
      const generation = this.generation;
      this.handlers.onElement(read.el, part.slice(k, read.end));
      if (this.failed || this.ended) return STOP;
      if (this.generation !== generation) {
        this.leftover = part.slice(used);
        return STOP;
      }
    }
  }

  /** The peer closed the TCP connection; report a truncated stanza as an error. */
  end(): void {
    if (this.failed || this.ended) return;
    if (this.depth > 0 || (this.header !== null && this.base + this.buf.length > this.mark)) {
      this.fail(new StreamError("not-well-formed", "connection closed inside a stanza"));
    }
  }

  /** Absolute position (in UTF-16 units of the stream) saxes has read up to. */
  private pos(): number {
    return this.sax!.position + this.skipped;
  }

  /** Between top-level elements, with only white space received since the last one. */
  private idle(): boolean {
    return this.header !== null && this.depth === 0 && this.base + this.buf.length === this.mark;
  }

  private fail(err: StreamError): void {
    if (this.failed) return;
    this.failed = true;
    this.buf = "";
    this.stack = [];
    this.handlers.onError(err);
  }

  private checkPendingSize(): void {
    if (this.failed || this.ended) return;
    const pending = this.base + this.buf.length - this.mark;
    if (this.header === null) {
      // Before the header completes, everything counts against the header limit.
      if (pending > this.limits.maxHeaderBytes) this.fail(new StreamError("policy-violation", "stream header too large"));
    } else if (pending > this.limits.maxStanzaBytes) {
      // Characters never outnumber UTF-8 bytes, so this is already over the byte limit.
      // Between stanzas, `pending` is whatever follows the keepalives: the start
      // of a tag, or a comment or PI that will be refused once complete.
      this.fail(new StreamError("policy-violation", `stanza larger than ${this.limits.maxStanzaBytes} bytes`));
    }
  }

  /** Drop the text that has already been handed out, so memory stays bounded. */
  private compact(): void {
    if (this.failed || this.ended) return;
    if (this.depth === 0 && this.header !== null) {
      // Between top-level elements: drop the keepalive white space.
      const b = this.buf;
      let k = this.mark - this.base;
      while (k < b.length && isXmlSpace(b.charCodeAt(k))) k++;
      this.base += k;
      this.mark = this.base;
      this.buf = k === 0 ? b : b.slice(k);
      if (this.buf.length > 0 && this.buf.charCodeAt(0) !== 0x3c /* < */) {
        this.fail(new StreamError("bad-format", "text outside of a stanza"));
      }
    } else if (this.mark > this.base) {
      this.buf = this.buf.slice(this.mark - this.base);
      this.base = this.mark;
    }
  }

  private install(): void {
    const sax = this.sax!;
    sax.on("error", (e) => {
      throw conditionFor(e.message, this.header === null);
    });
    sax.on("doctype", () => {
      throw new StreamError("restricted-xml", "DTDs are not allowed");
    });
    sax.on("comment", () => {
      throw new StreamError("restricted-xml", "comments are not allowed");
    });
    sax.on("processinginstruction", () => {
      throw new StreamError("restricted-xml", "processing instructions are not allowed");
    });
    sax.on("xmldecl", (decl) => {
      if (decl.encoding !== undefined && decl.encoding.toLowerCase() !== "utf-8") {
        throw new StreamError("unsupported-encoding", "only UTF-8 is supported");
      }
      if (decl.version !== undefined && decl.version !== "1.0") {
        throw new StreamError("unsupported-version", "XML 1.0 only");
      }
    });
    // CDATA sections are legal XML and RFC 6120 §11.1 does not restrict them:
    // their content is character data like any other.
    sax.on("cdata", (text) => this.onText(text));
    sax.on("opentagstart", (tag) => {
      if (this.header === null) return;
      this.depth++;
      if (this.depth > this.limits.maxDepth) {
        throw new StreamError("policy-violation", `elements nested deeper than ${this.limits.maxDepth}`);
      }
      if (this.depth === 1) {
        // The element's text starts at its "<", which precedes its name and
        // the one or two characters (a CR LF) that ended the name.
        const at = this.buf.lastIndexOf("<", this.pos() - this.base - tag.name.length - 1);
        this.checkGap(at);
        this.mark = this.base + at;
      }
    });
    sax.on("opentag", (tag) => this.openTag(tag as SaxesTagNS));
    sax.on("text", (text) => this.onText(text));
    sax.on("closetag", (tag) => this.closeTag(tag as SaxesTagNS));
  }

  private openTag(tag: SaxesTagNS): void {
    let n = 0;
    const attrs: Record<string, string> = {};
    for (const k in tag.attributes) {
      attrs[k] = tag.attributes[k]!.value;
      n++;
    }
    if (n > this.limits.maxAttributes) {
      throw new StreamError("policy-violation", `more than ${this.limits.maxAttributes} attributes on <${tag.name}>`);
    }
    if (this.header === null) {
      this.openStream(tag, attrs);
      return;
    }
    if (this.shallow && this.depth > 1) return;
    const el = this.canonical
      ? canonicalElement(tag, this.depth === 1 ? undefined : this.stack[this.stack.length - 1]!.uri)
      : new Element(tag.name, attrs, [], tag.uri);
    if (this.depth > 1) this.stack[this.stack.length - 1]!.children.push(el);
    this.stack.push(el);
  }

  private openStream(tag: SaxesTagNS, attrs: Record<string, string>): void {
    if (tag.local !== "stream" || tag.uri !== NS.STREAMS) {
      throw new StreamError("invalid-namespace", "the root element must be <stream:stream/> in " + NS.STREAMS);
    }
    if (tag.isSelfClosing) throw new StreamError("not-well-formed", "empty stream");
    if (this.replaying) return; // a released parser reading its header again (revive)
    const end = this.pos();
    // The whole header arrived in this write; count its bytes exactly.
    if (Buffer.byteLength(this.buf.slice(0, end - this.base)) > this.limits.maxHeaderBytes) {
      throw new StreamError("policy-violation", "stream header too large");
    }
    this.header = { name: tag.name, uri: tag.uri, contentNs: tag.ns[""] ?? this.sax!.resolve("") ?? "", attrs };
    this.mark = end;
    this.notify(() => this.handlers.onStreamStart(this.header!), end);
  }

  /**
   * Between stanzas only literal white space may come before a tag starting at
   * `at` in the buffer: not a character reference to a space, nor a CDATA section.
   */
  private checkGap(at: number): void {
    if (at < 0) throw new StreamError("internal-server-error", "lost track of the input");
    for (let k = this.mark - this.base; k < at; k++) {
      if (!isXmlSpace(this.buf.charCodeAt(k))) throw new StreamError("bad-format", "text outside of a stanza");
    }
  }

  private onText(text: string): void {
    if (this.header === null) return;
    if (this.depth === 0) {
      // Between stanzas only whitespace belongs (keepalives, RFC 6120 §4.6.1).
      if (!/^[ \t\r\n]*$/.test(text)) throw new StreamError("bad-format", "text outside of a stanza");
      return;
    }
    if (this.shallow && this.depth > 1) return;
    this.stack[this.stack.length - 1]?.children.push(text);
  }

  private closeTag(tag: SaxesTagNS): void {
    if (this.header === null) return;
    if (this.depth <= 1 && !tag.isSelfClosing) {
      // On a mismatched end tag saxes pops (and reports) the open element
      // before failing; make sure it is really closed before handing it out.
      const stop = this.pos() - this.base - 1;
      const at = this.buf.lastIndexOf("</", stop);
      let e = stop;
      while (e > at && isXmlSpace(this.buf.charCodeAt(e - 1))) e--;
      if (at < 0 || this.buf.slice(at + 2, e) !== tag.name) throw new StreamError("not-well-formed", "mismatched end tag");
    }
    if (this.depth === 0) {
      // </stream:stream>: nothing after it is read.
      this.checkGap(this.buf.lastIndexOf("</", this.pos() - this.base - 1));
      this.ended = true;
      this.notify(() => this.handlers.onStreamEnd(), this.pos());
      throw STOP;
    }
    const el = !this.shallow || this.depth === 1 ? this.stack.pop() : undefined;
    this.depth--;
    if (this.depth > 0 || el === undefined) return;
    const end = this.pos();
    const raw = this.buf.slice(this.mark - this.base, end - this.base);
    this.mark = end;
    if (raw.length * 3 > this.limits.maxStanzaBytes && Buffer.byteLength(raw) > this.limits.maxStanzaBytes) {
      throw new StreamError("policy-violation", `stanza larger than ${this.limits.maxStanzaBytes} bytes`);
    }
    this.notify(() => this.handlers.onElement(el, raw), end);
  }

  /**
   * Calls a handler. If it reset the parser, stop the old saxes and keep the
   * input after `end` for the new stream.
   */
  private notify(call: () => void, end: number): void {
    const generation = this.generation;
    const buf = this.buf;
    const base = this.base;
    call();
    if (this.generation !== generation) {
      this.leftover = buf.slice(end - base);
      throw STOP;
    }
  }
}
