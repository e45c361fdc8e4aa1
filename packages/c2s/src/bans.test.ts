import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AuthBans, FailureBans, addressKey, humanDuration, isAddressOrRange } from "./bans.js";

describe("FailureBans", () => {
  it("bans a key at the n-th failure within the window, for banMs, then counts afresh", () => {
    const b = new FailureBans({ failures: 3, windowMs: 1000, banMs: 5000 });
    assert.equal(b.fail("k", 0), false);
    assert.equal(b.fail("k", 100), false);
    assert.equal(b.bannedFor("k", 100), 0);
    assert.equal(b.fail("k", 200), true, "the third failure bans");
    assert.equal(b.bannedFor("k", 200), 5000);
    assert.equal(b.bannedFor("k", 5199), 1);
    assert.equal(b.fail("k", 3000), false, "failures while banned change nothing");
    assert.equal(b.bannedFor("k", 5200), 0, "over after banMs");
    assert.equal(b.fail("k", 5300), false, "counting starts over");
    assert.equal(b.bannedFor("other", 200), 0);
  });

  it("failures spread wider than the window never ban", () => {
    const b = new FailureBans({ failures: 3, windowMs: 1000, banMs: 5000 });
    for (let t = 0; t < 10_000; t += 600) assert.equal(b.fail("k", t), false);
  });

  it("failures: 0 turns the rule off", () => {
    const b = new FailureBans({ failures: 0, windowMs: 1000, banMs: 5000 });
    for (let i = 0; i < 50; i++) assert.equal(b.fail("k", i), false);
    assert.equal(b.bannedFor("k", 50), 0);
  });

  it("keeps at most maxKeys bans, dropping the oldest; sweep forgets ended ones", () => {
    const b = new FailureBans({ failures: 1, windowMs: 1000, banMs: 100 }, 2);
    b.fail("a", 0);
    b.fail("b", 1);
    b.fail("c", 2);
    assert.equal(b.size, 2);
    assert.equal(b.bannedFor("a", 3), 0);
    b.sweep(200);
    assert.equal(b.size, 0);
  });
});

describe("addressKey", () => {
  it("IPv4 and IPv4-mapped IPv6 alike; IPv6 by its /64", () => {
    assert.equal(addressKey("192.0.2.7"), "192.0.2.7");
    assert.equal(addressKey("::ffff:192.0.2.7"), "192.0.2.7");
    assert.equal(addressKey("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
    assert.equal(addressKey("2001:0db8:0001:0002:ffff:1:2:3"), "2001:db8:1:2::/64");
    assert.equal(addressKey("2001:db8::1"), "2001:db8:0:0::/64");
    assert.equal(addressKey("::1"), "0:0:0:0::/64");
    assert.equal(addressKey("fe80::1%eth0"), "fe80:0:0:0::/64");
  });
});

describe("AuthBans", () => {
  const rules = { address: { failures: 2, windowMs: 60_000, banMs: 60_000 }, account: { failures: 3, windowMs: 60_000, banMs: 30_000 } };

  it("bans addresses and accounts separately, and tells onBan once per ban", () => {
    const began: string[] = [];
    const bans = new AuthBans({ ...rules, exempt: [], onBan: (kind, key) => began.push(`${kind} ${key}`) });
    assert.deepEqual(bans.failed("192.0.2.1", "juliet@example.test", 0), { address: false, account: false });
    assert.deepEqual(bans.failed("192.0.2.1", "juliet@example.test", 1), { address: true, account: false });
    assert.equal(bans.addressBannedFor("192.0.2.1", 2), 59_999);
    assert.equal(bans.addressBannedFor("::ffff:192.0.2.1", 2), 59_999, "the mapped form is the same address");
    assert.deepEqual(bans.failed("192.0.2.2", "juliet@example.test", 3), { address: false, account: true });
    assert.equal(bans.accountBannedFor("juliet@example.test", 3), 30_000);
    assert.deepEqual(began, ["address 192.0.2.1", "account juliet@example.test"]);
    // Another address of the same IPv6 /64 shares its ban.
    bans.failed("2001:db8::1", undefined, 10);
    bans.failed("2001:db8::2", undefined, 11);
    assert.ok(bans.addressBannedFor("2001:db8::ffff", 12) > 0);
  });

  it("exempt addresses and ranges are never banned", () => {
    const bans = new AuthBans({ ...rules, exempt: ["127.0.0.0/8", "::1", "10.1.2.3"] });
    for (const ip of ["127.0.0.1", "127.9.9.9", "::ffff:127.0.0.1", "::1", "10.1.2.3"]) {
      for (let i = 0; i < 5; i++) bans.failed(ip, undefined, i);
      assert.equal(bans.addressBannedFor(ip, 10), 0, ip);
      assert.ok(bans.isExempt(ip), ip);
    }
    assert.equal(bans.isExempt("10.1.2.4"), false);
  });

  it("config entries: addresses and CIDR ranges only", () => {
    for (const ok of ["127.0.0.0/8", "::1", "2001:db8::/32", "192.0.2.1"]) assert.ok(isAddressOrRange(ok), ok);
    for (const bad of ["localhost", "10.0.0.0/33", "10.0.0.0/8/1", "::1/129", ""]) assert.equal(isAddressOrRange(bad), false, bad);
  });

  it("durations read as a person would say them", () => {
    assert.equal(humanDuration(45_000), "45 s");
    assert.equal(humanDuration(10 * 60_000), "10 min");
  });
});
