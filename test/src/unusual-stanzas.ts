/**
 * Random stanzas a hostile (or just odd) client may send: well-formed XML
 * that uses what XMPP allows but a careless reader trips on. CDATA,
 * prefixes declared here and there, deep nesting, large attributes, many
 * namespaces, entities and character references, every stanza kind, and
 * now and then something the farm must refuse (a comment ends the stream).
 * Seeded, so a failure can be replayed.
 */

export function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const TARGETS = [
  "bob@localhost", "bob@localhost/b", "nobody@localhost", "localhost", "echo@bot.localhost",
  "someone@remote.example", "mallory@localhost", "", "@@bad", "bob@localhost/" + "r".repeat(40),
];
const TEXTS = ["plain", "&amp; &lt; &gt; &quot; &apos;", "&#65;&#x263A;&#128512;", "日本語", "]]&gt;", "\t\n", ">>>", "a'b\"c"];

export interface UnusualStanza {
  text: string;
  /** The farm ends the stream for it (restricted XML), rather than answering or delivering. */
  endsStream: boolean;
}

export function unusualStanza(rand: () => number): UnusualStanza {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  if (rand() < 0.03) return { text: "<message to='bob@localhost'><!-- a comment --><body>x</body></message>", endsStream: true };
  const kind = pick(["message", "presence", "iq"] as const);
  const to = pick(TARGETS);
  const attrs: string[] = [];
  if (to !== "" || rand() < 0.5) attrs.push(`to='${to}'`);
  attrs.push(`id='u${Math.floor(rand() * 1e9)}'`);
  if (kind === "iq") attrs.push(`type='${pick(["get", "set", "result", "error", "bogus"])}'`);
  else if (rand() < 0.5) attrs.push(`type='${pick(kind === "message" ? ["chat", "normal", "headline", "groupchat", "error", "odd"] : ["unavailable", "probe", "subscribe", "error", "odd"])}'`);
  if (rand() < 0.2) attrs.push(`xml:lang='${pick(["en", "fr-CA", "x-klingon"])}'`);
  if (rand() < 0.1) attrs.push(`big='${"v".repeat(Math.floor(rand() * 60_000))}'`);
  let inner = "";
  const parts = 1 + Math.floor(rand() * 4);
  for (let i = 0; i < parts; i++) inner += payload(rand, pick, 0);
  return { text: `<${kind} ${attrs.join(" ")}>${inner}</${kind}>`, endsStream: false };
}

function payload(rand: () => number, pick: <T>(xs: readonly T[]) => T, depth: number): string {
  const r = rand();
  if (r < 0.15) return `<body>${pick(TEXTS)}</body>`;
  if (r < 0.25) return `<body><![CDATA[${pick(["<b>x</b>", "& raw", "]]", "<<<>>>"])}]]></body>`;
  if (r < 0.35) {
    // A prefix declared on the element itself, used below it.
    const p = pick(["x", "y", "stream", "db"]);
    return `<${p}:thing xmlns:${p}='urn:example:${p}' ${p}:attr='${pick(TEXTS).replace(/'/g, "&apos;")}'><${p}:inner/></${p}:thing>`;
  }
  if (r < 0.45) {
    // Deep, up to what the parser allows (32 levels in all).
    const n = 1 + Math.floor(rand() * 28);
    return `${"<d xmlns='urn:example:deep'>".repeat(n)}x${"</d>".repeat(n)}`;
  }
  if (r < 0.55) {
    let s = "<many";
    for (let i = 0; i < 20; i++) s += ` xmlns:n${i}='urn:example:n${i}'`;
    return `${s}><n3:a n7:b='1'/></many>`;
  }
  if (r < 0.62) return "<x xmlns='urn:jabberfarm:envelope:1' op='credentials.set'>{}</x>";
  if (r < 0.7) return `<query xmlns='${pick(["jabber:iq:roster", "http://jabber.org/protocol/disco#info", "jabber:iq:private", "vcard-temp", "urn:xmpp:blocking"])}'/>`;
  if (r < 0.78 && depth < 3) return `<wrap xmlns='urn:example:w'>${payload(rand, pick, depth + 1)}${payload(rand, pick, depth + 1)}</wrap>`;
  if (r < 0.85) return `<status>${"s".repeat(Math.floor(rand() * 5000))}</status>`;
  if (r < 0.9) return "<e xmlns=''>no namespace</e>";
  return pick(TEXTS);
}
