/**
 * The committed client (client/openapi.json, client/schema.d.ts) is what `npm run client:generate`
 * writes from the live document: regenerated in memory and compared, so a route change without a
 * regeneration fails here.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { CLIENT_FILES, renderClient } from '../../scripts/client-generate.js';

describe('generated client', () => {
  it('client/ matches the live OpenAPI document (run `npm run client:generate` if not)', async () => {
    const rendered = await renderClient();
    assert.equal(readFileSync(CLIENT_FILES.document, 'utf8'), rendered.document, 'client/openapi.json is stale');
    assert.equal(readFileSync(CLIENT_FILES.types, 'utf8'), rendered.types, 'client/schema.d.ts is stale');
  });
});
