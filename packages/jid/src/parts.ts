/**
 * Preparation and enforcement of the three parts of a JID (RFC 7622 section 3).
 * Each `prep*` function takes one raw part and returns its normalised form, or
 * throws a JidError. `input` is only used for the error message (the whole JID).
 */
import { domainToASCII, domainToUnicode } from "node:url";
import { isIPv4, isIPv6 } from "node:net";
import { JidError } from "./error.js";
import { findViolation, formatCodePoint, type CodePointClass } from "./precis.js";

/** RFC 7622: every part is at most 1023 octets of UTF-8. */
export const MAX_PART_BYTES = 1023;
/** DNS limit for one label in its ASCII (A-label) form. */
export const MAX_LABEL_OCTETS = 63;

// Normalisation never shrinks a valid part by anything near this factor, so a
// longer raw part is rejected before doing any Unicode work (DoS guard).
const MAX_RAW_UNITS = 4 * MAX_PART_BYTES;

const utf8Length = (s: string): number => Buffer.byteLength(s, "utf8");

// ----------------------------------------------------------------- localpart

// Printable ASCII minus the RFC 7622 section 3.3.1 forbidden " & ' / : < > @.
// Every such string is valid under UsernameCaseMapped once ASCII-lowercased:
// width mapping and NFC do nothing to ASCII, and all of 0x21-0x7E is PVALID.
const LOCAL_FAST = /^[!#-%(-.0-9;=?A-~]+$/;
// The same set without upper-case letters: such a localpart is already normalised.
const LOCAL_NORMALISED = /^[!#-%(-.0-9;=?[-~]+$/;
const ASCII_UPPER = /[A-Z]/;
const LOCAL_FORBIDDEN_ASCII = /["&'/:<>@]/;
// Characters with a <wide> or <narrow> compatibility decomposition all live here.
const WIDTH_MAPPED = /[\u3000\uff01-\uffee]/g;

/** Description of the first disallowed code point of `s`, or null when all are valid. */
function violationMessage(part: string, s: string, cls: CodePointClass): string | null {
  const v = findViolation(s, cls);
  return v === null ? null : `${part} contains ${formatCodePoint(v.codePoint)} (${v.reason})`;
}

/**
 * Localpart: PRECIS UsernameCaseMapped as referenced by RFC 7622 (RFC 7613):
 * 1. width mapping (fullwidth/halfwidth forms to their normal equivalents),
 * 2. case mapping with String#toLowerCase() (the Unicode toLowerCase operation
 *    RFC 7613 names; RFC 8265 later switched to full case folding, which would
 *    make "fußball" equal "fussball" - we follow RFC 7622/7613),
 * 3. NFC,
 * then the IdentifierClass check plus the eight characters RFC 7622 forbids.
 */
export function prepLocalpart(raw: string, input: string = raw): string {
  if (raw === "") throw new JidError("empty-localpart", input, "localpart is empty", "localpart");
  if (raw.length > MAX_RAW_UNITS) {
    throw new JidError("localpart-too-long", input, `localpart exceeds ${MAX_PART_BYTES} bytes`, "localpart");
  }
  const normalised = LOCAL_NORMALISED.test(raw);
  if (normalised || LOCAL_FAST.test(raw)) {
    if (raw.length > MAX_PART_BYTES) {
      throw new JidError("localpart-too-long", input, `localpart is ${raw.length} bytes, max ${MAX_PART_BYTES}`, "localpart");
    }
    return normalised ? raw : raw.toLowerCase();
  }

  const local = raw.replace(WIDTH_MAPPED, (ch) => ch.normalize("NFKC")).toLowerCase().normalize("NFC");
  const bytes = utf8Length(local);
  if (bytes > MAX_PART_BYTES) {
    throw new JidError("localpart-too-long", input, `localpart is ${bytes} bytes, max ${MAX_PART_BYTES}`, "localpart");
  }
  const bad = LOCAL_FORBIDDEN_ASCII.exec(local);
  if (bad !== null) {
    throw new JidError("forbidden-char", input, `localpart contains forbidden character '${bad[0]}'`, "localpart");
  }
  const v = violationMessage("localpart", local, "identifier");
  if (v !== null) throw new JidError("forbidden-char", input, v, "localpart");
  return local;
}

// -------------------------------------------------------------- resourcepart

const RESOURCE_FAST = /^[\x20-\x7e]+$/;
const UNICODE_SPACE = /\p{Zs}/gu;

/**
 * Resourcepart: PRECIS OpaqueString (RFC 7613/8265): non-ASCII spaces are
 * mapped to U+0020, no case mapping, NFC, then the FreeformClass check (no
 * controls, unassigned, default-ignorable, private-use, ...). Leading and
 * trailing spaces are allowed (RFC 7622 erratum 4560).
 */
export function prepResourcepart(raw: string, input: string = raw): string {
  if (raw === "") throw new JidError("empty-resource", input, "resourcepart is empty", "resourcepart");
  if (raw.length > MAX_RAW_UNITS) {
    throw new JidError("resource-too-long", input, `resourcepart exceeds ${MAX_PART_BYTES} bytes`, "resourcepart");
  }
  if (RESOURCE_FAST.test(raw)) {
    if (raw.length > MAX_PART_BYTES) {
      throw new JidError("resource-too-long", input, `resourcepart is ${raw.length} bytes, max ${MAX_PART_BYTES}`, "resourcepart");
    }
    return raw;
  }
  const res = raw.replace(UNICODE_SPACE, " ").normalize("NFC");
  const bytes = utf8Length(res);
  if (bytes > MAX_PART_BYTES) {
    throw new JidError("resource-too-long", input, `resourcepart is ${bytes} bytes, max ${MAX_PART_BYTES}`, "resourcepart");
  }
  const v = violationMessage("resourcepart", res, "freeform");
  if (v !== null) throw new JidError("forbidden-char", input, v, "resourcepart");
  return res;
}

// ---------------------------------------------------------------- domainpart

const ASCII_DOMAIN = /^[A-Za-z0-9._-]+$/;
const ASCII_LABEL = /^[a-z0-9_-]+$/;
// One lower-case label that needs no further checks: 1-63 characters, no
// leading/trailing '-', no '--' in positions 3-4 (so no A-labels either).
const SIMPLE_LABEL = "(?![a-z0-9_-]{2}--)[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?";
// Labels joined by dots, the last one not numeric (see NUMERIC_LABEL).
const NORMALISED_ASCII_DOMAIN = new RegExp(
  `^(?:${SIMPLE_LABEL}\\.)*(?!(?:[0-9]+|0x[0-9a-f]*)$)${SIMPLE_LABEL}$`,
);
// eslint-disable-next-line no-control-regex -- the control characters are what it finds
const ASCII_NON_LDH = /[\x00-\x2c\x2f\x3a-\x40\x5b-\x5e\x60\x7b-\x7f]/;
// A last label that the WHATWG host parser (behind node:url) would read as an
// IPv4 number: decimal, or 0x-prefixed hex. Such names are not FQDNs either.
const NUMERIC_LABEL = /^(?:[0-9]+|0x[0-9a-f]*)$/;

function badDomain(input: string, why: string): JidError {
  return new JidError("bad-domain", input, `domainpart ${why}`, "domainpart");
}

/** Checks an all-ASCII (already lower-case) label that is not an A-label. */
function checkAsciiLabel(label: string, input: string): void {
  if (label === "") throw badDomain(input, "has an empty label");
  if (label.length > MAX_LABEL_OCTETS) throw badDomain(input, `label "${label.slice(0, 20)}…" exceeds ${MAX_LABEL_OCTETS} octets`);
  if (!ASCII_LABEL.test(label)) throw badDomain(input, `label "${label}" contains characters outside letters, digits, '-' and '_'`);
  if (label.startsWith("-") || label.endsWith("-")) throw badDomain(input, `label "${label}" starts or ends with '-'`);
  // IDNA2008 reserves "??--" labels; only "xn--" (A-labels) are meaningful.
  if (label.length >= 4 && label[2] === "-" && label[3] === "-") throw badDomain(input, `label "${label}" has '--' in positions 3-4`);
}

function checkLastLabel(labels: readonly string[], input: string): void {
  const last = labels[labels.length - 1];
  if (last !== undefined && NUMERIC_LABEL.test(last)) throw badDomain(input, "is neither a dotted-quad IPv4 address nor a domain name");
}

function prepIpv6Literal(d: string, input: string): string {
  if (!d.endsWith("]")) throw badDomain(input, "has an unterminated IPv6 literal");
  const inner = d.slice(1, -1);
  if (inner.includes("%") || !isIPv6(inner)) throw badDomain(input, "is not a valid IPv6 literal");
  try {
    // Canonical RFC 5952-style text (lower case, "::" compression) so that
    // equal addresses compare equal.
    return new URL(`http://[${inner}]/`).hostname;
  } catch {
    throw badDomain(input, "is not a valid IPv6 literal");
  }
}

/**
 * Domainpart (RFC 7622 section 3.2):
 * - one trailing '.' is stripped first (only U+002E, the IDNA2008 separator);
 * - "[...]" must be an IPv6 address (node:net isIPv6, no zone id); it is
 *   stored in canonical compressed lower-case form, with the brackets;
 * - a dotted quad accepted by node:net isIPv4 is an IPv4 literal;
 * - anything else must be a domain name. UTS #46 processing from
 *   node:url domainToASCII maps it (case folding, width mapping, NFC) and
 *   rejects invalid input (empty result). On top of that every label must
 *   be non-empty and at most 63 octets as an A-label; ASCII labels must be
 *   letters/digits/hyphen (plus '_'), without a leading or trailing hyphen;
 *   U-labels must pass the IDNA2008 code point rules (so symbols such as
 *   U+2603 SNOWMAN or emoji are rejected although UTS #46 lets them through);
 *   a purely numeric last label is rejected.
 *
 * The domain is STORED IN ITS U-LABEL FORM (Unicode, lower case), e.g.
 * "xn--bcher-kva.example" is stored as "bücher.example". RFC 7622 prefers
 * U-labels for comparison, the form is the same one the localpart/resource
 * use (Unicode), and both spellings of a name then compare equal. Use
 * `domainToASCII()` from node:url when an A-label form is needed (DNS).
 *
 * The underscore is tolerated in labels (not strictly LDH) because internal
 * and component hostnames sometimes contain it.
 */
export function prepDomainpart(raw: string, input: string = raw): string {
  let d = raw.endsWith(".") ? raw.slice(0, -1) : raw;
  if (d === "") throw new JidError("empty-domain", input, "domainpart is empty", "domainpart");
  if (d.length > MAX_RAW_UNITS) {
    throw new JidError("domain-too-long", input, `domainpart exceeds ${MAX_PART_BYTES} bytes`, "domainpart");
  }
  if (d.charCodeAt(0) === 0x5b /* [ */) return prepIpv6Literal(d, input);

  // Fastest path: an already-normalised ASCII host name (the usual case).
  if (d.length <= MAX_PART_BYTES && NORMALISED_ASCII_DOMAIN.test(d)) return d;

  // Fast path: plain ASCII host names, possibly upper case or invalid.
  if (ASCII_DOMAIN.test(d)) {
    if (ASCII_UPPER.test(d)) d = d.toLowerCase();
    if (isIPv4(d)) return d;
    if (d.length > MAX_PART_BYTES) {
      throw new JidError("domain-too-long", input, `domainpart is ${d.length} bytes, max ${MAX_PART_BYTES}`, "domainpart");
    }
    const labels = d.split(".");
    if (!labels.some((l) => l.startsWith("xn--"))) {
      for (const label of labels) checkAsciiLabel(label, input);
      checkLastLabel(labels, input);
      return d;
    }
    // A-labels need punycode validation: fall through to the full path.
  } else if (ASCII_NON_LDH.test(d)) {
    // Must be caught here: domainToASCII() runs the WHATWG URL host parser,
    // which silently cuts the input at '/', '?', '#' or '\\' and drops tabs
    // and newlines ("example.com/x" -> "example.com").
    const ch = ASCII_NON_LDH.exec(d)![0];
    throw badDomain(input, `contains the character ${JSON.stringify(ch)}`);
  }

  const ascii = domainToASCII(d);
  if (ascii === "") throw badDomain(input, "is not a valid domain name");
  const labels = ascii.split(".");
  for (const label of labels) {
    if (!label.startsWith("xn--")) {
      checkAsciiLabel(label, input);
      continue;
    }
    if (label.length > MAX_LABEL_OCTETS) throw badDomain(input, `label "${label.slice(0, 20)}…" exceeds ${MAX_LABEL_OCTETS} octets as an A-label`);
    const ulabel = domainToUnicode(label);
    if (ulabel === "" || ulabel === label) throw badDomain(input, `label "${label}" is not a valid A-label`);
    if (ulabel.startsWith("-") || ulabel.endsWith("-")) throw badDomain(input, `label "${ulabel}" starts or ends with '-'`);
    if (ulabel[2] === "-" && ulabel[3] === "-") throw badDomain(input, `label "${ulabel}" has '--' in positions 3-4`);
    const v = findViolation(ulabel, "idna");
    if (v !== null) throw badDomain(input, `contains ${formatCodePoint(v.codePoint)} (${v.reason})`);
  }
  checkLastLabel(labels, input);

  const unicode = domainToUnicode(ascii);
  const bytes = utf8Length(unicode);
  if (bytes > MAX_PART_BYTES) {
    throw new JidError("domain-too-long", input, `domainpart is ${bytes} bytes, max ${MAX_PART_BYTES}`, "domainpart");
  }
  return unicode;
}
