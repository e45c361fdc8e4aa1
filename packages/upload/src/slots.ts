/**
 * XEP-0363 on the XMPP side: the service's disco#info (with max-file-size)
 * and slot requests, checked against the size limit, the name and type
 * rules and the user's quota, and answered with a signed PUT URL and the
 * GET URL.
 *
 * The quota ledger is a keyed store in xdb per uploader (`upload.files`:
 * file id → size, type, name, when, PUT deadline, stored?), so it holds
 * across upload processes; the number of files is bounded by the store's
 * own quota (atomic), the bytes by summing the ledger before adding to
 * it. Slot requests go to one upload process (the router hashes the
 * service's JID), which runs each user's requests in order, so two
 * requests of one user cannot both pass the byte quota.
 */
import type { Logger } from "pino";
import { formElement } from "@jabberfarm/dataform";
import { Jid } from "@jabberfarm/jid";
import type { KeyedStore } from "@jabberfarm/xdb";
import { canBounce, stanzaErrorReply, xml, type Element, type StanzaErrorCondition } from "@jabberfarm/xml";
import type { FileBackend } from "./backend.js";
import { publicUrlOf, parentDomain, type UploadConfig } from "./config.js";
import { newFileId, signSlot, type Slot } from "./slot-token.js";

export const NS_UPLOAD = "urn:xmpp:http:upload:0";
const NS_DISCO_INFO = "http://jabber.org/protocol/disco#info";

export interface LedgerEntry {
  size: number;
  type: string;
  name: string;
  at: string;
  /** ms since the epoch after which the PUT URL no longer works. */
  deadline: number;
  stored?: boolean;
}

/** A media type without parameters (RFC 6838 names). */
const CONTENT_TYPE = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$/;

/** A file name a client may give: not empty, no path, no control characters, at most 255 bytes. */
export function acceptableName(name: string): boolean {
  // eslint-disable-next-line no-control-regex
  return name !== "" && name !== "." && name !== ".." && Buffer.byteLength(name) <= 255 && !/[/\\\u0000-\u001f\u007f]/.test(name);
}

export class SlotService {
  private readonly queue = new Map<string, Promise<unknown>>();
  private readonly userDomains: ReadonlySet<string>;
  readonly baseUrl: URL;

  constructor(
    private readonly config: UploadConfig,
    readonly ledger: KeyedStore,
    private readonly backend: FileBackend,
    private readonly send: (el: Element) => void,
    private readonly log: Logger,
  ) {
    this.userDomains = new Set(config.userDomains ?? [parentDomain(config.service)]);
    this.baseUrl = publicUrlOf(config);
  }

  handle(el: Element): void {
    if (el.name !== "iq") {
      if (el.name === "message") this.error(el, "service-unavailable", "this service takes slot requests (XEP-0363) only");
      return;
    }
    const type = el.attrs.type;
    if (type === "result" || type === "error") return;
    const from = el.attrs.from === undefined ? null : Jid.tryParse(el.attrs.from);
    if (from === null) return this.error(el, "jid-malformed");
    const query = el.firstElement();
    if (type === "get" && query?.local === "query" && query.ns === NS_DISCO_INFO && !query.attrs.node) return this.discoInfo(el);
    if (type === "get" && query?.local === "request" && query.ns === NS_UPLOAD) {
      const user = from.bareString();
      const prev = this.queue.get(user) ?? Promise.resolve();
      const run = prev.then(() => this.request(el, query, from));
      const tail = run.catch((err: unknown) => {
        this.log.error({ err: (err as Error).message, user }, "slot request failed");
        this.error(el, "internal-server-error", "the slot could not be made");
      });
      this.queue.set(user, tail);
      void tail.then(() => {
        if (this.queue.get(user) === tail) this.queue.delete(user);
      });
      return;
    }
    this.error(el, "service-unavailable");
  }

  private discoInfo(iq: Element): void {
    this.send(xml("iq", { type: "result", id: iq.attrs.id, from: this.config.service, to: iq.attrs.from },
      xml("query", { xmlns: NS_DISCO_INFO },
        xml("identity", { category: "store", type: "file", name: "HTTP File Upload" }),
        xml("feature", { var: NS_UPLOAD }),
        xml("feature", { var: NS_DISCO_INFO }),
        formElement("result", { formType: NS_UPLOAD, fields: [{ var: "max-file-size", values: [String(this.config.limits.maxFileBytes)] }] }))));
  }

  private async request(iq: Element, req: Element, from: Jid): Promise<void> {
    const limits = this.config.limits;
    const user = from.bareString();
    if (!this.userDomains.has(from.domain)) return this.error(iq, "not-allowed", `only users of ${[...this.userDomains].join(", ")} may upload here`);
    const name = req.attrs.filename ?? "";
    if (!acceptableName(name)) return this.error(iq, "bad-request", "a file name without '/', control characters, of at most 255 bytes");
    const size = Number(req.attrs.size);
    if (!Number.isSafeInteger(size) || size < 1) return this.error(iq, "bad-request", "size is the file's length in bytes");
    if (size > limits.maxFileBytes) {
      // XEP-0363 §4.1: the limit travels with the refusal.
      const reply = stanzaErrorReply(iq, "not-acceptable", { text: `the file is larger than ${limits.maxFileBytes} bytes` });
      reply.getChild("error")!.append(xml("file-too-large", { xmlns: NS_UPLOAD }, xml("max-file-size", {}, String(limits.maxFileBytes))));
      delete reply.attrs.xmlns;
      return this.send(reply);
    }
    const type = (req.attrs["content-type"] ?? "").toLowerCase();
    if (type !== "" && !CONTENT_TYPE.test(type)) return this.error(iq, "bad-request", "content-type is a media type like image/jpeg");

    const used = await this.usage(user);
    if (used + size > limits.userQuotaBytes) {
      return this.error(iq, "resource-constraint", `upload quota exceeded: ${used} of ${limits.userQuotaBytes} bytes in use`);
    }
    const slot: Slot = { id: newFileId(), name, size, type, owner: user, expires: Math.floor(Date.now() / 1000) + limits.slotSeconds };
    const entry: LedgerEntry = { size, type, name, at: new Date().toISOString(), deadline: slot.expires * 1000 };
    const written = await this.ledger.set(user, slot.id, JSON.stringify(entry));
    if (!written.ok) return this.error(iq, "resource-constraint", `upload quota exceeded: at most ${limits.userMaxFiles} files`);
    const encodedName = encodeURIComponent(name);
    const put = new URL(`u/${signSlot(this.config.urlSecret, slot)}/${encodedName}`, this.baseUrl).toString();
    const get = new URL(`f/${slot.id}/${encodedName}`, this.baseUrl).toString();
    this.send(xml("iq", { type: "result", id: iq.attrs.id, from: this.config.service, to: iq.attrs.from },
      xml("slot", { xmlns: NS_UPLOAD }, xml("put", { url: put }), xml("get", { url: get }))));
    this.log.debug({ user, id: slot.id, size }, "slot given");
  }

  /**
   * Bytes the user's files and live slots take. A slot whose PUT URL has
   * expired counts only if its file arrived (the ledger is corrected on
   * the way); otherwise its entry goes.
   */
  async usage(user: string): Promise<number> {
    let total = 0;
    const now = Date.now();
    const stale: string[] = [];
    for await (const e of this.ledger.entries(user)) {
      let entry: LedgerEntry;
      try {
        entry = JSON.parse(e.value) as LedgerEntry;
      } catch {
        stale.push(e.key);
        continue;
      }
      if (entry.stored || entry.deadline > now) {
        total += entry.size;
      } else if (await this.backend.exists(e.key)) {
        total += entry.size;
        await this.ledger.set(user, e.key, JSON.stringify({ ...entry, stored: true }));
      } else {
        stale.push(e.key);
      }
    }
    if (stale.length > 0) await this.ledger.setMany(user, stale.slice(0, 100).map((key) => ({ key, value: null })));
    return total;
  }

  /** The PUT arrived: the ledger entry stays until the file expires. */
  async stored(slot: Slot): Promise<void> {
    const entry: LedgerEntry = { size: slot.size, type: slot.type, name: slot.name, at: new Date().toISOString(), deadline: slot.expires * 1000, stored: true };
    await this.ledger.set(slot.owner, slot.id, JSON.stringify(entry));
  }

  private error(stanza: Element, condition: StanzaErrorCondition, text?: string): void {
    if (!canBounce(stanza)) return;
    const reply = stanzaErrorReply(stanza, condition, text === undefined ? {} : { text });
    delete reply.attrs.xmlns;
    this.send(reply);
  }
}
