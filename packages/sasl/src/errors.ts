/**
 * The SASL failure conditions of RFC 6120 §6.5. A c2s turns a thrown
 * `SaslError` into `<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><{condition}/></failure>`.
 */
export type SaslCondition =
  | "aborted"
  | "account-disabled"
  | "credentials-expired"
  | "encryption-required"
  | "incorrect-encoding"
  | "invalid-authzid"
  | "invalid-mechanism"
  | "malformed-request"
  | "mechanism-too-weak"
  | "not-authorized"
  | "temporary-auth-failure";

export const SASL_CONDITIONS: readonly SaslCondition[] = [
  "aborted",
  "account-disabled",
  "credentials-expired",
  "encryption-required",
  "incorrect-encoding",
  "invalid-authzid",
  "invalid-mechanism",
  "malformed-request",
  "mechanism-too-weak",
  "not-authorized",
  "temporary-auth-failure",
];

/**
 * Every failure a client can cause is reported as a SaslError. The message is
 * meant for logs; it never contains a password, and for authentication
 * failures it is identical whether the account exists or not.
 */
export class SaslError extends Error {
  override readonly name = "SaslError";
  readonly condition: SaslCondition;

  constructor(condition: SaslCondition, message?: string, options?: { cause?: unknown }) {
    super(message ?? condition, options);
    this.condition = condition;
  }
}
