/**
 * Outgoing mail. With SMTP_URL set, messages go over SMTP with nodemailer; otherwise each message
 * is written as an .eml file to MAIL_OUTBOX_DIR, so a laptop needs no mail server and a developer
 * can open the links. Sending never fails the request that caused it: errors are logged.
 */
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import nodemailer, { type Transporter } from 'nodemailer';

export interface MailMessage {
  to: string;
  subject: string;
  text: string;
}

export interface MailerOptions {
  smtpUrl?: string;
  from: string;
  outboxDir: string;
  cwd?: string;
}

export class Mailer {
  private readonly transport: Transporter;
  private readonly outboxDir: string | undefined;
  private readonly pending = new Set<Promise<unknown>>();

  constructor(
    private readonly options: MailerOptions,
    private readonly onError: (error: unknown, message: MailMessage) => void,
  ) {
    if (options.smtpUrl) {
      this.transport = nodemailer.createTransport(options.smtpUrl);
    } else {
      this.outboxDir = resolve(options.cwd ?? process.cwd(), options.outboxDir);
      this.transport = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'unix' });
    }
  }

  /** Queues a message and returns at once; `flush()` waits for everything queued. */
  send(message: MailMessage): void {
    const task = this.deliver(message)
      .catch((error: unknown) => this.onError(error, message))
      .finally(() => this.pending.delete(task));
    this.pending.add(task);
  }

  /** Sends now and reports the outcome (alerts: the outbox marks a row sent only when this resolved). */
  sendNow(message: MailMessage): Promise<void> {
    const task = this.deliver(message);
    const tracked = task.catch(() => {}).finally(() => this.pending.delete(tracked));
    this.pending.add(tracked);
    return task;
  }

  private async deliver(message: MailMessage): Promise<void> {
    const info = await this.transport.sendMail({ from: this.options.from, ...message });
    if (this.outboxDir) {
      const { writeFile } = await import('node:fs/promises');
      // eslint-disable-next-line security/detect-non-literal-fs-filename -- outbox folder from MAIL_OUTBOX_DIR
      mkdirSync(this.outboxDir, { recursive: true });
      const stamp = new Date().toISOString().replace(/[:.]/g, '-');
      const name = `${stamp}-${info.messageId.replace(/[^A-Za-z0-9]/g, '').slice(0, 24)}.eml`;
      await writeFile(resolve(this.outboxDir, name), info.message as Buffer, { mode: 0o600 });
    }
  }

  async flush(): Promise<void> {
    await Promise.allSettled([...this.pending]);
  }

  async close(): Promise<void> {
    await this.flush();
    this.transport.close();
  }
}
