import { test } from "node:test";
import assert from "node:assert/strict";
import { RemoteDomains } from "./remote-domains.js";

test("a domain is remote when it is not ours, not a subdomain, not a farm name, and an s2s is linked", () => {
  const r = new RemoteDomains("a.example");
  assert.equal(r.isRemote("b.example"), false, "no s2s linked: plain to the router, which bounces");
  r.update("s2s", new Set(["s2s-1"]));
  assert.equal(r.isRemote("b.example"), true);
  assert.equal(r.isRemote("a.example"), false);
  assert.equal(r.isRemote("conference.a.example"), false, "the farm's services");
  r.update("other.example", new Set(["sm-1"]));
  assert.equal(r.isRemote("other.example"), false, "another domain this farm serves");
  r.update("other.example", new Set());
  assert.equal(r.isRemote("other.example"), true);
  r.update("s2s", new Set());
  assert.equal(r.isRemote("b.example"), false, "the last s2s left");
});
