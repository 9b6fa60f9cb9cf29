/**
 * What every `flokie` command shares: the same configuration as the service (environment and
 * .env, through loadConfig), the same container (database, Redis, rules), one clear error line
 * and a non-zero exit on failure, and password input that never comes from the command line.
 */
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { loadConfig, SettingError, type Config } from '../config/index.js';
import type { Container } from '../container.js';
import { DomainError } from '../core/errors.js';

export class CliError extends Error {}

export function config(): Config {
  return loadConfig();
}

/**
 * Runs a command with a container and always closes it (flushing queued security events). The
 * service's JSON log lines go to stderr, at FLOKIE_CLI_LOG_LEVEL (default silent: failures surface
 * as the one error line), so stdout keeps only the command's output.
 */
export async function withContainer<T>(
  run: (c: Container) => Promise<T>,
  logLevel = process.env.FLOKIE_CLI_LOG_LEVEL ?? 'silent',
): Promise<T> {
  const cfg = config();
  // Loaded on demand: `--help`, `secrets generate` and `check` start faster without the whole service.
  const [{ createContainer }, { createLogger }, { default: pino }] = await Promise.all([
    import('../container.js'),
    import('../logging.js'),
    import('pino'),
  ]);
  const log = createLogger(logLevel, pino.destination(2));
  const container = await createContainer(cfg, { log });
  try {
    return await run(container);
  } finally {
    await container.close();
  }
}

/** One line for any failure: ours, a setting, an API rule, or the database being unreachable. */
export function describeError(error: unknown): string {
  if (error instanceof DomainError) {
    const details = error.details ? Object.entries(error.details).map(([k, v]) => `${k}: ${v.join(', ')}`) : [];
    return [error.message, ...details].join('; ');
  }
  if (error instanceof SettingError) return `configuration error: ${error.message}`;
  if (error instanceof CliError) return error.message;
  const e = error as { code?: string; message?: string; errors?: { message?: string }[] };
  if (e?.code === 'ECONNREFUSED' || e?.errors?.length)
    return `cannot reach the database or Redis: ${e.errors?.[0]?.message ?? e.message}`;
  return (e?.message ?? String(error)).split('\n')[0]!;
}

/** A password from standard input (first line), or prompted for without echo on a terminal. */
export async function readPassword(prompt = 'Password: '): Promise<string> {
  if (!process.stdin.isTTY) {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    const line = Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0] ?? '';
    if (!line)
      throw new CliError(
        'no password on standard input (pipe it in, e.g. `flokie users create-admin … < password.txt`)',
      );
    return line;
  }
  const ask = async (question: string) => {
    let muted = false;
    const output = new Writable({
      write(chunk, _encoding, callback) {
        if (!muted) process.stderr.write(chunk);
        callback();
      },
    });
    const rl = createInterface({ input: process.stdin, output, terminal: true });
    const answer = new Promise<string>((resolve) => rl.question(question, resolve));
    muted = true;
    const value = await answer;
    rl.close();
    process.stderr.write('\n');
    return value;
  };
  const first = await ask(prompt);
  const second = await ask('Repeat password: ');
  if (first !== second) throw new CliError('the passwords do not match');
  if (!first) throw new CliError('the password is empty');
  return first;
}

/** Progress and notices go to stderr so stdout can be redirected to a file. */
export const note = (message: string) => process.stderr.write(`${message}\n`);
