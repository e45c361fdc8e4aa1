/**
 * RFC 6120 §11 restricted XML and well-formedness: each rule with the stream
 * error condition it must produce.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { NS } from "./namespaces.js";
import { StreamError } from "./errors.js";
import { HEADER, collect, onlyError, run, utf8, type Collector } from "./test-helpers.js";

const BARE_HEADER = `<stream:stream xmlns='jabber:client' xmlns:stream='${NS.STREAMS}'>`;

function condition(input: string | Uint8Array): string {
  return onlyError(run(input)).condition;
}

/** The condition when `input` is fed one byte at a time (it must agree with one write). */
function conditionBytewise(input: string): string {
  const bytes = utf8(input);
  const c = collect();
  for (let i = 0; i < bytes.length; i++) c.parser.write(bytes.subarray(i, i + 1));
  return onlyError(c).condition;
}

function assertCondition(input: string, expected: string, message?: string): Collector {
  const c = run(input);
  const err = onlyError(c);
  assert.ok(err instanceof StreamError);
  assert.equal(err.condition, expected, message ?? JSON.stringify(input));
  assert.equal(conditionBytewise(input), expected, `bytewise: ${message ?? JSON.stringify(input)}`);
  return c;
}

describe("DTDs (RFC 6120 §11.1)", () => {
  it("rejects a DOCTYPE before the stream header", () => {
    const c = assertCondition(`<!DOCTYPE stream:stream>${BARE_HEADER}`, "restricted-xml");
    assert.equal(c.headers.length, 0);
    assertCondition(`<?xml version='1.0'?><!DOCTYPE stream:stream SYSTEM "http://example.com/x.dtd">${BARE_HEADER}`, "restricted-xml");
    assertCondition("<!DOCTYPE x PUBLIC \"-//x//y\" \"z.dtd\" [ <!ELEMENT x ANY> ]>", "restricted-xml");
  });

  it("rejects a DOCTYPE inside the stream and inside a stanza", () => {
    const c = assertCondition(HEADER + "<presence/><!DOCTYPE foo><presence/>", "restricted-xml");
    assert.equal(c.elements.length, 1);
    assertCondition(HEADER + "<message><!DOCTYPE foo></message>", "restricted-xml");
  });

  it("rejects the billion laughs without expanding anything", () => {
    const lol = [
      "<?xml version=\"1.0\"?>",
      "<!DOCTYPE lolz [",
      " <!ENTITY lol \"lol\">",
      ...Array.from({ length: 9 }, (_, i) =>
        ` <!ENTITY lol${i + 1} "${Array.from({ length: 10 }, () => `&lol${i === 0 ? "" : i};`).join("")}">`),
      "]>",
      BARE_HEADER,
      "<message><body>&lol9;</body></message>",
    ].join("\n");
    const t0 = performance.now();
    const c = assertCondition(lol, "restricted-xml");
    assert.ok(performance.now() - t0 < 1000, "no exponential work");
    assert.equal(c.headers.length, 0);
    assert.equal(c.elements.length, 0);
    // The same attack inside the stream (after the header) fails the same way.
    const inside = run(HEADER + lol.slice(lol.indexOf("<!DOCTYPE")));
    assert.equal(onlyError(inside).condition, "restricted-xml");
    assert.equal(inside.elements.length, 0);
  });

  it("treats a reference to an undeclared entity as restricted XML", () => {
    assertCondition(HEADER + "<message><body>&lol9;</body></message>", "restricted-xml");
    assertCondition(HEADER + "<message><body>&foo;</body></message>", "restricted-xml");
    assertCondition(HEADER + "<message to='&foo;'/>", "restricted-xml");
    assertCondition(HEADER + "<message><body>&nbsp;</body></message>", "restricted-xml");
    assertCondition(`<stream:stream xmlns:stream='${NS.STREAMS}' to='&ent;'>`, "restricted-xml");
  });
});

describe("comments and processing instructions (RFC 6120 §11.1)", () => {
  it("rejects comments before the header, between stanzas and inside a stanza", () => {
    assertCondition(`<!-- hello -->${BARE_HEADER}`, "restricted-xml");
    assertCondition(`<?xml version='1.0'?><!---->${BARE_HEADER}`, "restricted-xml");
    assertCondition(HEADER + "<presence/><!-- between --><presence/>", "restricted-xml");
    assertCondition(HEADER + "<message><body>a<!-- inside -->b</body></message>", "restricted-xml");
  });

  it("rejects processing instructions anywhere", () => {
    assertCondition(`<?xml version='1.0'?><?xml-stylesheet href='a.xsl'?>${BARE_HEADER}`, "restricted-xml");
    assertCondition(`<?foo?>${BARE_HEADER}`, "restricted-xml");
    assertCondition(HEADER + "<?foo bar?><presence/>", "restricted-xml");
    assertCondition(HEADER + "<message><?foo bar?></message>", "restricted-xml");
  });

  it("accepts the XML declaration at the start", () => {
    for (const decl of [
      "<?xml version='1.0'?>",
      "<?xml version=\"1.0\"?>",
      "<?xml version='1.0' encoding='UTF-8'?>",
      "<?xml version='1.0' encoding=\"utf-8\" standalone='yes'?>",
      "<?xml version = '1.0'  encoding = 'UTF-8' ?>",
    ]) {
      const c = run(decl + BARE_HEADER + "<presence/>");
      assert.equal(c.errors.length, 0, decl);
      assert.equal(c.headers.length, 1, decl);
      assert.equal(c.elements.length, 1, decl);
    }
  });

  it("rejects an encoding other than UTF-8", () => {
    assertCondition(`<?xml version='1.0' encoding='ISO-8859-1'?>${BARE_HEADER}`, "unsupported-encoding");
    assertCondition(`<?xml version='1.0' encoding='UTF-16'?>${BARE_HEADER}`, "unsupported-encoding");
    assertCondition("<?xml version='1.0' encoding='us-ascii'?>", "unsupported-encoding");
  });

  it("rejects XML 1.1", () => {
    assertCondition(`<?xml version='1.1'?>${BARE_HEADER}`, "unsupported-version");
  });

  it("rejects a misplaced XML declaration", () => {
    assertCondition(` <?xml version='1.0'?>${BARE_HEADER}`, "not-well-formed");
    assertCondition(HEADER + "<?xml version='1.0'?><presence/>", "not-well-formed");
  });
});

describe("entities and character references", () => {
  it("accepts the five predefined entities and character references in text and attributes", () => {
    const c = run(HEADER +
      "<message id='&amp;&lt;&gt;&quot;&apos;&#65;&#x42;&#x263A;&#128512;'>" +
      "<body>&amp;&lt;&gt;&quot;&apos;&#65;&#x42;&#x263a;&#x1F600;&#9;&#xA;&#13;</body></message>");
    assert.equal(c.errors.length, 0);
    const m = c.elements[0]!;
    assert.equal(m.attrs.id, "&<>\"'AB\u263a\u{1F600}");
    assert.equal(m.getChildText("body"), "&<>\"'AB\u263a\u{1F600}\t\n\r");
  });

  it("rejects malformed character references as not-well-formed", () => {
    for (const ref of ["&#xZZ;", "&#0;", "&#x0;", "&#1;", "&#xD800;", "&#x110000;", "&#xFFFE;", "&#;", "&#x;", "&#12a;", "&;"]) {
      assertCondition(HEADER + `<message><body>${ref}</body></message>`, "not-well-formed", ref);
      assertCondition(HEADER + `<message id='${ref}'/>`, "not-well-formed", ref + " in attribute");
    }
  });
});

describe("well-formedness (not-well-formed)", () => {
  const bad: Array<[string, string]> = [
    ["mismatched tags", "<message><body></message></body>"],
    ["close tag of another element", "<message></presence>"],
    ["unbound element prefix", "<x:message/>"],
    ["unbound attribute prefix", "<message x:y='1'/>"],
    ["unbound prefix on a child", "<message><x:body/></message>"],
    ["unquoted attribute", "<message to=juliet/>"],
    ["attribute without value", "<message to/>"],
    ["attribute without =", "<message to 'x'/>"],
    ["no space between attributes", "<message a='1'b='2'/>"],
    ["< in an attribute value", "<message a='<'/>"],
    ["mismatched quotes", "<message a='1\"/>"],
    ["duplicate attribute", "<message a='1' a='2'/>"],
    ["duplicate attribute with the same quote", "<message id=\"1\" id=\"1\"/>"],
    ["duplicate namespaced attribute through two prefixes", "<message xmlns:p='urn:u' xmlns:q='urn:u' p:a='1' q:a='2'/>"],
    ["duplicate namespace declaration", "<message xmlns:p='urn:u' xmlns:p='urn:v'/>"],
    ["bad name start", "<1message/>"],
    ["space after <", "< message/>"],
    ["empty close tag", "<message></>"],
    ["]]> in text", "<message>a]]>b</message>"],
    ["control character", "<message>\u0001</message>"],
    ["NUL", "<message>\u0000</message>"],
    ["binding the xmlns prefix", "<message xmlns:xmlns='urn:x'/>"],
    ["rebinding the xml prefix", "<message xmlns:xml='urn:x'/>"],
    ["slash not followed by >", "<message / >"],
  ];
  for (const [name, stanza] of bad) {
    it(`rejects ${name}`, () => {
      const c = assertCondition(HEADER + stanza + "<presence/>", "not-well-formed");
      assert.equal(c.elements.length, 0);
    });
  }
});

describe("encoding", () => {
  const prefix = utf8(HEADER + "<message><body>");
  const suffix = utf8("</body></message>");
  const invalid: Array<[string, number[]]> = [
    ["0xFF", [0xff]],
    ["0xFE", [0xfe]],
    ["lone continuation byte", [0x80]],
    ["overlong /", [0xc0, 0xaf]],
    ["overlong NUL", [0xc0, 0x80]],
    ["truncated sequence followed by ASCII", [0xe2, 0x82, 0x41]],
    ["encoded surrogate", [0xed, 0xa0, 0x80]],
    ["beyond U+10FFFF", [0xf4, 0x90, 0x80, 0x80]],
  ];
  for (const [name, seq] of invalid) {
    it(`rejects invalid UTF-8: ${name}`, () => {
      const bytes = new Uint8Array([...prefix, ...seq, ...suffix]);
      assert.equal(condition(bytes), "unsupported-encoding");
      const c = collect();
      for (let i = 0; i < bytes.length; i++) c.parser.write(bytes.subarray(i, i + 1));
      assert.equal(onlyError(c).condition, "unsupported-encoding");
      assert.equal(c.elements.length, 0);
    });
  }

  it("rejects invalid UTF-8 in the header", () => {
    assert.equal(condition(new Uint8Array([...utf8("<stream:stream to='"), 0xff])), "unsupported-encoding");
  });
});

describe("content between stanzas (bad-format)", () => {
  it("rejects text between stanzas", () => {
    const c = assertCondition(HEADER + "<presence/>hello<presence/>", "bad-format");
    assert.equal(c.elements.length, 1);
    assertCondition(HEADER + "hello", "bad-format");
    assertCondition(HEADER + "  x  <presence/>", "bad-format");
    assertCondition(HEADER + "<presence/>text</stream:stream>", "bad-format");
  });

  it("rejects references and non-XML whitespace between stanzas", () => {
    assertCondition(HEADER + "&amp;<presence/>", "bad-format");
    assertCondition(HEADER + "&#32;<presence/>", "bad-format");
    assertCondition(HEADER + "\u00a0<presence/>", "bad-format");
    assertCondition(HEADER + "\u2028<presence/>", "bad-format");
    assertCondition(HEADER + "<presence/>&#10;</stream:stream>", "bad-format");
  });

  it("rejects CDATA sections between stanzas, even of white space", () => {
    assertCondition(HEADER + "<![CDATA[x]]><presence/>", "bad-format");
    assertCondition(HEADER + "<presence/><![CDATA[ ]]><presence/>", "bad-format");
  });

  it("reports text between stanzas without waiting for the next tag", () => {
    const c = run(HEADER + "<presence/>hello");
    assert.equal(onlyError(c).condition, "bad-format");
  });
});

describe("the stream header (invalid-namespace)", () => {
  it("rejects a root that is not stream:stream in the streams namespace", () => {
    assertCondition("<stream:stream xmlns='jabber:client' xmlns:stream='http://wrong.namespace.example.org/'>", "invalid-namespace");
    assertCondition("<stream xmlns='jabber:client'>", "invalid-namespace");
    assertCondition(`<stream:foo xmlns:stream='${NS.STREAMS}'>`, "invalid-namespace");
    assertCondition("<message xmlns='jabber:client'>", "invalid-namespace");
    assertCondition("<message xmlns='jabber:client'/>", "invalid-namespace");
  });

  it("reports a missing stream prefix declaration as bad-namespace-prefix (RFC 6120 §4.9.3.2)", () => {
    assertCondition("<stream:stream xmlns='jabber:client' to='example.com' version='1.0'>", "bad-namespace-prefix");
  });

  it("rejects an empty stream and text before the header", () => {
    assertCondition(`<stream:stream xmlns:stream='${NS.STREAMS}'/>`, "not-well-formed");
    assertCondition(`hello${BARE_HEADER}`, "not-well-formed");
  });
});

describe("after an error", () => {
  it("ignores further writes and reports only once", () => {
    for (const input of [
      "<!DOCTYPE x>",
      HEADER + "<!-- -->",
      HEADER + "&foo;",
      HEADER + "<a></b>",
      HEADER + "x",
      "<foo xmlns='bar'>",
    ]) {
      const c = run(input);
      assert.equal(c.errors.length, 1, input);
      c.parser.write("<presence/>");
      c.parser.write("</a><!-- --><?pi?>&x;");
      c.parser.write(new Uint8Array([0xff]));
      c.parser.write(HEADER + "<presence/>");
      c.parser.end();
      assert.equal(c.errors.length, 1, input);
      assert.equal(c.elements.length, 0, input);
    }
  });
});
