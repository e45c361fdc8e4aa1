// Run as a child process by tls.ts: makes a self-signed certificate for the
// domain given (node-forge, through selfsigned) and writes the PEMs to
// stdout as JSON, so that forge's code and the garbage of making a key leave
// with the process instead of staying in every c2s, s2s and upload that
// made one (~10 MB each; docs/performance.md, "Memory at start").
import { generate } from "selfsigned";

const [domain, notBefore, notAfter] = process.argv.slice(2);
if (!domain || !notBefore || !notAfter) {
  process.stderr.write("usage: self-signed-child DOMAIN NOT_BEFORE_ISO NOT_AFTER_ISO\n");
  process.exit(2);
}
const pems = await generate([{ name: "commonName", value: domain }], {
  keyType: "ec",
  curve: "P-256",
  algorithm: "sha256",
  notBeforeDate: new Date(notBefore),
  notAfterDate: new Date(notAfter),
  extensions: [
    { name: "basicConstraints", cA: false },
    { name: "keyUsage", digitalSignature: true, critical: true },
    { name: "extKeyUsage", serverAuth: true },
    { name: "subjectAltName", altNames: [{ type: 2, value: domain }] },
  ],
});
process.stdout.write(JSON.stringify({ cert: pems.cert, key: pems.private }));
