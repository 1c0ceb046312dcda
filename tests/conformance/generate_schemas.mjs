// Regenerates stripe_schemas.json: JSON Schemas for the objects the sandbox serves, built from
// stripe-node's TypeScript types (which Stripe generates from its OpenAPI spec), pinned to the
// API version stripe-python pins. Run: npm install --prefix tests/conformance &&
// node tests/conformance/generate_schemas.mjs
import { createRequire } from "node:module";
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(join(here, "package.json"));
const ts = require("typescript");
const stripeRoot = join(here, "node_modules", "stripe");
const { ApiVersion } = await import(join(stripeRoot, "esm", "apiVersion.js"));
const stripeVersion = JSON.parse(readFileSync(join(stripeRoot, "package.json"), "utf8")).version;

// Object type -> [declaring file, interface name].
const ROOTS = {
  balance_transaction: ["BalanceTransactions", "BalanceTransaction"],
  charge: ["Charges", "Charge"],
  confirmation_token: ["ConfirmationTokens", "ConfirmationToken"],
  customer: ["Customers", "Customer"],
  deleted_customer: ["Customers", "DeletedCustomer"],
  dispute: ["Disputes", "Dispute"],
  event: ["Events", "EventBase"],  // the shape every event shares; data.object is checked by type
  payment_intent: ["PaymentIntents", "PaymentIntent"],
  payment_method: ["PaymentMethods", "PaymentMethod"],
  refund: ["Refunds", "Refund"],
  setup_attempt: ["SetupAttempts", "SetupAttempt"],
  setup_intent: ["SetupIntents", "SetupIntent"],
};

const files = Object.values(ROOTS).map(([file]) => join(stripeRoot, "esm", "resources", `${file}.d.ts`));
const program = ts.createProgram(files, { strict: true, noEmit: true });
const checker = program.getTypeChecker();

function rootInterface(file, name) {
  const source = program.getSourceFile(join(stripeRoot, "esm", "resources", `${file}.d.ts`));
  for (const statement of source.statements) {
    if (ts.isInterfaceDeclaration(statement) && statement.name.text === name) {
      return checker.getTypeAtLocation(statement.name);
    }
  }
  throw new Error(`no interface ${name} in ${file}`);
}

// A top-level resource met inside another (an expanded id) is only checked to be an object:
// its own schema checks it where the sandbox serves it.
function isOtherResource(type, current) {
  const symbol = type.getSymbol();
  if (!symbol || type === current) return false;
  const declaration = symbol.getDeclarations()?.[0];
  if (!declaration || !ts.isInterfaceDeclaration(declaration)) return false;
  return ts.isSourceFile(declaration.parent) && declaration.getSourceFile().fileName.includes("/resources/");
}

function schemaOf(type, root, stack) {
  if (type.flags & ts.TypeFlags.Null) return { type: "null" };
  if (type.flags & (ts.TypeFlags.Any | ts.TypeFlags.Unknown)) return {};
  if (type.flags & ts.TypeFlags.StringLiteral) return { const: type.value };
  if (type.flags & ts.TypeFlags.NumberLiteral) return { const: type.value };
  if (type.flags & ts.TypeFlags.BooleanLiteral) return { type: "boolean" };
  if (type.flags & ts.TypeFlags.String) return { type: "string" };
  if (type.flags & ts.TypeFlags.Number) return { type: "number" };
  if (type.flags & ts.TypeFlags.Boolean) return { type: "boolean" };
  if (type.isUnion()) return unionSchema(type, root, stack);
  if (checker.isArrayType(type)) {
    return { type: "array", items: schemaOf(checker.getTypeArguments(type)[0], root, stack) };
  }
  if (type.flags & ts.TypeFlags.Object) return objectSchema(type, root, stack);
  return {};
}

function unionSchema(type, root, stack) {
  // An optional property's type carries `undefined`, which JSON never holds.
  const defined = type.types.filter((member) => !(member.flags & ts.TypeFlags.Undefined));
  if (defined.length === 1) return schemaOf(defined[0], root, stack);
  const members = defined.map((member) => schemaOf(member, root, stack));
  const consts = members.filter((m) => "const" in m).map((m) => m.const);
  const others = members.filter((m) => !("const" in m));
  const unique = [];
  for (const member of others) {
    if (!unique.some((seen) => JSON.stringify(seen) === JSON.stringify(member))) unique.push(member);
  }
  if (consts.length) unique.unshift({ enum: consts });
  return unique.length === 1 ? unique[0] : { anyOf: unique };
}

function objectSchema(type, root, stack) {
  if (isOtherResource(type, root)) return { type: "object" };
  const name = checker.typeToString(type);
  if (name === "Decimal") return { type: "string" };
  if (stack.includes(type)) return { type: "object" };
  const inner = [...stack, type];
  const index = checker.getIndexInfosOfType(type);
  const properties = checker.getPropertiesOfType(type);
  // An empty interface (an event's data.object) stands for any object.
  if (!index.length && !properties.length) return { type: "object" };
  const schema = { type: "object", properties: {}, required: [], additionalProperties: false };
  if (index.length) schema.additionalProperties = schemaOf(index[0].type, root, inner);
  for (const property of properties) {
    const declaration = property.getDeclarations()?.[0];
    const propertyType = checker.getTypeOfSymbolAtLocation(property, declaration);
    const optional = (property.flags & ts.SymbolFlags.Optional) !== 0;
    schema.properties[property.name] = schemaOf(propertyType, root, inner);
    if (!optional) schema.required.push(property.name);
  }
  schema.required.sort();
  return schema;
}

const schemas = {};
for (const [objectType, [file, name]] of Object.entries(ROOTS)) {
  const type = rootInterface(file, name);
  schemas[objectType] = schemaOf(type, type, []);
}
const output = {
  comment: "Generated by generate_schemas.mjs from stripe-node's types; do not edit.",
  api_version: ApiVersion,
  stripe_node: stripeVersion,
  schemas,
};
writeFileSync(join(here, "stripe_schemas.json"), JSON.stringify(output, null, 1) + "\n");
console.log(`wrote ${Object.keys(schemas).length} schemas at ${ApiVersion}`);
