// Minimal XMPP stream splitter for the load generator: finds the stream
// header, each top-level element (as its raw text) and the end of the
// stream, without building a tree. Good enough for what servers send to a
// client; not a validating parser (no DTDs, entity expansion or namespaces).
//
// Input is text (decoded by the caller with a StringDecoder, so multi-byte
// characters split across reads are safe). Elements are handed over as
//   { name, head, raw }   name: "message", "stream:features", ...
//                         head: the opening tag text, for attributes
//                         raw:  the whole element text

const GT = 62; // >
const SLASH = 47; // /
const QMARK = 63; // ?
const BANG = 33; // !
const DQ = 34; // "
const SQ = 39; // '

/** Index of the '>' closing the tag that starts before `from`, skipping quoted values; -1 if not yet there. */
function tagEnd(s, from) {
  let quote = 0;
  for (let j = from, n = s.length; j < n; j++) {
    const c = s.charCodeAt(j);
    if (quote !== 0) {
      if (c === quote) quote = 0;
    } else if (c === GT) {
      return j;
    } else if (c === DQ || c === SQ) {
      quote = c;
    }
  }
  return -1;
}

export class StreamSplitter {
  /**
   * @param {{ header(head: string): void, element(el: {name: string, head: string, raw: string}): void, end(): void }} on
   */
  constructor(on) {
    this.on = on;
    this.maxBuffered = 8 * 1024 * 1024;
    this.reset();
  }

  /** Forget everything: the next input starts a new stream (after STARTTLS or SASL success). */
  reset() {
    this.buf = "";
    this.i = 0; // next index to scan
    this.depth = 0; // 0 before the header, 1 inside the stream, >1 inside an element
    this.elStart = 0;
    this.elHead = "";
    this.elName = "";
    this.generation = (this.generation ?? 0) + 1;
  }

  /** Feed decoded text. Throws on an element larger than maxBuffered. */
  push(text) {
    if (text.length === 0) return;
    const gen = this.generation;
    let b = this.buf.length === 0 ? text : this.buf + text;
    this.buf = b;
    let i = this.i;
    for (;;) {
      const lt = b.indexOf("<", i);
      if (lt < 0) {
        i = b.length;
        break;
      }
      if (lt + 1 >= b.length) {
        i = lt;
        break;
      }
      const c = b.charCodeAt(lt + 1);
      if (c === QMARK) {
        const e = b.indexOf("?>", lt + 2);
        if (e < 0) { i = lt; break; }
        i = e + 2;
        continue;
      }
      if (c === BANG) {
        if (b.length < lt + 9) { i = lt; break; }
        const close = b.startsWith("<!--", lt) ? "-->" : b.startsWith("<![CDATA[", lt) ? "]]>" : ">";
        const e = b.indexOf(close, lt + 2);
        if (e < 0) { i = lt; break; }
        i = e + close.length;
        continue;
      }
      if (c === SLASH) {
        const e = b.indexOf(">", lt + 2);
        if (e < 0) { i = lt; break; }
        i = e + 1;
        this.depth--;
        if (this.depth === 1) {
          this.on.element({ name: this.elName, head: this.elHead, raw: b.slice(this.elStart, i) });
          if (this.generation !== gen) return; // the handler reset the stream
        } else if (this.depth <= 0) {
          this.depth = 0;
          this.on.end();
          if (this.generation !== gen) return;
        }
        continue;
      }
      const e = tagEnd(b, lt + 1);
      if (e < 0) { i = lt; break; }
      const selfClosing = b.charCodeAt(e - 1) === SLASH;
      i = e + 1;
      if (this.depth === 0) {
        this.depth = 1;
        this.on.header(b.slice(lt, i));
        if (this.generation !== gen) return;
        continue;
      }
      if (this.depth === 1) {
        this.elStart = lt;
        this.elHead = b.slice(lt, i);
        this.elName = elementName(this.elHead);
        if (selfClosing) {
          this.on.element({ name: this.elName, head: this.elHead, raw: this.elHead });
          if (this.generation !== gen) return;
          continue;
        }
      }
      if (!selfClosing) this.depth++;
    }
    // Keep only what is still needed: the unfinished element, or the unscanned tail.
    if (this.depth > 1) {
      b = b.slice(this.elStart);
      i -= this.elStart;
      this.elStart = 0;
      if (b.length > this.maxBuffered) throw new Error(`element larger than ${this.maxBuffered} characters`);
    } else {
      b = b.slice(i);
      i = 0;
    }
    this.buf = b;
    this.i = i;
  }
}

/** "message" for "<message to=...>". */
export function elementName(head) {
  let j = 1;
  const n = head.length;
  while (j < n) {
    const c = head.charCodeAt(j);
    if (c === 32 || c === GT || c === SLASH || c === 9 || c === 10 || c === 13) break;
    j++;
  }
  return head.slice(1, j);
}

/** Value of attribute `name` in an opening tag, or undefined. Entities other than the five XML ones are left alone. */
export function attr(head, name) {
  const key = name + "=";
  let from = 1;
  for (;;) {
    const k = head.indexOf(key, from);
    if (k < 0) return undefined;
    const before = head.charCodeAt(k - 1);
    from = k + key.length;
    if (before !== 32 && before !== 9 && before !== 10 && before !== 13) continue;
    const q = head.charCodeAt(from);
    if (q !== DQ && q !== SQ) continue;
    const end = head.indexOf(q === DQ ? '"' : "'", from + 1);
    if (end < 0) return undefined;
    const v = head.slice(from + 1, end);
    return v.indexOf("&") < 0 ? v : unescapeXml(v);
  }
}

/** Text of the first <child>...</child> (no nested markup), or undefined. */
export function childText(raw, child) {
  const open = raw.indexOf("<" + child);
  if (open < 0) return undefined;
  const gt = raw.indexOf(">", open);
  if (gt < 0 || raw.charCodeAt(gt - 1) === SLASH) return gt < 0 ? undefined : "";
  const close = raw.indexOf("</" + child + ">", gt);
  if (close < 0) return undefined;
  const v = raw.slice(gt + 1, close);
  return v.indexOf("&") < 0 ? v : unescapeXml(v);
}

/** The local name of the first child element inside a stream error / SASL failure / stanza error. */
export function firstChildName(raw, skip = []) {
  const re = /<([A-Za-z][\w.-]*(?::[\w.-]+)?)[\s/>]/g;
  re.lastIndex = 1;
  let m;
  while ((m = re.exec(raw)) !== null) {
    const n = m[1];
    if (!skip.includes(n)) return n;
  }
  return undefined;
}

/** The defined condition of a stanza error: the first child of <error/> that is not <text/>. */
export function errorCondition(raw) {
  const k = raw.indexOf("<error");
  if (k < 0) return "no <error/>";
  return firstChildName(raw.slice(k + 6), ["text"]) ?? "undefined";
}

export function escapeXml(s) {
  return s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;" })[c]);
}

export function unescapeXml(s) {
  return s.replace(/&(lt|gt|amp|quot|apos|#\d+|#x[0-9a-fA-F]+);/g, (_, e) => {
    switch (e) {
      case "lt": return "<";
      case "gt": return ">";
      case "amp": return "&";
      case "quot": return '"';
      case "apos": return "'";
      default: return String.fromCodePoint(e[1] === "x" ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10));
    }
  });
}

/** Bare JID of a full JID (lower-cased localpart and domain are the caller's business). */
export function bareJid(jid) {
  const k = jid.indexOf("/");
  return k < 0 ? jid : jid.slice(0, k);
}
