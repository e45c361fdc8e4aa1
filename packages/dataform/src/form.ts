/**
 * XEP-0004 data forms: building the ones a service sends (a form to fill,
 * a result) and reading the ones clients submit. `FORM_TYPE` (XEP-0068) is
 * a hidden field like any other when built, and read out on its own.
 */
import { xml, type Element } from "@jabberfarm/xml";

export const NS_DATA = "jabber:x:data";

export type FormType = "form" | "submit" | "cancel" | "result";
export type FieldType =
  | "boolean" | "fixed" | "hidden" | "jid-multi" | "jid-single" | "list-multi" | "list-single"
  | "text-multi" | "text-private" | "text-single";

export interface Field {
  var?: string;
  type?: FieldType;
  label?: string;
  /** Values as text; booleans as "1"/"0". */
  values?: readonly string[];
  /** For list fields: value → label. */
  options?: ReadonlyArray<{ value: string; label?: string }>;
  required?: boolean;
}

export interface ReadForm {
  type: FormType;
  /** The value of the hidden FORM_TYPE field, if any. */
  formType: string | undefined;
  /** Field var → its values (FORM_TYPE left out). */
  values: Map<string, string[]>;
  /** The value of a field read as XEP-0004 booleans ("1"/"true", "0"/"false"); undefined when absent or not a boolean. */
  boolean(name: string): boolean | undefined;
  /** The first value of a field, or undefined. */
  text(name: string): string | undefined;
}

/** A form element (`<x xmlns='jabber:x:data'/>`): FORM_TYPE first when given, then the fields. */
export function formElement(type: FormType, opts: { formType?: string; title?: string; instructions?: string; fields?: readonly Field[] }): Element {
  const x = xml("x", { xmlns: NS_DATA, type });
  if (opts.title !== undefined) x.append(xml("title", {}, opts.title));
  if (opts.instructions !== undefined) x.append(xml("instructions", {}, opts.instructions));
  if (opts.formType !== undefined) {
    x.append(xml("field", { var: "FORM_TYPE", type: "hidden" }, xml("value", {}, opts.formType)));
  }
  for (const f of opts.fields ?? []) {
    // A submitted or result form carries no labels or options (XEP-0004 §3.2 / §3.4).
    const full = type === "form";
    const field = xml("field", { var: f.var, type: full || type === "result" ? f.type : undefined, label: full ? f.label : undefined });
    if (full && f.required) field.append(xml("required"));
    for (const v of f.values ?? []) field.append(xml("value", {}, v));
    if (full) for (const o of f.options ?? []) field.append(xml("option", { label: o.label }, xml("value", {}, o.value)));
    x.append(field);
  }
  return x;
}

/** The first data form among `parent`'s children, optionally of one FORM_TYPE. */
export function findForm(parent: Element, formType?: string): Element | undefined {
  for (const x of parent.getChildren("x", NS_DATA)) {
    if (formType === undefined) return x;
    for (const f of x.getChildren("field")) if (f.attrs.var === "FORM_TYPE" && f.getChildText("value") === formType) return x;
  }
  return undefined;
}

const TYPES: ReadonlySet<string> = new Set(["form", "submit", "cancel", "result"]);

/**
 * Reads a form; throws (a message fit for a bad-request text) on a form
 * that is not one: an unknown type, more than `maxFields` fields or
 * `maxValues` values in one, a field without `var` in a submission.
 */
export function readForm(x: Element, limits: { maxFields?: number; maxValues?: number } = {}): ReadForm {
  const type = x.attrs.type ?? "";
  if (!TYPES.has(type)) throw new Error(`a data form of type '${type}'`);
  const fields = x.getChildren("field");
  if (fields.length > (limits.maxFields ?? 100)) throw new Error("too many fields in the form");
  const values = new Map<string, string[]>();
  let formType: string | undefined;
  for (const f of fields) {
    const name = f.attrs.var;
    if (name === undefined) {
      if (type === "submit") throw new Error("a submitted field without 'var'");
      continue;
    }
    const vs = f.getChildren("value").map((v) => v.text());
    if (vs.length > (limits.maxValues ?? 100)) throw new Error(`too many values for '${name}'`);
    if (name === "FORM_TYPE") formType = vs[0];
    else values.set(name, vs);
  }
  return {
    type: type as FormType,
    formType,
    values,
    boolean(name) {
      const v = values.get(name)?.[0];
      if (v === "1" || v === "true") return true;
      if (v === "0" || v === "false") return false;
      return undefined;
    },
    text(name) {
      return values.get(name)?.[0];
    },
  };
}
