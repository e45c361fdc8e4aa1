/** Namespace names used across the farm (RFC 6120, XEP-0114). */
export const NS = {
  STREAMS: "http://etherx.jabber.org/streams",
  STREAM_ERRORS: "urn:ietf:params:xml:ns:xmpp-streams",
  STANZA_ERRORS: "urn:ietf:params:xml:ns:xmpp-stanzas",
  CLIENT: "jabber:client",
  SERVER: "jabber:server",
  COMPONENT: "jabber:component:accept",
  TLS: "urn:ietf:params:xml:ns:xmpp-tls",
  SASL: "urn:ietf:params:xml:ns:xmpp-sasl",
  BIND: "urn:ietf:params:xml:ns:xmpp-bind",
  XML: "http://www.w3.org/XML/1998/namespace",
} as const;
