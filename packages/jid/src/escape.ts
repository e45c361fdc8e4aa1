/**
 * XEP-0106 JID Escaping for localparts.
 *
 * Ten characters have an escape sequence: space " & ' / : < > @ \ become
 * \20 \22 \26 \27 \2f \3a \3c \3e \40 \5c. The backslash itself is escaped
 * only when it is followed by something that would otherwise read as one of
 * those sequences (XEP-0106 section 4.1 rule 7 and section 4.3): "c:\net"
 * escapes to "c\3a\net", while "c:\5commas" escapes to "c\3a\5c5commas".
 * (Examples 9-11 of the XEP's table escape every backslash, contradicting
 * its own business rules and "foo\bar is not modified"; we follow the rules.)
 */
import { JidError } from "./error.js";

const ESCAPES: ReadonlyMap<string, string> = new Map([
  [" ", "\\20"],
  ['"', "\\22"],
  ["&", "\\26"],
  ["'", "\\27"],
  ["/", "\\2f"],
  [":", "\\3a"],
  ["<", "\\3c"],
  [">", "\\3e"],
  ["@", "\\40"],
]);

const UNESCAPES: ReadonlyMap<string, string> = new Map([
  ["20", " "],
  ["22", '"'],
  ["26", "&"],
  ["27", "'"],
  ["2f", "/"],
  ["3a", ":"],
  ["3c", "<"],
  ["3e", ">"],
  ["40", "@"],
  ["5c", "\\"],
]);

// A backslash that starts something readable as an escape sequence. Case is
// ignored here on purpose: the escaped localpart will be case-folded by JID
// normalisation, which would turn a literal "\2F" into the escape "\2f".
const ESCAPE_LIKE = /^(?:20|22|26|27|2f|3a|3c|3e|40|5c)$/i;
const NEEDS_ESCAPE = /[ "&'/:<>@\\]/;
// Unescaping only recognises the exact lower-case sequences ("CASE IS SIGNIFICANT").
const ESCAPE_SEQUENCE = /\\(20|22|26|27|2f|3a|3c|3e|40|5c)/g;

/**
 * Escapes a user-visible localpart for use in a JID. Throws a JidError
 * (code 'escape-edge-space') when the string starts or ends with a space,
 * since "\20" must not begin or end an escaped localpart.
 * Other characters are left alone: the result still has to pass JID
 * validation (e.g. control characters remain invalid).
 */
export function escapeLocal(s: string): string {
  if (s.startsWith(" ") || s.endsWith(" ")) {
    throw new JidError("escape-edge-space", s, "a localpart to be escaped must not start or end with a space", "localpart");
  }
  if (!NEEDS_ESCAPE.test(s)) return s;
  let out = "";
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!;
    if (ch === "\\") {
      out += ESCAPE_LIKE.test(s.slice(i + 1, i + 3)) ? "\\5c" : "\\";
      continue;
    }
    out += ESCAPES.get(ch) ?? ch;
  }
  return out;
}

/**
 * Turns an escaped localpart back into its display form. Only the ten exact
 * sequences are unescaped; anything else (e.g. "\2plus", "foo\bar",
 * "foob\41r", upper-case "\2F") is left unchanged. A string that starts or
 * ends with "\20" is not a valid escaped localpart and is returned as is.
 */
export function unescapeLocal(s: string): string {
  if (!s.includes("\\")) return s;
  if (s.startsWith("\\20") || s.endsWith("\\20")) return s;
  return s.replace(ESCAPE_SEQUENCE, (_m, hex: string) => UNESCAPES.get(hex)!);
}
