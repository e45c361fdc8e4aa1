export { NS_DATA, formElement, readForm, findForm, type Field, type FieldType, type FormType, type ReadForm } from "./form.js";
