/**
 * Password hashing: the one place that creates and checks password hashes.
 *
 * Both libraries are native and run in libuv's thread pool, so a slow hash never blocks the
 * event loop. At most `concurrency` hashes run at once (one per core by default), the rest wait
 * in order: the pool has four threads, and four hashes on two cores would leave none for the
 * process's other pool work (asynchronous file and DNS calls) and take the cores from the event
 * loop. New hashes use the configured algorithm; any stored hash that still verifies but was
 * made with another algorithm or weaker parameters is reported by `needsRehash`, and the login
 * flow replaces it.
 */
import { availableParallelism } from 'node:os';
import * as argon2 from '@node-rs/argon2';
import * as bcrypt from '@node-rs/bcrypt';
import pLimit, { type LimitFunction } from 'p-limit';

export type HasherName = 'bcrypt' | 'argon2id';

/** OWASP's argon2id baseline (19 MiB, 2 passes, 1 lane). */
const ARGON2ID = { algorithm: 2 /* Argon2id */, memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;

const BCRYPT_PREFIX = /^\$2[abxy]\$(\d{2})\$/;
/** bcrypt hashes the first 72 bytes of its input and ignores the rest. */
export const BCRYPT_MAX_BYTES = 72;

/**
 * The part of a password that `algorithm` really hashes, as text: with bcrypt the longest run of
 * whole characters within the first 72 UTF-8 bytes (a character cut by byte 72 is left out:
 * its first bytes count for bcrypt, but as text it is not there); argon2id hashes all of it.
 * password-policy.ts applies every rule to this text, so a long password cannot pass on a strong
 * tail that bcrypt throws away.
 */
export function hashedText(password: string, algorithm: HasherName): string {
  if (algorithm !== 'bcrypt' || Buffer.byteLength(password) <= BCRYPT_MAX_BYTES) return password;
  let bytes = 0;
  let end = 0;
  for (const char of password) {
    bytes += Buffer.byteLength(char);
    if (bytes > BCRYPT_MAX_BYTES) break;
    end += char.length;
  }
  return password.slice(0, end);
}

export class PasswordHasher {
  private dummyHash: Promise<string> | undefined;
  private readonly limit: LimitFunction;

  /** `concurrency` 0: one hash per CPU core. */
  constructor(
    readonly algorithm: HasherName,
    readonly bcryptRounds: number,
    concurrency = 0,
  ) {
    this.limit = pLimit(concurrency || availableParallelism());
  }

  /** Hashes running now, and waiting for a turn (for /api/health/detailed). */
  get load(): { active: number; waiting: number } {
    return { active: this.limit.activeCount, waiting: this.limit.pendingCount };
  }

  hash(password: string): Promise<string> {
    return this.limit(() =>
      this.algorithm === 'argon2id' ? argon2.hash(password, ARGON2ID) : bcrypt.hash(password, this.bcryptRounds),
    );
  }

  async verify(password: string, storedHash: string): Promise<boolean> {
    try {
      if (storedHash.startsWith('$argon2')) return await this.limit(() => argon2.verify(storedHash, password));
      if (BCRYPT_PREFIX.test(storedHash)) return await this.limit(() => bcrypt.verify(password, storedHash));
    } catch {
      // A malformed stored hash is a failed verification, never a crash.
    }
    return false;
  }

  /**
   * Spends the same work as a real verification against a hash that matches nothing, so that a
   * login for an unknown user takes as long as one for a known user.
   */
  async verifyDummy(password: string): Promise<false> {
    this.dummyHash ??= this.hash(`dummy-${Math.random()}`);
    await this.verify(password, await this.dummyHash);
    return false;
  }

  needsRehash(storedHash: string): boolean {
    if (this.algorithm === 'bcrypt') {
      const cost = BCRYPT_PREFIX.exec(storedHash)?.[1];
      return cost === undefined || Number(cost) < this.bcryptRounds;
    }
    const params = /^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$/.exec(storedHash);
    if (!params) return true;
    return Number(params[1]) < ARGON2ID.memoryCost || Number(params[2]) < ARGON2ID.timeCost;
  }
}
