/**
 * Password strength rules: the one place that decides whether a new password is acceptable.
 * Every failed rule is reported, so the 400 says exactly what to fix.
 *
 * Every rule (length, character classes, username/e-mail inclusion, common and breached lists,
 * zxcvbn score) applies to the text the configured hasher really hashes (`hashedText`,
 * password-hasher.ts): with bcrypt the first 72 bytes, so `'a' * 72 + a strong tail` is judged
 * as `'a' * 72`. Only the upper length limit applies to the whole input. The zxcvbn estimate
 * runs in worker threads (password-strength.ts) on that bounded text.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as common from '@zxcvbn-ts/language-common';
import type { Config } from '../../config/index.js';
import { BCRYPT_MAX_BYTES, hashedText } from './password-hasher.js';
import { WorkerStrengthEstimator, type StrengthEstimator } from './password-strength.js';

export interface PasswordContext {
  username?: string | null;
  email?: string | null;
  first_name?: string | null;
  last_name?: string | null;
}

const sha1 = (text: string) => createHash('sha1').update(text).digest('hex').toUpperCase();

export class PasswordPolicy {
  /** zxcvbn's list of the most common passwords from public breaches, for exact matches. */
  private readonly commonPasswords = new Set(common.dictionary['passwords-common'].map((p) => p.toLowerCase()));
  /** SHA-1 (upper-case hex) of every password in BREACHED_PASSWORDS_FILE. */
  private readonly breached = new Set<string>();
  private readonly estimator: StrengthEstimator;

  constructor(
    private readonly config: Config,
    estimator?: StrengthEstimator,
  ) {
    this.estimator = estimator ?? new WorkerStrengthEstimator(config.PASSWORD_STRENGTH_WORKERS);
    if (config.BREACHED_PASSWORDS_FILE) {
      // eslint-disable-next-line security/detect-non-literal-fs-filename -- named by the operator
      for (const line of readFileSync(config.BREACHED_PASSWORDS_FILE, 'utf8').split(/\r?\n/)) {
        const entry = line.trim();
        if (!entry) continue;
        // eslint-disable-next-line security/detect-unsafe-regex -- anchored, no nested quantifiers
        const hex = /^([0-9a-fA-F]{40})(:\d+)?$/.exec(entry);
        this.breached.add(hex ? hex[1]!.toUpperCase() : sha1(entry));
      }
    }
  }

  /** Problems with the password, in words a user understands; empty when acceptable. */
  async check(password: string, context: PasswordContext = {}): Promise<string[]> {
    const c = this.config;
    const problems: string[] = [];
    if ([...password].length > c.MAX_PASSWORD_LENGTH)
      return [`Password must be at most ${c.MAX_PASSWORD_LENGTH} characters`];
    const text = hashedText(password, c.PASSWORD_HASHER);
    if ([...text].length < c.MIN_PASSWORD_LENGTH)
      problems.push(`Password must be at least ${c.MIN_PASSWORD_LENGTH} characters`);
    if (c.PASSWORD_REQUIRE_UPPER && !/\p{Lu}/u.test(text)) problems.push('Password must contain an upper-case letter');
    if (c.PASSWORD_REQUIRE_LOWER && !/\p{Ll}/u.test(text)) problems.push('Password must contain a lower-case letter');
    if (c.PASSWORD_REQUIRE_DIGIT && !/\p{Nd}/u.test(text)) problems.push('Password must contain a digit');
    if (c.PASSWORD_REQUIRE_SYMBOL && !/[^\p{L}\p{Nd}]/u.test(text)) problems.push('Password must contain a symbol');

    const lower = text.toLowerCase();
    const personal = [context.username, context.email, context.email?.split('@')[0]]
      .filter((v): v is string => typeof v === 'string' && v.length >= 3)
      .map((v) => v.toLowerCase());
    if (personal.some((v) => lower.includes(v)))
      problems.push('Password must not contain your username or e-mail address');

    if (this.commonPasswords.has(lower)) problems.push('Password is too common');
    else if (this.breached.size > 0 && this.breached.has(sha1(text)))
      problems.push('Password appears in a list of breached passwords');

    if (problems.length === 0 && c.PASSWORD_MIN_SCORE > 0) {
      const inputs = [context.username, context.email, context.first_name, context.last_name].filter(
        (v): v is string => !!v,
      );
      const score = await this.estimator.score(text, inputs);
      if (score < c.PASSWORD_MIN_SCORE)
        problems.push('Password is too easy to guess; use a longer phrase or mix unrelated words');
    }
    if (problems.length > 0 && text !== password) {
      problems.push(
        `Only the first ${BCRYPT_MAX_BYTES} bytes of a password count (bcrypt); the rules apply to them alone`,
      );
    }
    return problems;
  }

  close(): Promise<void> {
    return this.estimator.close();
  }
}
