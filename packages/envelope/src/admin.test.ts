import { test } from "node:test";
import assert from "node:assert/strict";
import { NS, parseElement, type Element } from "@jabberfarm/xml";
import {
  AdminFailure, adminError, adminRequest, adminResult, answerAdmin, processFacts, readAdminReply, readAdminRequest, type AdminHandlers,
} from "./admin.js";
import { EnvelopeError } from "./envelope.js";

const parse = (text: string): Element => parseElement(text, NS.COMPONENT);

const session = {
  jid: "alice@localhost/phone", sid: "c2s-1.a1", c2s: "c2s/c2s-1", sm: "localhost/sm-1", available: true, priority: 5, since: "2024-01-01T00:00:00.000Z",
};

test("a request is built and read back with its op, type and validated parameters", () => {
  const text = adminRequest("q1", "kick", "cli/cli-7", "alice@localhost", { jid: "alice@localhost/phone" });
  assert.match(text, /^<admin xmlns='urn:jabberfarm:envelope:1' type='set' op='kick' id='q1' from='cli\/cli-7' to='alice@localhost'>/);
  const req = readAdminRequest(parse(text));
  assert.deepEqual(req, { id: "q1", op: "kick", from: "cli/cli-7", to: "alice@localhost", params: { jid: "alice@localhost/phone" } });
  assert.match(adminRequest("q2", "status", "cli/x", "router", {}), /type='get' op='status'/);
});

test("invalid requests are refused with a message naming what is wrong", () => {
  const bad = (text: string, re: RegExp): void => assert.throws(() => readAdminRequest(parse(text)), (e: Error) => e instanceof EnvelopeError && re.test(e.message));
  const ns = "xmlns='urn:jabberfarm:envelope:1'";
  bad(`<admin ${ns} type='get' op='reboot' id='1' from='a' to='b'>{}</admin>`, /unknown op 'reboot'/);
  bad(`<admin ${ns} type='get' op='kick' id='1' from='a' to='b'>{"jid":"a@b/c"}</admin>`, /type must be 'set'/);
  bad(`<admin ${ns} type='get' op='status' from='a' to='b'>{}</admin>`, /id, from and to/);
  bad(`<admin ${ns} type='get' op='status' id='1' from='a' to='b'>not json</admin>`, /not JSON/);
  bad(`<admin ${ns} type='get' op='status' id='1' from='a' to='b'>{"extra":1}</admin>`, /extra/);
  bad(`<admin ${ns} type='get' op='sessions' id='1' from='a' to='b'>{"user":"alice@localhost/phone"}</admin>`, /user: a bare JID/);
  bad(`<admin ${ns} type='set' op='kick' id='1' from='a' to='b'>{"jid":"alice@localhost"}</admin>`, /jid: a full JID/);
  bad("<admin xmlns='urn:other' type='get' op='status' id='1' from='a' to='b'>{}</admin>", /not an admin envelope/);
});

test("results and errors go back to the asker and are read against the op's schema", () => {
  const req = readAdminRequest(parse(adminRequest("q3", "sessions", "cli/cli-1", "alice@localhost", { user: "alice@localhost" })));
  const ok = parse(adminResult(req, "localhost/sm-1", { sessions: [session] }));
  assert.equal(ok.attrs.to, "cli/cli-1");
  assert.deepEqual(readAdminReply("sessions", ok), { type: "result", id: "q3", from: "localhost/sm-1", result: { sessions: [session] } });

  const err = parse(adminError(req, "localhost/sm-1", "item-not-found", "no session <x>"));
  assert.deepEqual(readAdminReply("sessions", err), { type: "error", id: "q3", from: "localhost/sm-1", condition: "item-not-found", text: "no session <x>" });

  // A result that does not match the schema is not believed.
  const wrong = parse(adminResult(req, "localhost/sm-1", { sessions: [{ ...session, priority: "high" }] } as never));
  assert.throws(() => readAdminReply("sessions", wrong), /bad result: sessions.0.priority/);
});

test("status results are told apart by process", () => {
  const req = readAdminRequest(parse(adminRequest("s", "status", "cli/c", "c2s/c2s-1", {})));
  const c2s = {
    process: "c2s" as const, address: "c2s/c2s-1", instance: "c2s-1", ...processFacts(),
    listeners: [{ kind: "starttls" as const, host: "127.0.0.1", port: 5222 }], clients: 2, sessions: 1,
  };
  assert.deepEqual(readAdminReply("status", parse(adminResult(req, "c2s/c2s-1", c2s))).type, "result");
  const asSm = parse(adminResult(req, "c2s/c2s-1", { ...c2s, process: "sm" } as never));
  assert.throws(() => readAdminReply("status", asSm), EnvelopeError);
  const facts = processFacts();
  assert.equal(facts.pid, process.pid);
  assert.ok(facts.rssBytes > 0);
});

test("answerAdmin serves the ops it has handlers for and answers everything else with an error", async () => {
  const sent: Element[] = [];
  const send = (t: string): void => void sent.push(parse(t));
  const handlers: AdminHandlers = {
    kick: ({ jid }) => {
      if (jid !== session.jid) throw new AdminFailure("item-not-found", `no session ${jid}`);
      return { kicked: session };
    },
    sessions: () => {
      throw new Error("storage on fire");
    },
  };
  const ask = (op: "kick" | "sessions" | "status", params: object, id: string = op): Promise<void> =>
    answerAdmin(parse(adminRequest(id, op, "cli/c", "alice@localhost", params as never)), "localhost/sm-1", handlers, send);

  await ask("kick", { jid: session.jid });
  await ask("kick", { jid: "alice@localhost/gone" }, "k2");
  await ask("status", {});
  await ask("sessions", { user: "alice@localhost" });
  await answerAdmin(parse("<admin xmlns='urn:jabberfarm:envelope:1' type='set' op='kick' id='k3' from='cli/c' to='x'>{}</admin>"), "localhost/sm-1", handlers, send);
  // An answer that reaches a process is never answered.
  await answerAdmin(parse(adminError({ id: "e", op: "kick", from: "localhost/sm-1" }, "cli/c", "bad-request")), "localhost/sm-1", handlers, send);

  const got = sent.map((el) => {
    const r = readAdminReply("kick", el);
    return [r.id, r.type === "result" ? "result" : r.condition, el.attrs.from, el.attrs.to];
  });
  assert.deepEqual(got, [
    ["kick", "result", "localhost/sm-1", "cli/c"],
    ["k2", "item-not-found", "localhost/sm-1", "cli/c"],
    ["status", "feature-not-implemented", "localhost/sm-1", "cli/c"],
    ["sessions", "internal-server-error", "localhost/sm-1", "cli/c"],
    ["k3", "bad-request", "localhost/sm-1", "cli/c"],
  ]);
});
