/**
 * Development mail commands: without SMTP_URL the service writes each message as an .eml file
 * to MAIL_OUTBOX_DIR (src/mail/mailer.ts). These print them decoded, with every link whole, so a
 * developer can open a verification or reset link (copied from the raw quoted-printable file, a
 * token is broken by soft line breaks and `=3D`).
 *   flokie mail list          one line per message, oldest first, numbered
 *   flokie mail show <n>      message n (or `last`): headers, decoded text, links
 */
import { resolve } from 'node:path';
import { type Command, InvalidArgumentError } from 'commander';
import { CliError, config, note } from './context.js';

// Loaded when a command runs (mailparser is heavy): `flokie --help` stays fast.
const outboxModule = () => import('../mail/outbox.js');

/** Message text comes from files on disk: no terminal control sequence reaches the screen. */
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;
const printable = (text: string) => text.replace(CONTROL, '');

function messageNumber(value: string): number | 'last' {
  if (value === 'last') return 'last';
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) {
    throw new InvalidArgumentError('expected a message number from `flokie mail list`, or `last`');
  }
  return n;
}

function outboxDir(): string {
  const cfg = config();
  if (cfg.SMTP_URL) note('SMTP_URL is set: new messages go over SMTP; only what is left in MAIL_OUTBOX_DIR is here.');
  return resolve(process.cwd(), cfg.MAIL_OUTBOX_DIR);
}

export function registerMailCommands(program: Command): void {
  const mail = program
    .command('mail')
    .description('The development outbox (MAIL_OUTBOX_DIR, when SMTP_URL is unset): messages decoded, links whole');

  mail
    .command('list')
    .description('One line per message in the outbox, oldest first: number, date, recipient, subject')
    .action(async () => {
      const dir = outboxDir();
      const { outboxFiles, readOutboxMessage } = await outboxModule();
      const files = await outboxFiles(dir);
      if (files.length === 0) {
        note(`No messages in ${dir}`);
        return;
      }
      for (let number = 1; number <= files.length; number += 1) {
        const m = await readOutboxMessage(dir, files, number);
        const date = m.date ? m.date.toISOString().replace('T', ' ').slice(0, 19) : '-';
        console.log(printable(`${String(number).padStart(3)}  ${date}  ${m.to}  ${m.subject}`));
      }
      note(`${files.length} message(s) in ${dir}; \`flokie mail show <n>\` prints one`);
    });

  mail
    .command('show')
    .description('Print one message: headers, the decoded text, then every link on its own line')
    .argument('<n>', 'the number from `flokie mail list`, or `last`', messageNumber)
    .action(async (n: number | 'last') => {
      const dir = outboxDir();
      const { outboxFiles, readOutboxMessage } = await outboxModule();
      const files = await outboxFiles(dir);
      const number = n === 'last' ? files.length : n;
      if (files.length === 0) throw new CliError(`no messages in ${dir}`);
      if (number > files.length) throw new CliError(`no message ${number}: the outbox has ${files.length}`);
      const m = await readOutboxMessage(dir, files, number);
      const lines = [
        `Message ${m.number} of ${files.length} (${m.file})`,
        `Date:    ${m.date ? m.date.toISOString() : '-'}`,
        `From:    ${m.from}`,
        `To:      ${m.to}`,
        `Subject: ${m.subject}`,
        '',
        m.text.trimEnd(),
        '',
        m.links.length ? 'Links:' : 'Links: none',
        ...m.links.map((link) => `  ${link}`),
      ];
      console.log(printable(lines.join('\n')).replace(/\r/g, ''));
    });
}
