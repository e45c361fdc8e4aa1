/**
 * Code point validation for JID parts.
 *
 * RFC 7622 prepares localparts with the PRECIS "UsernameCaseMapped" profile
 * (IdentifierClass) and resourceparts with the "OpaqueString" profile
 * (FreeformClass), both from RFC 7613 / RFC 8264. The derived property of a
 * code point is computed here at run time from the Unicode data built into
 * the JavaScript engine (regexp property escapes and String#normalize), so
 * the tables always match the Unicode version of the running Node.js (ICU).
 *
 * The same machinery also checks U-labels of domain names against the
 * IDNA2008 rules of RFC 5892, which follow the same pattern.
 *
 * Known simplifications (all of them err on the side of rejecting):
 * - CONTEXTJ (ZERO WIDTH (NON-)JOINER): only the "preceded by a virama" rule
 *   is implemented; the Arabic joining-type rule for ZWNJ is not, so such
 *   strings are rejected.
 * - The IDNA2008 "Unstable" test uses toLowerCase() in place of full Unicode
 *   case folding. Domain names have already been through UTS #46 mapping
 *   (which case-folds) before this check runs, so the difference is moot.
 * - The Bidi Rule (RFC 5893) that UsernameCaseMapped asks for is NOT applied
 *   to localparts: JavaScript exposes no Bidi_Class property. Domain names get
 *   the Bidi check from the UTS #46 implementation in node:url.
 */

export type CodePointClass = "identifier" | "freeform" | "idna";

/** A code point that failed validation, with its position (in code points) in the string. */
export interface Violation {
  readonly index: number;
  readonly codePoint: number;
  readonly reason: string;
}

// RFC 5892 section 2.6 "Exceptions", reused by RFC 8264 (PRECIS).
const EXCEPTION_PVALID: ReadonlySet<number> = new Set([0x00df, 0x03c2, 0x06fd, 0x06fe, 0x0f0b, 0x3007]);
const EXCEPTION_DISALLOWED: ReadonlySet<number> = new Set([
  0x0640, 0x07fa, 0x302e, 0x302f, 0x3031, 0x3032, 0x3033, 0x3034, 0x3035, 0x303b,
]);

function isExceptionContextO(cp: number): boolean {
  return (
    cp === 0x00b7 ||
    cp === 0x0375 ||
    cp === 0x05f3 ||
    cp === 0x05f4 ||
    cp === 0x30fb ||
    (cp >= 0x0660 && cp <= 0x0669) ||
    (cp >= 0x06f0 && cp <= 0x06f9)
  );
}

const UNASSIGNED = /^\p{Cn}$/u;
const CONTROL = /^\p{Cc}$/u;
const PRECIS_IGNORABLE = /^[\p{Default_Ignorable_Code_Point}\p{Noncharacter_Code_Point}]$/u;
const IDNA_IGNORABLE = /^[\p{Default_Ignorable_Code_Point}\p{Noncharacter_Code_Point}\p{White_Space}]$/u;
const LETTER_DIGITS = /^[\p{Ll}\p{Lu}\p{Lo}\p{Nd}\p{Lm}\p{Mn}\p{Mc}]$/u;
const OTHER_LETTER_DIGITS = /^[\p{Lt}\p{Nl}\p{No}\p{Me}]$/u;
const SPACES = /^\p{Zs}$/u;
const SYMBOLS = /^[\p{Sm}\p{Sc}\p{Sk}\p{So}]$/u;
const PUNCTUATION = /^\p{P}$/u;
const GREEK = /^\p{Script=Greek}$/u;
const HEBREW = /^\p{Script=Hebrew}$/u;
const KANA_HAN = /^[\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Han}]$/u;

function isOldHangulJamo(cp: number): boolean {
  // Hangul_Syllable_Type L, V or T (conjoining jamo); unassigned gaps are caught earlier.
  return (cp >= 0x1100 && cp <= 0x11ff) || (cp >= 0xa960 && cp <= 0xa97f) || (cp >= 0xd7b0 && cp <= 0xd7ff);
}

function isIgnorableBlock(cp: number): boolean {
  // RFC 5892 IgnorableBlocks: Combining Diacritical Marks for Symbols,
  // Musical Symbols, Ancient Greek Musical Notation.
  return (cp >= 0x20d0 && cp <= 0x20ff) || (cp >= 0x1d100 && cp <= 0x1d24f);
}

/** PRECIS HasCompat: the code point changes under NFKC. */
function hasCompat(ch: string): boolean {
  return ch.normalize("NFKC") !== ch;
}

/** IDNA2008 "Unstable" (approximation, see the file comment). */
function isUnstable(ch: string): boolean {
  return ch.normalize("NFKC").toLowerCase().normalize("NFKC") !== ch;
}

// Probe marks with known canonical combining classes, used to detect viramas
// (ccc = 9) through canonical reordering, without a Unicode data table.
const NUKTA_CCC7 = "\u093c";
const KANA_VOICING_CCC8 = "\u3099";
const SHEVA_CCC10 = "\u05b0";

/**
 * True when `ch` has Canonical_Combining_Class = 9 (Virama). NFD sorts
 * adjacent non-starters by ascending combining class, so ccc(ch) = 9 exactly
 * when NFD moves it after a following ccc-7 mark and after a following ccc-8
 * mark, and before a preceding ccc-10 mark.
 */
export function isVirama(ch: string): boolean {
  if (ch === NUKTA_CCC7 || ch === KANA_VOICING_CCC8 || ch === SHEVA_CCC10) return false;
  if (ch.normalize("NFD") !== ch) return false;
  return (
    ("a" + ch + NUKTA_CCC7).normalize("NFD") === "a" + NUKTA_CCC7 + ch && // ccc > 7
    ("a" + ch + KANA_VOICING_CCC8).normalize("NFD") === "a" + KANA_VOICING_CCC8 + ch && // ccc > 8
    ("a" + SHEVA_CCC10 + ch).normalize("NFD") === "a" + ch + SHEVA_CCC10 // 0 < ccc < 10
  );
}

/** RFC 5892 Appendix A.1 / A.2, virama rule only. */
function contextJOk(chars: readonly string[], i: number): boolean {
  const before = chars[i - 1];
  return before !== undefined && isVirama(before);
}

/** RFC 5892 Appendix A.3 - A.9. */
function contextOOk(chars: readonly string[], cps: readonly number[], i: number): boolean {
  const cp = cps[i]!;
  if (cp === 0x00b7) return cps[i - 1] === 0x006c && cps[i + 1] === 0x006c; // MIDDLE DOT between two 'l'
  if (cp === 0x0375) {
    const after = chars[i + 1]; // GREEK LOWER NUMERAL SIGN before a Greek character
    return after !== undefined && GREEK.test(after);
  }
  if (cp === 0x05f3 || cp === 0x05f4) {
    const before = chars[i - 1]; // HEBREW GERESH / GERSHAYIM after a Hebrew character
    return before !== undefined && HEBREW.test(before);
  }
  if (cp === 0x30fb) return chars.some((c) => KANA_HAN.test(c)); // KATAKANA MIDDLE DOT
  if (cp >= 0x0660 && cp <= 0x0669) return !cps.some((c) => c >= 0x06f0 && c <= 0x06f9);
  if (cp >= 0x06f0 && cp <= 0x06f9) return !cps.some((c) => c >= 0x0660 && c <= 0x0669);
  return false;
}

/**
 * The reason a code point is not valid in `cls` at position `i`, or null when
 * it is valid (PVALID, FREE_PVAL, or a CONTEXTJ/CONTEXTO whose rule holds).
 * RFC 8264 section 8 (PRECIS) and RFC 5892 section 3 (IDNA2008).
 */
function reasonAt(chars: readonly string[], cps: readonly number[], i: number, cls: CodePointClass): string | null {
  const ch = chars[i]!;
  const cp = cps[i]!;
  const freeform = cls === "freeform";

  if (EXCEPTION_PVALID.has(cp)) return null;
  if (EXCEPTION_DISALLOWED.has(cp)) return "disallowed exception character";
  if (isExceptionContextO(cp)) return contextOOk(chars, cps, i) ? null : "character not allowed in this context";
  if (UNASSIGNED.test(ch)) return "unassigned code point";

  if (cls === "idna") {
    // LDH; the underscore is a deliberate extension (see domain.ts).
    if ((cp >= 0x61 && cp <= 0x7a) || (cp >= 0x30 && cp <= 0x39) || cp === 0x2d || cp === 0x5f) return null;
    if (cp === 0x200c || cp === 0x200d) return contextJOk(chars, i) ? null : "joiner not preceded by a virama";
    if (isUnstable(ch)) return "character not stable under NFKC case folding";
    if (IDNA_IGNORABLE.test(ch)) return "ignorable or space character";
    if (isIgnorableBlock(cp)) return "character from an ignorable block";
    if (isOldHangulJamo(cp)) return "conjoining Hangul jamo";
    if (LETTER_DIGITS.test(ch)) return null;
    return "symbol, punctuation or other character not allowed in domain names";
  }

  if (cp >= 0x21 && cp <= 0x7e) return null; // ASCII7
  if (cp === 0x200c || cp === 0x200d) return contextJOk(chars, i) ? null : "joiner not preceded by a virama";
  if (isOldHangulJamo(cp)) return "conjoining Hangul jamo";
  if (PRECIS_IGNORABLE.test(ch)) return "default-ignorable or noncharacter code point";
  if (CONTROL.test(ch)) return "control character";
  if (hasCompat(ch)) return freeform ? null : "compatibility character";
  if (LETTER_DIGITS.test(ch)) return null;
  if (OTHER_LETTER_DIGITS.test(ch)) return freeform ? null : "titlecase letter, letter number, other number or enclosing mark";
  if (SPACES.test(ch)) return freeform ? null : "space character";
  if (SYMBOLS.test(ch)) return freeform ? null : "symbol character";
  if (PUNCTUATION.test(ch)) return freeform ? null : "non-ASCII punctuation character";
  return "disallowed character (separator, format, private-use or surrogate)";
}

/** First code point of `s` that is not valid in `cls`, or null when the whole string is valid. */
export function findViolation(s: string, cls: CodePointClass): Violation | null {
  const chars = Array.from(s); // splits on code points; lone surrogates stay single units
  const cps = chars.map((c) => c.codePointAt(0)!);
  for (let i = 0; i < chars.length; i++) {
    const reason = reasonAt(chars, cps, i, cls);
    if (reason !== null) return { index: i, codePoint: cps[i]!, reason };
  }
  return null;
}

/** "U+2163" style name of a code point. */
export function formatCodePoint(cp: number): string {
  return "U+" + cp.toString(16).toUpperCase().padStart(4, "0");
}
