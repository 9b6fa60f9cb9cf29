/**
 * Reading the development outbox (the .eml files Mailer writes to MAIL_OUTBOX_DIR when SMTP_URL
 * is unset) for `flokie mail list` / `mail show`. The files are MIME (quoted-printable text, with
 * soft line breaks inside long links), so they are decoded with mailparser, never by hand; the
 * links are then taken whole from the decoded text.
 */
import { readdir, readFile } from 'node:fs/promises';
import { resolve } from 'node:path';

export interface OutboxMessage {
  /** 1 = the oldest message in the folder. */
  number: number;
  file: string;
  date: Date | null;
  from: string;
  to: string;
  subject: string;
  text: string;
  links: string[];
}

/** http(s) URLs in decoded text; sentence punctuation after a link is not part of it. */
export function linksIn(text: string): string[] {
  const found = text.match(/https?:\/\/[^\s<>"']+/g) ?? [];
  return found.map((link) => link.replace(/[.,;:!?)\]]+$/, ''));
}

/** Decodes one raw message (a .eml file or what an SMTP server received). */
export async function parseMessage(raw: string | Buffer): Promise<Omit<OutboxMessage, 'number' | 'file'>> {
  // Loaded on use: the CLI's --help and the service never need the parser.
  const { simpleParser } = await import('mailparser');
  const mail = await simpleParser(raw, { skipHtmlToText: true, skipTextToHtml: true, skipImageLinks: true });
  const addresses = (value: typeof mail.to) =>
    Array.isArray(value) ? value.map((a) => a.text).join(', ') : (value?.text ?? '');
  const text = mail.text ?? '';
  return {
    date: mail.date ?? null,
    from: mail.from?.text ?? '',
    to: addresses(mail.to),
    subject: mail.subject ?? '',
    text,
    links: linksIn(text),
  };
}

/** The folder's .eml file names, oldest first (Mailer names them by their ISO time); none without the folder. */
export async function outboxFiles(dir: string): Promise<string[]> {
  try {
    // eslint-disable-next-line security/detect-non-literal-fs-filename -- the outbox folder from MAIL_OUTBOX_DIR
    const names = await readdir(dir);
    return names.filter((name) => name.endsWith('.eml')).sort();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}

export async function readOutboxMessage(dir: string, files: string[], number: number): Promise<OutboxMessage> {
  const file = files[number - 1]!;
  // eslint-disable-next-line security/detect-non-literal-fs-filename -- a file listed from the outbox folder
  const raw = await readFile(resolve(dir, file));
  return { number, file, ...(await parseMessage(raw)) };
}
