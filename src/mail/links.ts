/**
 * The one place that builds the links Flokie e-mails. Each kind has a URL template setting
 * (EMAIL_VERIFY_URL, PASSWORD_RESET_URL, EMAIL_CHANGE_CONFIRM_URL) with `{token}` where the token
 * goes, checked when the configuration loads (src/config/settings.ts); unset, the link is a page
 * on PUBLIC_URL. The token is URL-encoded into every `{token}` of the template.
 */
import type { Config } from '../config/index.js';

export type LinkKind = 'verify_email' | 'password_reset' | 'email_change';

const DEFAULT_PATHS: Record<LinkKind, string> = {
  verify_email: '/verify-email?token={token}',
  password_reset: '/reset-password?token={token}',
  email_change: '/confirm-email-change?token={token}',
};

export class MailLinks {
  private readonly templates: Record<LinkKind, string>;

  constructor(
    config: Pick<Config, 'publicUrl' | 'EMAIL_VERIFY_URL' | 'PASSWORD_RESET_URL' | 'EMAIL_CHANGE_CONFIRM_URL'>,
  ) {
    const template = (kind: LinkKind, configured: string) => configured || `${config.publicUrl}${DEFAULT_PATHS[kind]}`;
    this.templates = {
      verify_email: template('verify_email', config.EMAIL_VERIFY_URL),
      password_reset: template('password_reset', config.PASSWORD_RESET_URL),
      email_change: template('email_change', config.EMAIL_CHANGE_CONFIRM_URL),
    };
  }

  build(kind: LinkKind, token: string): string {
    return this.templates[kind].replaceAll('{token}', encodeURIComponent(token));
  }
}
