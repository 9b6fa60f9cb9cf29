import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createTestApp, register, type TestApp } from '../../helpers/app.js';

describe('one-time tokens', () => {
  let t: TestApp;
  before(async () => {
    t = await createTestApp();
  });
  after(() => t.close());

  it('concurrent issues for one user all succeed (no deadlock on MySQL/MariaDB)', async () => {
    const u = await register(t.app);
    const tokens = await Promise.all(
      Array.from({ length: 8 }, () => t.app.container.oneTimeTokens.issue(u.id, 'password_reset', 60_000)),
    );
    assert.equal(new Set(tokens).size, 8);
  });

  it('issuing a new token retires the earlier unused one', async () => {
    const u = await register(t.app);
    const first = await t.app.container.oneTimeTokens.issue(u.id, 'password_reset', 60_000);
    const second = await t.app.container.oneTimeTokens.issue(u.id, 'password_reset', 60_000);
    assert.equal(await t.app.container.oneTimeTokens.consume(first, 'password_reset'), null);
    assert.equal(await t.app.container.oneTimeTokens.consume(second, 'password_reset'), u.id);
  });

  it('a token is spent exactly once even when presented concurrently', async () => {
    const u = await register(t.app);
    const token = await t.app.container.oneTimeTokens.issue(u.id, 'password_reset', 60_000);
    const results = await Promise.all(
      Array.from({ length: 6 }, () => t.app.container.oneTimeTokens.consume(token, 'password_reset')),
    );
    assert.equal(results.filter((r) => r === u.id).length, 1);
  });
});
