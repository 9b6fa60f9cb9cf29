/** The live OpenAPI document of a test app, and its schemas as JSON Schema an ajv can check answers with. */
import { Ajv, type ValidateFunction } from 'ajv';
import formats from 'ajv-formats';
import type { FastifyInstance } from 'fastify';

export type Schema = Record<string, unknown>;
export interface Parameter {
  name: string;
  in: 'query' | 'path' | 'header' | 'cookie';
  required?: boolean;
  schema: Schema;
}
export interface Response {
  description?: string;
  headers?: Record<string, unknown>;
  content?: Record<string, { schema: Schema }>;
}
export interface Operation {
  operationId?: string;
  summary?: string;
  tags?: string[];
  security?: Record<string, string[]>[];
  parameters?: Parameter[];
  requestBody?: { required?: boolean; content: Record<string, { schema: Schema }> };
  responses: Record<string, Response>;
}
export interface OpenApiDocument {
  servers?: { url: string }[];
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, Schema> };
}
export interface OperationEntry {
  method: string;
  path: string;
  operation: Operation;
}

export async function liveDocument(app: FastifyInstance): Promise<OpenApiDocument> {
  const res = await app.inject({ method: 'GET', url: '/api/openapi.json' });
  if (res.statusCode !== 200) throw new Error(`GET /api/openapi.json: ${res.statusCode}`);
  return JSON.parse(res.body) as OpenApiDocument;
}

export function operations(document: OpenApiDocument): OperationEntry[] {
  return Object.entries(document.paths).flatMap(([path, item]) =>
    Object.entries(item).map(([method, operation]) => ({ method: method.toUpperCase(), path, operation })),
  );
}

/**
 * OpenAPI 3.0 schema → JSON Schema: `nullable: true` becomes a `null` type (and a null enum
 * value); `#/components/...` references point into the schema registered as `openapi`.
 */
export function toJsonSchema(value: unknown, refBase = ''): unknown {
  if (Array.isArray(value)) return value.map((item) => toJsonSchema(item, refBase));
  if (!value || typeof value !== 'object') return value;
  const out: Schema = {};
  for (const [key, item] of Object.entries(value as Schema)) {
    if (key === 'nullable') continue;
    out[key] = key === '$ref' && typeof item === 'string' ? `${refBase}${item}` : toJsonSchema(item, refBase);
  }
  if ((value as Schema).nullable === true) {
    if (typeof out.type === 'string') out.type = [out.type, 'null'];
    if (Array.isArray(out.enum)) out.enum = [...(out.enum as unknown[]), null];
    if (out.type === undefined && out.enum === undefined) return { anyOf: [out, { type: 'null' }] };
  }
  return out;
}

/** Validators of answer bodies against the document's response schemas. */
export function responseValidator(document: OpenApiDocument) {
  const ajv = new Ajv({ strict: false, allErrors: true });
  // ajv-formats is CommonJS: its default export arrives as the module object under tsx.
  const loaded = formats as unknown as { default?: unknown };
  const addFormats = (loaded.default ?? formats) as (ajv: Ajv) => void;
  addFormats(ajv);
  ajv.addSchema({ $id: 'openapi', components: toJsonSchema(document.components, 'openapi') as object });
  const cache = new Map<Schema, ValidateFunction>();
  return (schema: Schema, body: unknown): string | null => {
    let validate = cache.get(schema);
    if (!validate) {
      validate = ajv.compile(toJsonSchema(schema, 'openapi') as object);
      cache.set(schema, validate);
    }
    return validate(body) ? null : ajv.errorsText(validate.errors);
  };
}
