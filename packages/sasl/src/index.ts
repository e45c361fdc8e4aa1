export { SaslError, SASL_CONDITIONS, type SaslCondition } from "./errors.js";
export { saslprep, type SaslprepOptions } from "./saslprep.js";
export { decodeSaslPayload, encodeSaslPayload } from "./base64.js";
export { SCRAM_MECHANISMS, isScramMechanism, type ScramMechanism } from "./mechanism.js";
export {
  DEFAULT_ITERATIONS,
  DEFAULT_SALT_BYTES,
  MIN_ITERATIONS,
  MIN_SALT_BYTES,
  decodeCredential,
  deriveCredential,
  deriveCredentialAsync,
  deriveCredentials,
  deriveCredentialsAsync,
  verifyPlain,
  verifyPlainAsync,
  type DecodedCredential,
  type DeriveOptions,
  type ScramCredential,
} from "./credentials.js";
export { ScramServer, type CredentialLookup, type ScramServerOptions } from "./scram.js";
export { ScramClient, type ScramClientOptions } from "./scram-client.js";
export { parsePlain, type PlainMessage } from "./plain.js";
export { randomToken } from "./random-token.js";
