import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { NS } from "./namespaces.js";
import { StreamError } from "./errors.js";
import { parseElement } from "./fragment.js";
import { StreamParser } from "./parser.js";
import { serialize } from "./element.js";
import {
  HEADER, collect, digest, onlyError, plain, prng, run, utf8, writeSplit, type Collector,
} from "./test-helpers.js";

const MESSAGE = "<message to='juliet@example.com' from=\"romeo@example.net/orchard\" id='m1' type='chat'><body>Art thou not Romeo?</body></message>";
const IQ =
  "<iq type='get' id='r1'><query xmlns='jabber:iq:roster' ver=''><item jid='nurse@example.com'/></query>" +
  "<x:data xmlns:x='urn:example:x' x:attr='v'><x:deep/><plain/></x:data></iq>";
const PRESENCE = "<presence/>";

/** A stream exercising most features, used by the chunking tests. */
const RICH =
  HEADER +
  "\n  " + MESSAGE +
  " \t\r\n" + IQ +
  "\n" + "<message id=\"q'uote\" to='a\"b'><body>&amp; &lt; &gt; &quot; &apos; &#65;&#x42;&#x263A;&#128512; é 日本語 😀</body></message>" +
  "\r\n\r\n" + `<stream:features><starttls xmlns='${NS.TLS}'><required/></starttls></stream:features>` +
  PRESENCE +
  "<message><body>line1\r\nline2\rline3</body><![CDATA[<not a tag> & ]]]]></message>" +
  "\r" + "<message\r\n  to='x'\r\n><body\r\n>crlf</body\r\n ></message\t>" +
  "\r\n</stream:stream \r\n>";

describe("stream header", () => {
  it("reports the header with its namespace, content namespace and attributes", () => {
    const c = run(HEADER);
    assert.equal(c.errors.length, 0);
    assert.equal(c.headers.length, 1);
    const h = c.headers[0]!;
    assert.equal(h.name, "stream:stream");
    assert.equal(h.uri, NS.STREAMS);
    assert.equal(h.contentNs, NS.CLIENT);
    assert.deepEqual(h.attrs, {
      xmlns: NS.CLIENT,
      "xmlns:stream": NS.STREAMS,
      to: "example.com",
      version: "1.0",
      "xml:lang": "en",
    });
    assert.equal(c.parser.started, true);
    assert.deepEqual(c.parser.streamHeader, h);
  });

  it("is not started before the header is complete", () => {
    const c = collect();
    c.parser.write(HEADER.slice(0, -1));
    assert.equal(c.parser.started, false);
    assert.equal(c.parser.streamHeader, null);
    assert.equal(c.headers.length, 0);
    c.parser.write(">");
    assert.equal(c.parser.started, true);
    assert.equal(c.headers.length, 1);
  });

  it("accepts a header without an XML declaration, another prefix and the component namespace", () => {
    const c = run(`<s:stream xmlns:s='${NS.STREAMS}' xmlns='${NS.COMPONENT}' to='comp.example.com'>`);
    assert.equal(c.errors.length, 0);
    const h = c.headers[0]!;
    assert.equal(h.name, "s:stream");
    assert.equal(h.uri, NS.STREAMS);
    assert.equal(h.contentNs, NS.COMPONENT);
    assert.equal(h.attrs.to, "comp.example.com");
  });

  it("accepts leading whitespace and a BOM before the header", () => {
    const bom = new Uint8Array([0xef, 0xbb, 0xbf]);
    const body = utf8(HEADER + MESSAGE);
    const all = new Uint8Array(bom.length + body.length);
    all.set(bom);
    all.set(body, bom.length);
    const c = run(all);
    assert.equal(c.errors.length, 0);
    assert.equal(c.raws[0], MESSAGE);

    const d = run(`\n  <stream:stream xmlns='jabber:client' xmlns:stream='${NS.STREAMS}'>` + MESSAGE);
    assert.equal(d.errors.length, 0);
    assert.equal(d.raws[0], MESSAGE);
  });

  it("has an empty content namespace when the header declares none", () => {
    const c = run(`<stream:stream xmlns:stream='${NS.STREAMS}'><a/>`);
    assert.equal(c.errors.length, 0);
    assert.equal(c.headers[0]!.contentNs, "");
    assert.equal(c.elements[0]!.ns, "");
  });
});

describe("stanzas", () => {
  it("delivers each top-level element as soon as it is complete, with namespaces resolved", () => {
    const c = collect();
    c.parser.write(HEADER);
    c.parser.write(MESSAGE.slice(0, 40));
    assert.equal(c.elements.length, 0);
    c.parser.write(MESSAGE.slice(40));
    assert.equal(c.elements.length, 1);
    c.parser.write(IQ + PRESENCE);
    assert.equal(c.elements.length, 3);
    assert.equal(c.errors.length, 0);

    const [msg, iq, pres] = c.elements as [typeof c.elements[0] & object, typeof c.elements[0] & object, typeof c.elements[0] & object];
    assert.equal(msg.name, "message");
    assert.equal(msg.ns, NS.CLIENT);
    assert.equal(msg.uri, NS.CLIENT);
    assert.deepEqual(msg.attrs, { to: "juliet@example.com", from: "romeo@example.net/orchard", id: "m1", type: "chat" });
    assert.equal(msg.getChild("body", NS.CLIENT)?.text(), "Art thou not Romeo?");
    assert.equal(msg.getChildText("body"), "Art thou not Romeo?");

    assert.equal(iq.ns, NS.CLIENT);
    const query = iq.getChild("query", "jabber:iq:roster");
    assert.ok(query);
    assert.equal(query.ns, "jabber:iq:roster");
    assert.equal(query.attrs.ver, "");
    assert.equal(query.getChild("item")?.ns, "jabber:iq:roster");
    assert.equal(query.getChild("item")?.attrs.jid, "nurse@example.com");
    assert.equal(iq.getChild("query", NS.CLIENT), undefined);
    const data = iq.getChild("data", "urn:example:x");
    assert.ok(data);
    assert.equal(data.name, "x:data");
    assert.equal(data.local, "data");
    assert.equal(data.attrs["x:attr"], "v");
    assert.equal(data.getChild("deep")?.ns, "urn:example:x");
    // An unprefixed child of a prefixed element stays in the default namespace.
    assert.equal(data.getChild("plain")?.ns, NS.CLIENT);

    assert.equal(pres.name, "presence");
    assert.equal(pres.children.length, 0);
    assert.deepEqual(c.raws, [MESSAGE, IQ, PRESENCE]);
  });

  it("gives the exact received text of each element as raw", () => {
    const stanzas = [
      "<message id=\"q'uote\" to='a\"b'><body>&amp; &lt; &gt; &quot; &apos; &#65;&#x42;&#x263a;&#128512;</body></message>",
      "<message  to = 'x@y'	from=\"z\"	><body>é 日本語 😀 ©</body ></message >",
      "<iq type='set' id='2'>\r\n  <query xmlns='urn:q' a='&#9;&#10;&#13;&amp;'/>\r\n</iq>",
      "<message><![CDATA[<b>&amp;</b>]]></message>",
      "<presence xml:lang='fr'></presence>",
    ];
    const c = run(HEADER + stanzas.join("\n"));
    assert.equal(c.errors.length, 0);
    assert.deepEqual(c.raws, stanzas);
    const [m0, m1, iq, cdata] = c.elements;
    assert.deepEqual(m0!.attrs, { id: "q'uote", to: 'a"b' });
    assert.equal(m0!.getChildText("body"), "& < > \" ' AB\u263a\u{1F600}");
    assert.deepEqual(m1!.attrs, { to: "x@y", from: "z" });
    assert.equal(m1!.getChildText("body"), "é 日本語 😀 ©");
    assert.equal(iq!.getChild("query")?.attrs.a, "\t\n\r&");
    // Line ends inside character data are normalised to \n, as XML requires.
    assert.deepEqual(iq!.children.filter((x) => typeof x === "string"), ["\n  ", "\n"]);
    assert.equal(cdata!.text(), "<b>&amp;</b>");
  });

  it("ignores whitespace keepalives between stanzas", () => {
    const c = run(HEADER + " " + PRESENCE + "\n\n\t \r\n" + PRESENCE + "   ");
    assert.equal(c.errors.length, 0);
    assert.deepEqual(c.raws, [PRESENCE, PRESENCE]);
    c.parser.write(" ");
    c.parser.write("\n");
    c.parser.write("\r");
    c.parser.write("\n" + MESSAGE);
    assert.equal(c.errors.length, 0);
    assert.deepEqual(c.raws, [PRESENCE, PRESENCE, MESSAGE]);
  });

  it("reads stream-level elements with the stream prefix", () => {
    const features =
      `<stream:features><starttls xmlns='${NS.TLS}'><required/></starttls>` +
      `<mechanisms xmlns='${NS.SASL}'><mechanism>PLAIN</mechanism></mechanisms></stream:features>`;
    const c = run(HEADER + features);
    assert.equal(c.errors.length, 0);
    const f = c.elements[0]!;
    assert.equal(f.name, "stream:features");
    assert.equal(f.local, "features");
    assert.equal(f.ns, NS.STREAMS);
    assert.equal(f.getChild("starttls", NS.TLS)?.getChild("required")?.ns, NS.TLS);
    assert.equal(f.getChild("mechanisms", NS.SASL)?.getChildText("mechanism", NS.SASL), "PLAIN");
    assert.equal(c.raws[0], features);

    const err = `<stream:error><host-unknown xmlns='${NS.STREAM_ERRORS}'/></stream:error>`;
    c.parser.write(err);
    assert.equal(c.elements[1]!.ns, NS.STREAMS);
    assert.equal(c.elements[1]!.local, "error");
    assert.equal(c.elements[1]!.getChild("host-unknown", NS.STREAM_ERRORS)?.ns, NS.STREAM_ERRORS);
  });

  it("handles a default namespace redeclared on a stanza", () => {
    const c = run(HEADER + "<message xmlns='jabber:server'><body>x</body></message>");
    assert.equal(c.errors.length, 0);
    assert.equal(c.elements[0]!.ns, "jabber:server");
    assert.equal(c.elements[0]!.getChild("body", "jabber:server")?.text(), "x");
    assert.equal(c.elements[0]!.attrs.xmlns, "jabber:server");
  });
});

describe("chunking", () => {
  const whole = run(utf8(RICH));

  it("parses the rich stream without error in one write", () => {
    assert.equal(whole.errors.length, 0);
    assert.equal(whole.headers.length, 1);
    assert.equal(whole.elements.length, 7);
    assert.equal(whole.raws[6], "<message\r\n  to='x'\r\n><body\r\n>crlf</body\r\n ></message\t>");
    assert.equal(whole.elements[6]!.getChildText("body"), "crlf");
    assert.equal(whole.ends, 1);
    assert.equal(whole.elements[2]!.getChildText("body"), "& < > \" ' AB\u263a\u{1F600} é 日本語 😀");
    assert.deepEqual(whole.elements[5]!.children.map((ch) => (typeof ch === "string" ? ch : plain(ch).children)), [
      ["line1\nline2\nline3"],
      "<not a tag> & ]]",
    ]);
  });

  it("gives the same result when fed one byte at a time", () => {
    const bytes = utf8(RICH);
    const c = collect();
    for (let i = 0; i < bytes.length; i++) c.parser.write(bytes.subarray(i, i + 1));
    assert.deepEqual(digest(c.events), digest(whole.events));
  });

  it("gives the same result when fed one UTF-16 unit at a time as strings", () => {
    const c = collect();
    for (let i = 0; i < RICH.length; i++) c.parser.write(RICH[i]!);
    assert.deepEqual(digest(c.events), digest(whole.events));
  });

  it("gives the same result for random chunk splits, including inside multi-byte characters", () => {
    const bytes = utf8(RICH);
    const rand = prng(0xc0ffee);
    for (let round = 0; round < 200; round++) {
      const n = 1 + Math.floor(rand() * 40);
      const cuts = Array.from({ length: n }, () => 1 + Math.floor(rand() * (bytes.length - 1)));
      const c = collect();
      writeSplit(c.parser, bytes, cuts);
      assert.deepEqual(digest(c.events), digest(whole.events), `cuts ${JSON.stringify(cuts)}`);
    }
  });

  it("splits every multi-byte character at every byte boundary", () => {
    const text = "é日😀";
    const stanza = `<message><body>${text}</body></message>`;
    const bytes = utf8(HEADER + stanza);
    const start = utf8(HEADER + "<message><body>").length;
    for (let cut = start; cut <= start + utf8(text).length; cut++) {
      const c = collect();
      writeSplit(c.parser, bytes, [cut]);
      assert.equal(c.errors.length, 0);
      assert.equal(c.raws[0], stanza);
      assert.equal(c.elements[0]!.getChildText("body"), text);
    }
  });
});

describe("stream end and restart", () => {
  it("calls onStreamEnd for </stream:stream> and ignores later input", () => {
    const c = run(HEADER + MESSAGE + "\n</stream:stream>");
    assert.equal(c.ends, 1);
    assert.equal(c.errors.length, 0);
    assert.deepEqual(c.events.map((e) => e.kind), ["start", "element", "end"]);
    c.parser.write(MESSAGE + "<<<garbage");
    assert.deepEqual(c.events.map((e) => e.kind), ["start", "element", "end"]);
  });

  it("reports nothing after the end, even for garbage in the same chunk", () => {
    const c = run(HEADER + "</stream:stream>" + MESSAGE + "junk</a>");
    assert.deepEqual(c.events.map((e) => e.kind), ["start", "end"]);
  });

  it("restarts the stream after reset()", () => {
    const c = collect();
    c.parser.write(HEADER + MESSAGE + "<a");
    assert.equal(c.elements.length, 1);
    c.parser.reset();
    assert.equal(c.parser.started, false);
    assert.equal(c.parser.streamHeader, null);
    c.parser.write(`<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='${NS.STREAMS}' id='2'>`);
    c.parser.write(MESSAGE);
    assert.equal(c.errors.length, 0);
    assert.equal(c.headers.length, 2);
    assert.equal(c.headers[1]!.contentNs, NS.SERVER);
    assert.equal(c.headers[1]!.attrs.id, "2");
    assert.equal(c.elements.length, 2);
    assert.equal(c.elements[1]!.ns, NS.SERVER);
    assert.equal(c.raws[1], MESSAGE);
  });

  it("does not take a mismatched end tag for </stream:stream>", () => {
    for (const close of ["</foo>", "</stream:streams>", "</stream>", "</message>"]) {
      const c = run(HEADER + PRESENCE + close);
      assert.deepEqual(c.events.map((e) => e.kind), ["start", "element", "error"], close);
      assert.equal(c.errors[0]!.condition, "not-well-formed");
    }
    const ok = run(HEADER + "</stream:stream\t\n>");
    assert.equal(ok.ends, 1);
  });

  it("restarts when reset() is called from onStreamEnd", () => {
    const kinds: string[] = [];
    const parser: StreamParser = new StreamParser({
      onStreamStart: () => kinds.push("start"),
      onElement: () => kinds.push("element"),
      onStreamEnd: () => {
        kinds.push("end");
        parser.reset();
      },
      onError: () => kinds.push("error"),
    });
    parser.write(HEADER + "</stream:stream>" + HEADER + PRESENCE);
    assert.deepEqual(kinds, ["start", "end", "start", "element"]);
  });

  it("reports a handler's exception as internal-server-error, once, without throwing", () => {
    const errors: StreamError[] = [];
    let calls = 0;
    const parser = new StreamParser({
      onStreamStart() {},
      onElement() {
        calls++;
        throw new TypeError("cannot read the doctype of undefined");
      },
      onStreamEnd() {},
      onError: (e) => errors.push(e),
    });
    parser.write(HEADER + PRESENCE + PRESENCE);
    parser.write(PRESENCE);
    assert.equal(calls, 1);
    assert.equal(errors.length, 1);
    assert.equal(errors[0]!.condition, "internal-server-error");
  });

  it("lets a handler end the stream with a StreamError of its choice", () => {
    const errors: StreamError[] = [];
    const parser = new StreamParser({
      onStreamStart() {},
      onElement() {
        throw new StreamError("not-authorized", "handshake first");
      },
      onStreamEnd() {},
      onError: (e) => errors.push(e),
    });
    parser.write(HEADER + PRESENCE);
    assert.equal(errors.length, 1);
    assert.equal(errors[0]!.condition, "not-authorized");
  });

  it("restarts after </stream:stream> and reset()", () => {
    const c = run(HEADER + "</stream:stream>");
    c.parser.reset();
    c.parser.write(HEADER + PRESENCE);
    assert.equal(c.errors.length, 0);
    assert.deepEqual(c.events.map((e) => e.kind), ["start", "end", "start", "element"]);
  });

  it("restarts when reset() is called from onElement with the new header in the same chunk", () => {
    const events: string[] = [];
    const parser: StreamParser = new StreamParser({
      onStreamStart: (h) => events.push("start " + h.contentNs),
      onElement: (el, raw) => {
        events.push(`el ${el.ns} ${raw}`);
        if (el.local === "auth") parser.reset();
      },
      onStreamEnd: () => events.push("end"),
      onError: (e) => events.push("error " + e.message),
    });
    parser.write(
      HEADER + `<auth xmlns='${NS.SASL}'/>` +
      `<stream:stream xmlns='jabber:server' xmlns:stream='${NS.STREAMS}'>` + PRESENCE,
    );
    assert.deepEqual(events, [
      "start jabber:client",
      `el ${NS.SASL} <auth xmlns='${NS.SASL}'/>`,
      "start jabber:server",
      `el jabber:server ${PRESENCE}`,
    ]);
  });
});

describe("shallow mode", () => {
  const input = HEADER + RICH.slice(HEADER.length);

  it("gives top-level attributes and the same raw, without child elements", () => {
    const deep = run(input);
    const shallow = run(input, { shallow: true });
    assert.equal(shallow.errors.length, 0);
    assert.deepEqual(shallow.raws, deep.raws);
    assert.equal(shallow.elements.length, deep.elements.length);
    for (let i = 0; i < deep.elements.length; i++) {
      const s = shallow.elements[i]!;
      const d = deep.elements[i]!;
      assert.equal(s.name, d.name);
      assert.equal(s.ns, d.ns);
      assert.deepEqual(s.attrs, d.attrs);
      assert.equal(s.getChildren().length, 0, `element ${i} has no child elements`);
      // parseElement(raw) gives back the whole tree.
      assert.deepEqual(plain(parseElement(shallow.raws[i]!, NS.CLIENT)), plain(d));
    }
  });

  it("keeps the top-level element's own text (component handshake)", () => {
    const c = run(`<stream:stream xmlns='${NS.COMPONENT}' xmlns:stream='${NS.STREAMS}'><handshake>abc&amp;123</handshake>`, { shallow: true });
    assert.equal(c.elements[0]!.text(), "abc&123");
    assert.equal(c.raws[0], "<handshake>abc&amp;123</handshake>");
  });

  it("still enforces well-formedness and limits below the top level", () => {
    assert.equal(onlyError(run(HEADER + "<message><a><b></a></message>", { shallow: true })).condition, "not-well-formed");
    assert.equal(onlyError(run(HEADER + "<message><a><b/></a></message>", { shallow: true, maxDepth: 2 })).condition, "policy-violation");
    assert.equal(onlyError(run(HEADER + "<message><a>&foo;</a></message>", { shallow: true })).condition, "restricted-xml");
  });
});

describe("end()", () => {
  it("reports a stanza cut by the connection closing", () => {
    const c = run(HEADER + "<message><body>hi");
    c.parser.end();
    assert.equal(onlyError(c).condition, "not-well-formed");
  });

  it("reports a tag cut in its name", () => {
    const c = run(HEADER + MESSAGE + "<mess");
    c.parser.end();
    assert.equal(c.elements.length, 1);
    assert.equal(onlyError(c).condition, "not-well-formed");
  });

  it("is silent between stanzas and after the end", () => {
    const a = run(HEADER + MESSAGE + "\n");
    a.parser.end();
    assert.equal(a.errors.length, 0);
    const b = run(HEADER + "</stream:stream>");
    b.parser.end();
    assert.equal(b.errors.length, 0);
  });
});

describe("parseElement", () => {
  it("parses one element in the component namespace by default", () => {
    const el = parseElement("<message to='a@b'><body>hi &amp; bye</body></message>");
    assert.equal(el.ns, NS.COMPONENT);
    assert.equal(el.attrs.to, "a@b");
    assert.equal(el.getChild("body", NS.COMPONENT)?.text(), "hi & bye");
  });

  it("uses the given content namespace and tolerates surrounding whitespace", () => {
    const el = parseElement("\n  <iq><query xmlns='urn:q'/></iq>\n", NS.CLIENT);
    assert.equal(el.ns, NS.CLIENT);
    assert.equal(el.getChild("query")?.ns, "urn:q");
  });

  it("throws a StreamError on bad input", () => {
    const cases: Array<[string, string]> = [
      ["", "not-well-formed"],
      ["   ", "not-well-formed"],
      ["<a>", "not-well-formed"],
      ["<a><b></a>", "not-well-formed"],
      ["<a/><b/>", "not-well-formed"],
      ["<a>&foo;</a>", "restricted-xml"],
      ["<a><!-- x --></a>", "restricted-xml"],
      ["<!DOCTYPE a><a/>", "restricted-xml"],
      ["<x:a/>", "not-well-formed"],
      ["text", "bad-format"],
      ["<a/>text", "bad-format"],
      ["</stream:stream>", "not-well-formed"],
    ];
    for (const [input, condition] of cases) {
      assert.throws(() => parseElement(input), (e: unknown) => {
        assert.ok(e instanceof StreamError, `${JSON.stringify(input)} throws a StreamError`);
        assert.equal(e.condition, condition, JSON.stringify(input));
        return true;
      });
    }
  });

  it("applies limits", () => {
    assert.throws(() => parseElement("<a><b><c/></b></a>", NS.COMPONENT, { maxDepth: 2 }), (e: unknown) =>
      e instanceof StreamError && e.condition === "policy-violation");
    assert.throws(() => parseElement("<a>" + "x".repeat(100) + "</a>", NS.COMPONENT, { maxStanzaBytes: 50 }), (e: unknown) =>
      e instanceof StreamError && e.condition === "policy-violation");
    assert.equal(parseElement("<a><b/></a>", NS.COMPONENT, { maxDepth: 2 }).local, "a");
  });

  it("accepts a content namespace that needs escaping", () => {
    const el = parseElement("<a/>", "urn:x?a='1'&b=2");
    assert.equal(el.ns, "urn:x?a='1'&b=2");
  });

  it("round-trips through serialize", () => {
    const el = parseElement(IQ, NS.CLIENT);
    assert.deepEqual(plain(parseElement(serialize(el), NS.CLIENT)), plain(el));
  });
});

describe("errors stop the parser", () => {
  it("delivers elements before the error, none after, and reports once", () => {
    const c: Collector = run(HEADER + MESSAGE + "<a></b>" + PRESENCE);
    assert.deepEqual(c.events.map((e) => e.kind), ["start", "element", "error"]);
    c.parser.write(PRESENCE);
    c.parser.write("<!DOCTYPE x>");
    c.parser.write(new Uint8Array([0xff, 0xfe]));
    c.parser.end();
    c.parser.reset();
    c.parser.write(HEADER + PRESENCE);
    assert.deepEqual(c.events.map((e) => e.kind), ["start", "element", "error"]);
  });

  it("reports several problems in one chunk as one error", () => {
    const c = run(HEADER + "<a b='1' b='2' x:y='3' z=4 &bad; <!-- -->");
    assert.equal(c.errors.length, 1);
  });

  it("reports the first problem's condition", () => {
    assert.equal(onlyError(run(HEADER + "<a><!-- c --></b>")).condition, "restricted-xml");
    assert.equal(onlyError(run(HEADER + "<a></b><!-- c -->")).condition, "not-well-formed");
  });
});
