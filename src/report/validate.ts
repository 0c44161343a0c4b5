import { readFileSync } from 'node:fs';
import path from 'node:path';

/**
 * Checks a value against schema/report.schema.json, the schema the package ships, with no
 * dependency: it knows the JSON Schema keywords that schema uses, and refuses a schema with any
 * other (so the schema cannot outgrow the check unnoticed).
 */

type Schema = { [keyword: string]: unknown };

/** Keywords that only annotate. */
const ANNOTATIONS = new Set(['$schema', '$id', 'title', 'description', '$defs']);
const ASSERTIONS = new Set(['type', 'required', 'additionalProperties', 'properties', 'items', '$ref', 'enum', 'const', 'pattern', 'minimum', 'exclusiveMinimum', 'format', 'anyOf']);

// RFC 3339 date-time, as JSON Schema's `format: date-time` means it.
const DATE_TIME = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$/;

export const SCHEMA_FILE = path.join(__dirname, '..', '..', 'schema', 'report.schema.json');

let loaded: Schema | undefined;

function reportSchema(): Schema {
  loaded ??= JSON.parse(readFileSync(SCHEMA_FILE, 'utf8')) as Schema;
  return loaded;
}

function typeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

const show = (value: unknown) => (typeof value === 'string' ? JSON.stringify(value) : String(value));

class Validator {
  readonly errors: string[] = [];
  /** Findings, including those past the limit. */
  private failures = 0;

  constructor(
    private readonly root: Schema,
    private readonly limit: number,
  ) {}

  check(value: unknown, schema: Schema, at: string): boolean {
    const before = this.failures;
    for (const keyword of Object.keys(schema)) {
      if (!ANNOTATIONS.has(keyword) && !ASSERTIONS.has(keyword)) throw new Error(`the report schema uses ${keyword}, which this check does not know`);
    }
    const fail = (message: string) => {
      this.failures++;
      if (this.errors.length < this.limit) this.errors.push(`${at === '' ? 'the report' : at} ${message}`);
    };
    if (typeof schema.$ref === 'string') this.check(value, this.resolve(schema.$ref), at);
    if (schema.type !== undefined) {
      const types = [schema.type].flat() as string[];
      const actual = typeOf(value);
      if (!types.includes(actual) && !(actual === 'integer' && types.includes('number'))) {
        fail(`must be ${types.join(' or ')}, not ${actual}`);
        return false;
      }
    }
    if (schema.const !== undefined && value !== schema.const) fail(`must be ${show(schema.const)}`);
    if (Array.isArray(schema.enum) && !schema.enum.includes(value)) fail(`must be one of ${schema.enum.map(show).join(', ')}, not ${show(value)}`);
    if (typeof value === 'string') {
      if (typeof schema.pattern === 'string' && !new RegExp(schema.pattern, 'u').test(value)) fail(`must match ${schema.pattern}`);
      if (schema.format === 'date-time' && !(DATE_TIME.test(value) && !Number.isNaN(Date.parse(value)))) fail('must be a date-time');
    }
    if (typeof value === 'number') {
      if (typeof schema.minimum === 'number' && value < schema.minimum) fail(`must be at least ${schema.minimum}`);
      if (typeof schema.exclusiveMinimum === 'number' && value <= schema.exclusiveMinimum) fail(`must be more than ${schema.exclusiveMinimum}`);
    }
    if (Array.isArray(schema.anyOf)) {
      if (!schema.anyOf.some((option) => new Validator(this.root, 0).check(value, option as Schema, at))) fail('matches none of the forms it may take');
    }
    if (Array.isArray(value) && schema.items !== undefined) value.forEach((item, i) => this.check(item, schema.items as Schema, `${at}/${i}`));
    if (typeOf(value) === 'object') this.checkObject(value as Record<string, unknown>, schema, at, fail);
    return this.failures === before;
  }

  private checkObject(value: Record<string, unknown>, schema: Schema, at: string, fail: (message: string) => void): void {
    const properties = (schema.properties ?? {}) as Record<string, Schema>;
    for (const name of (schema.required ?? []) as string[]) if (!(name in value)) fail(`lacks ${name}`);
    for (const [name, item] of Object.entries(value)) {
      const property = properties[name];
      if (property !== undefined) this.check(item, property, `${at}/${name}`);
      else if (schema.additionalProperties === false) fail(`has ${name}, which a leakwatch report does not have`);
    }
  }

  private resolve(ref: string): Schema {
    const match = /^#\/\$defs\/([^/]+)$/.exec(ref);
    const target = match ? (this.root.$defs as Record<string, Schema> | undefined)?.[match[1]] : undefined;
    if (target === undefined) throw new Error(`the report schema refers to ${ref}, which this check cannot resolve`);
    return target;
  }
}

/**
 * What is wrong with `value` as a leakwatch report, at most `limit` findings, each a JSON pointer
 * and a sentence (`/leakedResponses/0/reason must be one of …`); empty when it is a valid one.
 */
export function reportProblems(value: unknown, limit = 5, schema: Schema = reportSchema()): string[] {
  const validator = new Validator(schema, limit);
  validator.check(value, schema, '');
  return validator.errors;
}
