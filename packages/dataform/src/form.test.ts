import { test } from "node:test";
import assert from "node:assert/strict";
import { parseElement } from "@jabberfarm/xml";
import { findForm, formElement, readForm } from "./form.js";

test("a form built for a client carries FORM_TYPE, types, labels and options", () => {
  const x = formElement("form", {
    formType: "urn:example", title: "Settings",
    fields: [
      { var: "a", type: "boolean", label: "A?", values: ["1"] },
      { var: "b", type: "list-single", values: ["x"], options: [{ value: "x", label: "X" }, { value: "y" }] },
    ],
  });
  const text = x.toString();
  assert.match(text, /<field var='FORM_TYPE' type='hidden'><value>urn:example<\/value><\/field>/);
  assert.match(text, /<field var='a' type='boolean' label='A\?'><value>1<\/value><\/field>/);
  assert.match(text, /<option label='X'><value>x<\/value><\/option><option><value>y<\/value><\/option>/);
  assert.match(text, /<title>Settings<\/title>/);
});

test("a submitted form is read into its values; booleans both ways", () => {
  const x = parseElement(`<x xmlns='jabber:x:data' type='submit'>
    <field var='FORM_TYPE'><value>urn:example</value></field>
    <field var='on'><value>true</value></field><field var='off'><value>0</value></field>
    <field var='list'><value>a</value><value>b</value></field></x>`);
  const f = readForm(x);
  assert.equal(f.type, "submit");
  assert.equal(f.formType, "urn:example");
  assert.equal(f.boolean("on"), true);
  assert.equal(f.boolean("off"), false);
  assert.equal(f.boolean("list"), undefined);
  assert.deepEqual(f.values.get("list"), ["a", "b"]);
  assert.equal(f.text("missing"), undefined);
  assert.equal(findForm(parseElement(`<q><x xmlns='jabber:x:data' type='result'/>${x.toString()}</q>`), "urn:example")?.attrs.type, "submit");
});

test("forms that are not forms are refused with a reason", () => {
  assert.throws(() => readForm(parseElement("<x xmlns='jabber:x:data' type='weird'/>")), /type 'weird'/);
  assert.throws(() => readForm(parseElement("<x xmlns='jabber:x:data' type='submit'><field><value>1</value></field></x>")), /without 'var'/);
  const many = Array.from({ length: 5 }, (_, i) => `<field var='f${i}'/>`).join("");
  assert.throws(() => readForm(parseElement(`<x xmlns='jabber:x:data' type='submit'>${many}</x>`), { maxFields: 4 }), /too many fields/);
});
