/**
 * Writes .env.example and the configuration table in README.md from src/config/settings.ts, so
 * the documentation lists exactly the settings the code reads. `npm run docs:config`;
 * `--check` exits 1 when either file is out of date (used by .ci/run).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { SETTINGS } from '../src/config/settings.js';

const settings = Object.values(SETTINGS);
const groups = [...new Set(settings.map((s) => s.group))];

function envExample(): string {
  const lines = [
    '# Flokie configuration. Every variable is optional in development; copy to .env and adjust.',
    '# Generated from src/config/settings.ts by `npm run docs:config` — edit there, not here.',
    '# Production (NODE_ENV=production) requires SECRET_KEY and JWT_SECRET_KEY: `npx flokie secrets generate`.',
  ];
  for (const group of groups) {
    lines.push('', `# --- ${group} ---`);
    for (const s of settings.filter((x) => x.group === group)) {
      lines.push(`# ${s.doc}`);
      lines.push(`${s.default === '' ? '# ' : ''}${s.env}=${s.default}`);
    }
  }
  return lines.join('\n') + '\n';
}

const cell = (text: string) => text.replace(/\|/g, '\\|');
function readmeTable(): string {
  const rows: string[] = [];
  for (const group of groups) {
    rows.push(`| **${group}** | | |`);
    for (const s of settings.filter((x) => x.group === group)) {
      rows.push(`| \`${s.env}\` | ${s.default === '' ? '*(unset)*' : `\`${cell(s.default)}\``} | ${cell(s.doc)} |`);
    }
  }
  return ['| Variable | Default | What it does |', '|---|---|---|', ...rows].join('\n');
}

const START = '<!-- config:start -->';
const END = '<!-- config:end -->';
const readme = readFileSync('README.md', 'utf8');
const i = readme.indexOf(START);
const j = readme.indexOf(END);
if (i < 0 || j < 0) throw new Error('README.md lacks the config markers');
const newReadme = `${readme.slice(0, i + START.length)}\n${readmeTable()}\n${readme.slice(j)}`;
const newExample = envExample();

if (process.argv.includes('--check')) {
  const stale = [
    newReadme !== readme && 'README.md',
    newExample !== readFileSync('.env.example', 'utf8') && '.env.example',
  ].filter(Boolean);
  if (stale.length) {
    console.error(`out of date: ${stale.join(', ')} — run \`npm run docs:config\``);
    process.exit(1);
  }
  console.log('configuration docs are up to date');
} else {
  writeFileSync('README.md', newReadme);
  writeFileSync('.env.example', newExample);
  console.log('wrote README.md configuration table and .env.example');
}
