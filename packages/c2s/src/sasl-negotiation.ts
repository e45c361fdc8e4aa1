/**
 * SASL on a client stream (RFC 6120 §6): `<auth/>`, challenges and
 * responses, success (then a stream restart) or failure. A wrong password
 * is answered after a short fixed delay and counts towards the bans of the
 * address and the account (bans.ts).
 */
import { SaslError, decodeSaslPayload, encodeSaslPayload, type SaslCondition } from "@jabberfarm/sasl";
import { NS, StreamError, escapeText, type Element } from "@jabberfarm/xml";
import { SaslExchange, SaslRefusal, accountFor, isMechanism, type Mechanism, type SaslStep } from "./auth.js";
import { bannedError } from "./bans.js";
import type { ClientStream } from "./client-stream.js";

export class SaslNegotiation {
  private exchange: SaslExchange | undefined;
  private failures = 0;
  private failureTimer: NodeJS.Timeout | undefined;

  constructor(private readonly stream: ClientStream) {}

  onElement(el: Element): void {
    const stream = this.stream;
    switch (el.local) {
      case "auth": {
        this.exchange = undefined;
        // Its streams opened before the ban began end at their next try.
        const banned = stream.ctx.bans.addressBannedFor(stream.ip);
        if (banned > 0) return stream.fail(bannedError(banned));
        const mechanism = el.attrs.mechanism;
        if (!isMechanism(mechanism) || !stream.mechanisms().includes(mechanism)) {
          this.failure(mechanism === "PLAIN" ? "encryption-required" : "invalid-mechanism");
          return;
        }
        const text = el.text().trim();
        let data: Buffer | null;
        try {
          data = text === "" ? null : decodeSaslPayload(text);
        } catch (err) {
          this.failure(err instanceof SaslError ? err.condition : "incorrect-encoding");
          return;
        }
        this.exchange = new SaslExchange(mechanism, stream.ctx.sasl);
        this.run(this.exchange, data);
        return;
      }
      case "response": {
        const exchange = this.exchange;
        if (!exchange) {
          this.failure("malformed-request");
          return;
        }
        let data: Buffer;
        try {
          data = decodeSaslPayload(el.text());
        } catch (err) {
          this.exchange = undefined;
          this.failure(err instanceof SaslError ? err.condition : "incorrect-encoding");
          return;
        }
        this.run(exchange, data);
        return;
      }
      case "abort":
        this.exchange = undefined;
        this.failure("aborted");
        return;
      default:
        stream.fail(new StreamError("unsupported-stanza-type"));
    }
  }

  /** The stream is gone: no answer is due any more. */
  stop(): void {
    clearTimeout(this.failureTimer);
  }

  private run(exchange: SaslExchange, data: Buffer | null): void {
    const stream = this.stream;
    stream.setBusy(true);
    void exchange.step(data).then(
      (step) => {
        if (!stream.conn.isOpen || this.exchange !== exchange) return;
        if (step.type === "challenge") {
          stream.send(`<challenge xmlns='${NS.SASL}'>${step.data === "" ? "" : encodeSaslPayload(step.data)}</challenge>`);
          stream.setBusy(false);
        } else {
          this.authenticated(step, exchange.mechanism);
        }
      },
      (err: unknown) => {
        if (!stream.conn.isOpen) return;
        this.exchange = undefined;
        let condition: SaslCondition = "temporary-auth-failure";
        if (err instanceof SaslError) condition = err.condition;
        else stream.log.error({ err }, "SASL exchange failed unexpectedly");
        const refusal = err instanceof SaslRefusal ? err.message : undefined;
        if (condition === "temporary-auth-failure" && !refusal) stream.log.warn({ err: (err as Error).cause ?? err }, "authentication could not be checked");
        this.failure(condition, exchange.claimedUsername, refusal);
      },
    ).catch((err: unknown) => stream.crashed(err));
  }

  private authenticated(step: Extract<SaslStep, { type: "success" }>, mechanism: Mechanism): void {
    const stream = this.stream;
    stream.user = step.user;
    this.exchange = undefined;
    stream.log.info({ user: step.user.toString(), mechanism }, "authenticated");
    stream.send(`<success xmlns='${NS.SASL}'>${step.data === undefined ? "" : encodeSaslPayload(step.data)}</success>`);
    stream.restart();
    stream.setBusy(false);
  }

  /**
   * Answers `<failure/>` (with `text` for the client, if any) after a short
   * fixed delay for a wrong password, which also counts towards the bans of
   * the address and the account (bans.ts). A failure that bans the address,
   * or one too many on this stream, ends the stream.
   */
  failure(condition: SaslCondition, username?: string, text?: string): void {
    const stream = this.stream;
    const { ctx } = stream;
    this.failures++;
    ctx.metrics?.authFailures.inc({ reason: condition });
    const wrong = condition === "not-authorized";
    const account = wrong && username !== undefined ? accountFor(username, ctx.domain)?.toString() : undefined;
    const banned = wrong ? ctx.bans.failed(stream.ip, account) : undefined;
    stream.log.info({ user: username, condition, text, failures: this.failures }, "authentication failed");
    const answer = (): void => {
      this.failureTimer = undefined;
      if (!stream.conn.isOpen) return;
      stream.send(`<failure xmlns='${NS.SASL}'><${condition}/>${text ? `<text xml:lang='en'>${escapeText(text)}</text>` : ""}</failure>`);
      if (banned?.address) return stream.fail(bannedError(ctx.bans.addressBannedFor(stream.ip)));
      if (this.failures >= ctx.config.limits.maxAuthFailures) {
        stream.fail(new StreamError("policy-violation", "too many failed authentication attempts"));
        return;
      }
      stream.setBusy(false);
    };
    const delay = wrong ? ctx.config.limits.authFailureDelayMs : 0;
    if (delay > 0) {
      stream.setBusy(true);
      this.failureTimer = setTimeout(answer, delay);
    } else {
      answer();
    }
  }
}
