import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { parseElement } from "@jabberfarm/xml";
import { ConfirmedReceiver, ConfirmedSender, readAck } from "./confirm.js";

const parse = (text: string) => parseElement(text);

/** A sender and a receiver joined by a lossy, inspectable wire. */
function pair(o: { resendAfterMs?: number } = {}) {
  const wire: string[] = [];
  const acks: string[] = [];
  let linkUp = true;
  const sender = new ConfirmedSender((t) => {
    if (!linkUp) return false;
    wire.push(t);
    return true;
  }, { resendAfterMs: o.resendAfterMs ?? 60_000, maxSends: 3 });
  const receiver = new ConfirmedReceiver("sm/b", (t) => {
    acks.push(t);
    return true;
  }, { flushMs: 1 });
  const build = (body: string) => (c: string) => `<route xmlns='urn:jabberfarm:envelope:1' from='c2s/a' to='u@x' sid='s'${c}><message xmlns='jabber:client'>${body}</message></route>`;
  /** Delivers wire[i] to the receiver; returns whether it was new, acknowledging it when `handle`. */
  const deliver = (text: string, handle = true): boolean => {
    const el = parse(text);
    const r = receiver.receive(el.attrs.from!, el.attrs.seq, el.attrs.low);
    assert.ok(r, "confirmation attributes present");
    if (r.receipt === "new" && handle) receiver.handled(r.ticket);
    return r.receipt === "new";
  };
  const flushAcks = () => {
    receiver.flush();
    for (const a of acks.splice(0)) sender.acknowledge(readAck(parse(a), sender.epoch));
  };
  return { wire, acks, sender, receiver, build, deliver, flushAcks, setLink: (up: boolean) => { linkUp = up; } };
}

describe("confirmed delivery", () => {
  test("low is the lowest number still held, whatever order the acknowledgements come in", () => {
    const p = pair();
    const lowOf = (text: string) => Number(parse(text).attrs.low);
    const send = () => {
      p.sender.send(p.build("x"));
      return lowOf(p.wire[p.wire.length - 1]!);
    };
    assert.equal(send(), 1, "nothing held: the number itself");
    for (let i = 0; i < 4; i++) send(); // 1..5 held
    p.sender.acknowledge([2, 3]);
    assert.equal(send(), 1, "1 is still held"); // 6
    p.sender.acknowledge([1]);
    assert.equal(send(), 4); // 7
    p.sender.settleBounce(`${p.sender.epoch}.4`);
    p.sender.acknowledge([5, 7]);
    assert.equal(send(), 6); // 8
    p.sender.acknowledge([6, 8]);
    assert.equal(send(), 9, "all settled: the number itself");
    // A long window acknowledged from the front, as in a burst: low follows.
    for (let i = 0; i < 5000; i++) send();
    p.sender.acknowledge(Array.from({ length: 4000 }, (_, i) => 9 + i));
    assert.equal(send(), 4009);
  });

  test("a window: full at its size, open again once no more than half is held, however it settles", async () => {
    const sender = new ConfirmedSender(() => true, { window: 4, resendAfterMs: 60_000 });
    try {
      const build = (c: string) => `<route xmlns='urn:jabberfarm:envelope:1'${c}/>`;
      const ns = [1, 2, 3].map(() => sender.send(build));
      assert.equal(sender.full, false);
      ns.push(sender.send(build));
      assert.equal(sender.full, true);
      let open = false;
      const opened = sender.whenOpen().then(() => (open = true));
      assert.strictEqual(sender.whenOpen(), sender.whenOpen(), "one promise for everyone waiting");
      sender.acknowledge([ns[0]!]);
      await Promise.resolve();
      assert.equal(open, false, "three held: more than half");
      assert.equal(sender.full, false);
      // A bounce settles as an acknowledgement does.
      sender.settleBounce(`${sender.epoch}.${ns[1]}`);
      await opened;
      assert.equal(sender.size, 2);
      const unbounded = new ConfirmedSender(() => true);
      for (let i = 0; i < 10; i++) unbounded.send(build);
      assert.equal(unbounded.full, false, "no window: never full");
      await unbounded.whenOpen();
      unbounded.stop();
    } finally {
      sender.stop();
    }
  });

  test("holds what was sent until acknowledged, then forgets it", () => {
    const p = pair();
    p.sender.send(p.build("1"));
    p.sender.send(p.build("2"));
    assert.equal(p.sender.size, 2);
    assert.equal(p.deliver(p.wire[0]!), true);
    assert.equal(p.deliver(p.wire[1]!), true);
    p.flushAcks();
    assert.equal(p.sender.size, 0);
    p.sender.stop();
    p.receiver.stop();
  });

  test("a link lost resends what is unacknowledged, and the copy is dropped by the receiver", () => {
    const p = pair();
    for (let i = 0; i < 5; i++) p.sender.send(p.build(String(i)));
    // The first three arrived and were handled; the acks were lost with the link.
    for (const t of p.wire.slice(0, 3)) assert.equal(p.deliver(t), true);
    p.receiver.flush();
    p.acks.length = 0;
    p.wire.length = 0;
    p.sender.linkLost();
    assert.equal(p.wire.length, 5, "everything unacknowledged goes again");
    const fresh = p.wire.map((t) => p.deliver(t));
    assert.deepEqual(fresh, [false, false, false, true, true], "copies of handled ones are dropped");
    p.flushAcks();
    assert.equal(p.sender.size, 0, "the duplicates were acknowledged again");
    assert.ok(p.receiver.duplicates >= 3);
    p.sender.stop();
    p.receiver.stop();
  });

  test("a copy of one still being handled is dropped and acknowledged only once handled", () => {
    const p = pair();
    p.sender.send(p.build("x"));
    const el = parse(p.wire[0]!);
    const first = p.receiver.receive(el.attrs.from!, el.attrs.seq, el.attrs.low)!;
    assert.equal(first.receipt, "new");
    assert.equal(p.receiver.receive(el.attrs.from!, el.attrs.seq, el.attrs.low)!.receipt, "duplicate");
    p.receiver.flush();
    assert.equal(p.acks.length, 0, "not acknowledged before it is handled");
    p.receiver.handled(first.ticket);
    p.flushAcks();
    assert.equal(p.sender.size, 0);
    p.sender.stop();
    p.receiver.stop();
  });

  test("no link: nothing is held and the caller is told", () => {
    const p = pair();
    p.setLink(false);
    assert.equal(p.sender.send(p.build("1")), 0);
    assert.equal(p.sender.size, 0);
    p.sender.stop();
    p.receiver.stop();
  });

  test("send answers each element's number, pending until acknowledged", () => {
    const p = pair();
    const a = p.sender.send(p.build("1"));
    const b = p.sender.send(p.build("2"));
    assert.ok(a > 0 && b === a + 1);
    assert.ok(p.sender.isPending(a) && p.sender.isPending(b));
    p.sender.acknowledge([a]);
    assert.ok(!p.sender.isPending(a) && p.sender.isPending(b));
    p.sender.stop();
    p.receiver.stop();
  });

  test("resends after a while on a link that stayed up, and gives up after maxSends", async () => {
    const p = pair({ resendAfterMs: 40 });
    p.sender.send(p.build("1"));
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(p.wire.length, 3, "sent three times in all");
    assert.equal(p.sender.size, 0, "then given up");
    p.sender.stop();
    p.receiver.stop();
  });

  test("the receiver forgets numbers below the sender's low mark, and a restarted sender is a new peer", () => {
    const p = pair();
    for (let i = 0; i < 100; i++) {
      p.sender.send(p.build(String(i)));
      p.deliver(p.wire.at(-1)!);
      p.flushAcks();
    }
    // Numbers below `low` are settled: a stale copy of one is a duplicate even once forgotten.
    assert.equal(p.deliver(p.wire[0]!), false);
    const restarted = new ConfirmedSender(() => true);
    assert.notEqual(restarted.epoch, p.sender.epoch);
    const t = restarted.send((c) => `<route xmlns='urn:jabberfarm:envelope:1' from='c2s/a' to='u@x' sid='s'${c}><message xmlns='jabber:client'/></route>`);
    assert.ok(t);
    restarted.stop();
    p.sender.stop();
    p.receiver.stop();
  });

  test("acknowledgements of another epoch are ignored", () => {
    const p = pair();
    p.sender.send(p.build("1"));
    p.sender.acknowledge(readAck(parse("<ack xmlns='urn:jabberfarm:envelope:1' from='sm/b' to='c2s/a' ep='00000000'>1</ack>"), p.sender.epoch));
    assert.equal(p.sender.size, 1);
    p.sender.stop();
    p.receiver.stop();
  });
});
