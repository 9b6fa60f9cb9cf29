/**
 * The bench harness runs end to end and writes well-formed results. A smoke run only: tiny
 * durations and seeds, the service from source; no figure is judged (speed is `npm run bench`'s
 * business, never a test's).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

test('npm run bench -- --quick produces JSON and Markdown results', { timeout: 600_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'flokie-bench-'));
  try {
    const run = spawnSync(
      process.execPath,
      [
        '--import',
        'tsx',
        'bench/run.ts',
        '--quick',
        '--from-source',
        '--no-docs',
        '--runs',
        '1',
        '--duration',
        '0.5',
        '--large',
        '1500',
        '--out',
        join(dir, 'results'),
        '--cache-dir',
        join(dir, 'cache'),
      ],
      { encoding: 'utf8', timeout: 540_000 },
    );
    assert.equal(run.status, 0, `bench exited ${run.status}:\n${run.stderr.slice(-3000)}`);

    const results = JSON.parse(readFileSync(join(dir, 'results', 'latest.json'), 'utf8'));
    for (const key of ['cpu', 'cores', 'memoryGiB', 'node']) assert.ok(results.machine[key], `machine.${key}`);
    assert.equal(results.options.quick, true);
    const ids = results.rows.map((r: { id: string }) => r.id);
    for (const id of [
      'health.rps',
      'me.rps',
      'me_cold.rps',
      'login.rps',
      'health.p99_flood',
      'refresh.rps',
      'growth.me',
      'memory.peak_rss',
      'startup',
      'strength.health_p99',
      'strength.registrations',
    ]) {
      assert.ok(ids.includes(id), `row ${id} present`);
    }
    for (const row of results.rows) {
      assert.equal(typeof row.scenario, 'string');
      for (const key of ['flokie', 'reference', 'ratio']) {
        assert.ok(
          row[key] === null || (typeof row[key] === 'number' && Number.isFinite(row[key]) && row[key] >= 0),
          `${row.id}.${key} = ${row[key]}`,
        );
      }
      assert.ok(row.pass === null || typeof row.pass === 'boolean');
    }
    // The harness really drove traffic: every load run answered, and successfully.
    const byId = Object.fromEntries(results.rows.map((r: { id: string }) => [r.id, r]));
    for (const id of ['health.rps', 'me.rps', 'refresh.rps'])
      assert.ok(byId[id].flokie > 0, `${id} measured some requests`);
    assert.equal(results.raw.figures.refresh.non2xx, 0, 'refresh chain never broke');
    assert.equal(results.raw.figures.me.flokie.non2xx, 0, '/me always authenticated');
    assert.ok(results.raw.memory.service.peakRssBytes > 0);

    const md = readFileSync(join(dir, 'results', 'latest.md'), 'utf8');
    assert.match(md, /\| Scenario \| Flokie \| Reference \| Ratio \| Target \| Result \|/);
    assert.match(md, /AMD|Intel|cores/);
    assert.deepEqual(
      readdirSync(join(dir, 'results')).sort(),
      ['latest.json', 'latest.md'],
      'one run per set-up is kept',
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('npm run bench -- --only strength runs scenario 7 alone', { timeout: 300_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'flokie-bench-only-'));
  try {
    const run = spawnSync(
      process.execPath,
      [
        '--import',
        'tsx',
        'bench/run.ts',
        '--only',
        'strength',
        '--quick',
        '--from-source',
        '--out',
        join(dir, 'results'),
        '--cache-dir',
        join(dir, 'cache'),
      ],
      { encoding: 'utf8', timeout: 240_000 },
    );
    assert.equal(run.status, 0, `bench exited ${run.status}:\n${run.stderr.slice(-3000)}`);
    const files = readdirSync(join(dir, 'results'));
    assert.ok(!files.includes('latest.json'), 'latest.* is the full run only');
    const json = files.find((f) => f === 'strength.json');
    assert.ok(json, files.join(', '));
    const results = JSON.parse(readFileSync(join(dir, 'results', json), 'utf8'));
    const byId = Object.fromEntries(results.rows.map((r: { id: string }) => [r.id, r]));
    assert.ok(byId['strength.health_p99'].flokie > 0, 'the probe answered');
    assert.ok(byId['strength.registrations'].flokie > 0, 'registrations were answered');
    assert.match(byId['strength.registrations'].note, /"400"/, 'refused as too easy to guess, after the estimate');
    const bad = spawnSync(process.execPath, ['--import', 'tsx', 'bench/run.ts', '--only', 'nope'], {
      encoding: 'utf8',
    });
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /--only must be one of strength/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
