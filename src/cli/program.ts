/**
 * The `flokie` command tree (entry point: index.ts). `flokie` — the emergency procedures of
 * docs/incident-response.md as commands, working on the same database, Redis and configuration
 * (environment and .env) as the running service. `flokie <command> --help` explains each. Run
 * from a checkout with `npx flokie …` or `npm run flokie -- …`.
 */
import { randomBytes } from 'node:crypto';
import { Command, InvalidArgumentError } from 'commander';
import { SettingError, parseRate } from '../config/index.js';
import { generateSecret } from '../config/secret-strength.js';
import type { SecurityEventView } from '../modules/security/events.js';
import { cliContext } from '../core/request-context.js';
import { CliError, describeError, note, readPassword, withContainer } from './context.js';
import { registerMigrateCommand } from './migrate.js';
import { registerMailCommands } from './mail.js';
import { VERSION } from '../core/version.js';
import { printRemoteChecks, registerOperationsCommands } from './operations.js';

// Modules a command needs are imported when it runs (`await import`): `--help` and the light
// commands then load commander and the configuration only, not the database drivers.

/** The API's own field schemas, checked here before anything is read from stdin. */
async function fieldValidators() {
  const [{ Ajv }, { default: addFormats }, { Email, Username, USERNAME_RULE }] = await Promise.all([
    import('ajv'),
    import('ajv-formats'),
    import('../http/fields.js'),
  ]);
  const ajv = new Ajv({ allErrors: false });
  (addFormats as unknown as (a: InstanceType<typeof Ajv>) => void)(ajv);
  return { validUsername: ajv.compile(Username), validEmail: ajv.compile(Email), usernameRule: USERNAME_RULE };
}

/** "2026-01-01T00:00:00Z", or a duration back from now: "15m", "2h", "7d". */
function parseSince(value: string): number {
  const rel = /^(\d+)\s*(s|m|h|d)$/.exec(value.trim());
  if (rel)
    return (
      Date.now() - Number(rel[1]) * { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[rel[2] as 's' | 'm' | 'h' | 'd']
    );
  const t = Date.parse(value);
  if (Number.isNaN(t))
    throw new InvalidArgumentError('expected an ISO date-time (2026-01-01T00:00:00Z) or a duration like 15m, 2h, 7d');
  return t;
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function formatEvent(e: SecurityEventView): string {
  const who = [e.user_id && `user=${e.user_id}`, e.ip && `ip=${e.ip}`, e.endpoint && `endpoint="${e.endpoint}"`]
    .filter(Boolean)
    .join(' ');
  return (
    `${e.created_at}  ${e.severity.toUpperCase().padEnd(8)} ${e.type.padEnd(28)} ` +
    `${who}${e.details ? `  ${JSON.stringify(e.details)}` : ''}`
  );
}

export function buildProgram(): Command {
  const program = new Command('flokie')
    .description(
      'Flokie operations: accounts, tokens, emergency rate limit, secrets, deployment checks and security ' +
        'events.\nConfigured by the same environment and .env as the service. FLOKIE_CLI_LOG_LEVEL=info shows the ' +
        'service log lines (security events) on stderr.',
    )
    .version(VERSION)
    .exitOverride()
    .configureOutput({
      outputError: (text, write) => write(`flokie: ${text.split('\n')[0]!.replace(/^error: /, 'error: ')}\n`),
    });

  // users
  const users = program.command('users').description('Manage user accounts');

  users
    .command('create-admin')
    .description(
      'Create an administrator account. The password is read from standard input, or prompted for (twice, without ' +
        'echo) on a terminal — never from the command line.',
    )
    .argument('<username>', 'username: 3–50 of A–Z, a–z, 0–9, _ and -, not shaped like a user id')
    .argument('<email>', 'e-mail address')
    .action(async (username: string, email: string) => {
      const { validUsername, validEmail, usernameRule } = await fieldValidators();
      if (!validUsername(username)) throw new CliError(`username must be ${usernameRule}`);
      if (!validEmail(email)) throw new CliError('not a valid e-mail address');
      const password = await readPassword();
      await withContainer(async (c) => {
        const user = await c.admin.create(
          { username, email, password, is_admin: true, is_verified: true },
          cliContext(),
        );
        console.log(`Created administrator ${user.username} (${user.id})`);
      });
    });

  for (const [name, verb, run] of [
    ['deactivate', 'Deactivate an account and revoke all its sessions at once (emergency lockout)', 'deactivate'],
    ['activate', 'Re-activate an account', 'activate'],
    ['unlock', "Clear every login lock: untrusted devices, each trusted device, an administrator's lock", 'unlock'],
  ] as const) {
    users
      .command(name)
      .description(verb)
      .argument('<username>', 'username, e-mail address or user id')
      .action(async (ref: string) => {
        await withContainer(async (c) => {
          const user = await c.userQueries.find(ref);
          await c.admin[run](user.id, cliContext());
          console.log(
            `${name === 'unlock' ? 'Unlocked' : name === 'activate' ? 'Activated' : 'Deactivated'} ` +
              `${user.username} (${user.id})`,
          );
        });
      });
  }

  users
    .command('lock')
    .description(
      'Lock logins for every device, trusted ones included, until `unlock` or for --minutes (sessions stay; ' +
        '`deactivate` ends them)',
    )
    .argument('<username>', 'username, e-mail address or user id')
    .option('--minutes <n>', 'lock for this many minutes instead of until unlocked', positiveInt)
    .action(async (ref: string, options: { minutes?: number }) => {
      if (options.minutes !== undefined && options.minutes > 5_256_000)
        throw new CliError('--minutes is at most 5256000 (ten years)');
      await withContainer(async (c) => {
        const user = await c.userQueries.find(ref);
        await c.admin.lock(user.id, options.minutes, cliContext());
        console.log(
          `Locked ${user.username} (${user.id}) for every device ` +
            `${options.minutes ? `for ${options.minutes} minute(s)` : 'until unlocked'}`,
        );
      });
    });

  users
    .command('list')
    .description('List accounts, newest first')
    .option('-s, --search <prefix>', 'username or e-mail prefix')
    .option('-a, --include-inactive', 'include deactivated accounts', false)
    .option('-n, --limit <n>', 'how many (max 100)', positiveInt, 50)
    .option('--page <n>', 'page number', positiveInt, 1)
    .option('--json', 'one JSON object per line', false)
    .action(
      async (options: { search?: string; includeInactive: boolean; limit: number; page: number; json: boolean }) => {
        await withContainer(async (c) => {
          const { users: rows, pagination } = await c.userQueries.list({
            search: options.search,
            include_inactive: options.includeInactive,
            per_page: Math.min(options.limit, 100),
            page: options.page,
          });
          if (options.json) {
            for (const u of rows) console.log(JSON.stringify(u));
            return;
          }
          console.log(
            `${'USERNAME'.padEnd(24)} ${'E-MAIL'.padEnd(32)} ${'ACTIVE'.padEnd(6)} ${'ADMIN'.padEnd(5)} ` +
              `${'LOCKED UNTIL'.padEnd(24)} CREATED`,
          );
          for (const u of rows) {
            console.log(
              `${u.username.padEnd(24)} ${u.email.padEnd(32)} ${(u.is_active ? 'yes' : 'no').padEnd(6)} ` +
                `${(u.is_admin ? 'yes' : 'no').padEnd(5)} ${(u.locked_until ?? '-').padEnd(24)} ${u.created_at}`,
            );
          }
          note(`page ${pagination.page} of ${Math.max(pagination.pages, 1)}, ${pagination.total} account(s)`);
        });
      },
    );

  // tokens and sessions
  program
    .command('tokens')
    .description('Token operations')
    .command('revoke')
    .description('Revoke one access or refresh token by its jti claim; running instances reject it at once')
    .argument('<jti>', 'the token id (jti claim)')
    // A jti is base64url and may start with "-": take it as the argument, not as an option.
    .allowUnknownOption()
    .action(async (jti: string) => {
      if (!/^[A-Za-z0-9_-]{1,64}$/.test(jti)) throw new CliError('a jti is 1–64 of A–Z, a–z, 0–9, _ and -');
      await withContainer(async (c) => {
        const { session, already_revoked } = await c.revocation.revokeToken(jti, cliContext());
        const again = already_revoked ? ' (it was already revoked)' : '';
        if (session) {
          const owner = session.username ? `${session.username} (${session.user_id})` : `user ${session.user_id}`;
          console.log(
            `Revoked refresh token ${jti}${again}: session ${session.id} of ` +
              `${owner}${session.ended_before ? ', which had already ended,' : ''} is revoked with it`,
          );
        } else {
          console.log(
            `Revoked token ${jti}${again}: no refresh token with this id is known (an access token's id, or an ` +
              `unknown one); any token with this jti is refused from now on`,
          );
        }
      });
    });

  program
    .command('sessions')
    .description('Session operations')
    .command('revoke-all')
    .description('Revoke every session (all access and refresh tokens) of a user')
    .argument('<username>', 'username, e-mail address or user id')
    .action(async (ref: string) => {
      await withContainer(async (c) => {
        const user = await c.userQueries.find(ref);
        const count = await c.revocation.revokeAllSessions(user.id, cliContext());
        console.log(`Revoked ${count} session(s) of ${user.username}`);
      });
    });

  // emergency rate limit
  const ratelimit = program.command('ratelimit').description('The emergency global rate limit');
  ratelimit
    .command('emergency')
    .description(
      'Set a global per-client limit on every running instance (applied within CACHE_SYNC_INTERVAL_MS, no ' +
        'restart), or lift it with "off"',
    )
    .argument('<rate>', 'a rate like "1 per minute", "10/second", "100 per 5 minutes", or "off"')
    .action(async (rate: string) => {
      const off = ['off', 'none', 'disable', 'disabled'].includes(rate.trim().toLowerCase());
      if (!off) {
        try {
          parseRate(rate);
        } catch (error) {
          throw new CliError(`${(error as SettingError).message}; or "off"`);
        }
      }
      const [{ SecurityService }, { cliContext }] = await Promise.all([
        import('../modules/security/security-service.js'),
        import('../core/request-context.js'),
      ]);
      await withContainer(async (c) => {
        const spec = await new SecurityService(c).changeEmergencyLimit(off ? null : rate, cliContext());
        console.log(
          spec ? `Emergency rate limit on: ${spec.text} per client, on every instance` : 'Emergency rate limit off',
        );
      });
    });
  ratelimit
    .command('status')
    .description('Show the emergency limit in force')
    .action(async () => {
      const { SecurityService } = await import('../modules/security/security-service.js');
      await withContainer(async (c) => {
        const spec = await new SecurityService(c).emergencyLimit();
        console.log(spec ? `Emergency rate limit on: ${spec.text}` : 'Emergency rate limit off');
      });
    });

  // secrets
  program
    .command('secrets')
    .description('Secret management')
    .command('generate')
    .description('Print strong random SECRET_KEY, JWT_SECRET_KEY and DB_PASSWORD values (.env format)')
    .action(() => {
      console.log(`SECRET_KEY=${generateSecret()}`);
      console.log(`JWT_SECRET_KEY=${generateSecret()}`);
      console.log(`DB_PASSWORD=${randomBytes(24).toString('base64url')}`);
    });

  // check
  program
    .command('check')
    .description(
      'The pre-deployment security checklist: inspects the configuration this environment would run with and ' +
        'prints pass/warn/fail per item; exits non-zero on any failure',
    )
    .option('--json', 'one JSON object per line', false)
    .option('--critical', 'only the items a production start refuses to start on', false)
    .option(
      '--url <https-url>',
      'instead, probe a running deployment from outside: TLS, redirect, headers, CORS, docs, detailed health, rate ' +
        'limits, banners (src/cli/remote-check.ts)',
    )
    .option('--http-url <url>', 'with --url: where plain HTTP answers (default: port 80 of the same host)')
    .option('--insecure', 'with --url: accept a certificate that does not verify (self-signed staging)', false)
    .option('--ca <file>', 'with --url: also trust this CA certificate (PEM)')
    .option(
      '--burst <n>',
      'with --url: most requests sent looking for a 429 when no RateLimit header shows',
      positiveInt,
      15,
    )
    .action(
      async (options: {
        json: boolean;
        critical: boolean;
        url?: string;
        httpUrl?: string;
        insecure: boolean;
        ca?: string;
        burst: number;
      }) => {
        if (options.url) return printRemoteChecks(options);
        const [{ formatResult, runChecklist }, { inspectConfig }] = await Promise.all([
          import('./check.js'),
          import('../config/index.js'),
        ]);
        // Every item even when settings are invalid: each invalid one is a FAIL line among the others.
        const results = runChecklist(inspectConfig(), { criticalOnly: options.critical });
        for (const r of results) console.log(options.json ? JSON.stringify(r) : formatResult(r));
        const failed = results.filter((r) => r.status === 'fail').length;
        const warned = results.filter((r) => r.status === 'warn').length;
        note(`${results.length} checks: ${results.length - failed - warned} pass, ${warned} warn, ${failed} fail`);
        if (failed) process.exitCode = 1;
      },
    );

  // events
  const events = program.command('events').description('Security events');
  events
    .command('tail')
    .description('Print security events as they happen (Ctrl-C to stop)')
    .option('--since <when>', 'also print events since then: ISO date-time or 15m / 2h / 7d', parseSince)
    .option('-t, --type <type>', 'only this event type')
    .option('--severity <level>', 'only this severity (info, warning, critical)')
    .option('--interval <ms>', 'poll interval in milliseconds', positiveInt, 1000)
    .option('--json', 'one JSON object per line', false)
    .action(async (options: { since?: number; type?: string; severity?: string; interval: number; json: boolean }) => {
      const { SecurityService } = await import('../modules/security/security-service.js');
      await withContainer(async (c) => {
        const service = new SecurityService(c);
        let stopped = false;
        const stop = () => {
          stopped = true;
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
        // Start after the newest existing row unless --since asks for history.
        let lastId = options.since === undefined ? await service.newestEventId() : 0;
        note(
          `Watching security events` +
            `${options.since !== undefined ? ` since ${new Date(options.since).toISOString()}` : ''} (Ctrl-C to stop)`,
        );
        const filter = { type: options.type, severity: options.severity, since: options.since };
        while (!stopped) {
          const views = await service.eventsAfter(filter, lastId, 500);
          for (const view of views) {
            lastId = Math.max(lastId, view.id);
            console.log(options.json ? JSON.stringify(view) : formatEvent(view));
          }
          if (views.length < 500) {
            for (let waited = 0; waited < options.interval && !stopped; waited += 50) await sleep(50);
          }
        }
        note('Stopped.');
      });
    });

  events
    .command('export')
    .description(
      'Write security events as JSON lines to stdout (evidence preservation), oldest first, e.g. `flokie events ' +
        'export --since 7d > incident.jsonl`',
    )
    .option('--since <when>', 'ISO date-time or 15m / 2h / 7d', parseSince)
    .option('--until <when>', 'ISO date-time or duration', parseSince)
    .option('-t, --type <type>', 'only this event type')
    .option('--user-id <id>', 'only events of this user')
    .option('--ip <address>', 'only events from this address')
    .action(async (options: { since?: number; until?: number; type?: string; userId?: string; ip?: string }) => {
      const { SecurityService } = await import('../modules/security/security-service.js');
      await withContainer(async (c) => {
        const service = new SecurityService(c);
        const filter = {
          since: options.since,
          until: options.until,
          type: options.type,
          user_id: options.userId,
          ip: options.ip,
        };
        let lastId = 0;
        let count = 0;
        for (;;) {
          const views = await service.eventsAfter(filter, lastId, 1000);
          if (views.length === 0) break;
          const chunk = views.map((view) => JSON.stringify(view)).join('\n') + '\n';
          if (!process.stdout.write(chunk)) await new Promise((resolve) => process.stdout.once('drain', resolve));
          count += views.length;
          lastId = views[views.length - 1]!.id;
          if (views.length === 1000) note(`… ${count} events exported`);
        }
        note(`Exported ${count} event(s)`);
      });
    });

  // alerts, backup, purge (src/cli/operations.ts)
  registerOperationsCommands(program);
  registerMigrateCommand(program);
  // mail list / show (src/cli/mail.ts)
  registerMailCommands(program);

  return program;
}

export async function main(argv = process.argv): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return Number(process.exitCode ?? 0);
  } catch (error) {
    const code = (error as { code?: string; exitCode?: number }).code;
    if (typeof code === 'string' && code.startsWith('commander.')) {
      // Help and version exit 0; usage errors were already printed by commander as one line.
      return (error as { exitCode: number }).exitCode;
    }
    console.error(`flokie: error: ${describeError(error)}`);
    return 1;
  }
}
