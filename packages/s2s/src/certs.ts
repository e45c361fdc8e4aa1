/**
 * Certificates between servers (RFC 6125 as RFC 6120 §13.7.2 asks): a peer's
 * certificate is valid for a domain when it chains to a CA we trust (the
 * `tls.ca` bundle) and names the domain (DNS subjectAltName, wildcards one
 * label deep, else the CN, as Node's checkServerIdentity reads them). Only
 * then is SASL EXTERNAL offered or used; otherwise dialback.
 */
import { readFileSync } from "node:fs";
import { checkServerIdentity, createSecureContext, type PeerCertificate, type SecureContext, type TLSSocket } from "node:tls";
import type { Logger } from "pino";
import { loadTlsMaterial } from "@jabberfarm/c2s";
import type { S2sConfig } from "./config.js";

export interface S2sTls {
  cert: string;
  key: string;
  /** Trusted CAs (PEM), undefined for Node's roots. */
  ca: string[] | undefined;
  /** For the server side of STARTTLS and direct TLS. */
  serverContext: SecureContext;
  /** Whether the certificate we present was configured (not self-signed by us). */
  configured: boolean;
}

export async function loadS2sTls(config: S2sConfig, log: Logger): Promise<S2sTls> {
  const material = await loadTlsMaterial(config.tls, config.domains[0]!, log);
  const ca = config.tls.ca?.map((p) => readFileSync(p, "utf8"));
  const serverContext = createSecureContext({ cert: material.cert, key: material.key, ...(ca ? { ca } : {}) });
  return { cert: material.cert, key: material.key, ca, serverContext, configured: material.source === "configured" };
}

/** Whether the socket's peer presented a certificate that is trusted and names `domain`. */
export function peerValidFor(socket: TLSSocket, domain: string): boolean {
  const cert = socket.getPeerCertificate(false) as PeerCertificate | Record<string, never>;
  if (!cert || Object.keys(cert).length === 0) return false;
  return chainVerified(socket) && checkServerIdentity(domain, cert as PeerCertificate) === undefined;
}

/**
 * Whether OpenSSL verified the peer's chain against our CAs. A server-side
 * TLSSocket made over a plain socket (STARTTLS) never sets `authorized`
 * (Node does that only for a tls.Server's sockets), so the handle's own
 * verdict is read, as Node itself reads it.
 */
function chainVerified(socket: TLSSocket): boolean {
  if (socket.authorized) return true;
  const handle = (socket as unknown as { _handle?: { verifyError?: () => Error | null } })._handle;
  return handle?.verifyError?.() === null;
}
