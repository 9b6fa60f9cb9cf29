/**
 * nginx for tests: Debian's nginx (installed by scripts/install-nginx.sh when missing) running the
 * SHIPPED deploy/nginx.conf unmodified (a symbolic link); only the folder it reads its places from
 * (deploy/nginx/*.conf: upstream, listen addresses) is the test's own.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { ROOT } from './server.js';

export const SHIPPED = join(ROOT, 'deploy/nginx.conf');
export const SHIPPED_PLACES = join(ROOT, 'deploy/nginx');

export function ensureNginx(): string {
  const found = spawnSync('sh', ['-c', 'command -v nginx || ls /usr/sbin/nginx'], { encoding: 'utf8' });
  if (found.status === 0) return found.stdout.trim().split('\n')[0]!;
  const install = spawnSync('bash', [join(ROOT, 'scripts/install-nginx.sh')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  assert.equal(install.status, 0, 'scripts/install-nginx.sh failed');
  return install.stdout.trim().split('\n').at(-1)!;
}

/**
 * A folder for nginx -c: nginx.conf is a link to the shipped file, certs/ the test's certificates,
 * flokie/ the places (the service's port, loopback listen addresses) and the shipped headers.
 */
export function nginxFolder(dir: string, ports: { app: number; http: number; https: number }, certs: string): string {
  symlinkSync(SHIPPED, join(dir, 'nginx.conf'));
  if (certs !== join(dir, 'certs')) symlinkSync(certs, join(dir, 'certs'));
  const places = join(dir, 'flokie');
  mkdirSync(places);
  symlinkSync(join(SHIPPED_PLACES, 'security-headers.conf'), join(places, 'security-headers.conf'));
  writeFileSync(join(places, 'upstream.conf'), `server 127.0.0.1:${ports.app};\n`);
  const relisten = (file: string, from: string, to: string) => {
    const text = readFileSync(join(SHIPPED_PLACES, file), 'utf8');
    assert.ok(text.includes(from), `deploy/nginx/${file} contains "${from}"`);
    writeFileSync(join(places, file), text.replace(from, to));
  };
  relisten('listen-http.conf', 'listen 80;', `listen 127.0.0.1:${ports.http};`);
  relisten('listen-https.conf', 'listen 443 ssl http2;', `listen 127.0.0.1:${ports.https} ssl http2;`);
  return join(dir, 'nginx.conf');
}

/** Command-line arguments that make nginx use `folder` for everything (-t, or a run with -g 'daemon off;'). */
export const nginxArgs = (folder: string) => [
  '-p',
  `${folder}/`,
  '-e',
  join(folder, 'error.log'),
  '-c',
  join(folder, 'nginx.conf'),
  '-g',
  `pid ${join(folder, 'nginx.pid')};`,
];
