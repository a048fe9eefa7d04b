import { createHash, randomBytes } from 'node:crypto';
import { LinesightError } from '@linesight/protocol';
import type { RegistryDatabase } from './database.ts';
import { isRole, type Role } from './roles.ts';

/** A named token as listed (never the token itself). */
export interface ApiTokenInfo {
  actor: string;
  role: Role;
  createdAt: string;
  createdBy: string;
}

const ACTOR = /^[a-z0-9][a-z0-9_.@-]{0,63}$/;

function hash(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/**
 * Named operator tokens, so changes carry who made them and a second person
 * can approve a promotion. Tokens are 192 random bits, stored only as SHA-256.
 */
export class ApiTokens {
  readonly #db: RegistryDatabase;

  constructor(db: RegistryDatabase) {
    this.#db = db;
  }

  /** Creates a token for an actor with a role (default operator); the token is shown only this once. */
  create(
    actor: string,
    createdBy: string,
    role: Role = 'operator',
  ): { actor: string; role: Role; token: string } {
    if (!ACTOR.test(actor) || actor === 'admin') {
      throw new LinesightError(
        'ERR_CLOUD_BAD_REQUEST',
        `invalid actor ${JSON.stringify(actor)}: use 1-64 of a-z 0-9 _ . @ - (and not "admin")`,
      );
    }
    if (!isRole(role))
      throw new LinesightError(
        'ERR_CLOUD_BAD_REQUEST',
        `invalid role ${JSON.stringify(role)}: use viewer, operator or admin`,
      );
    const token = `lso_${randomBytes(24).toString('base64url')}`;
    try {
      this.#db
        .prepare(
          'INSERT INTO api_tokens (token_sha256, actor, role, created_at, created_by) VALUES (?, ?, ?, ?, ?)',
        )
        .run(hash(token), actor, role, new Date().toISOString(), createdBy);
    } catch (cause) {
      if ((cause as { code?: string }).code?.startsWith('SQLITE_CONSTRAINT')) {
        throw new LinesightError('ERR_CLOUD_CONFLICT', `actor ${actor} already has a token`, {
          cause,
        });
      }
      throw cause;
    }
    return { actor, role, token };
  }

  /** Every named token's actor, role and who made it when (never the token). */
  list(): ApiTokenInfo[] {
    return this.#db
      .prepare(
        'SELECT actor, role, created_at AS createdAt, created_by AS createdBy FROM api_tokens ORDER BY actor',
      )
      .all() as ApiTokenInfo[];
  }

  /** Revokes an actor's token: it stops working at once. ERR_CLOUD_NOT_FOUND when there is none. */
  revoke(actor: string): void {
    const removed = this.#db.prepare('DELETE FROM api_tokens WHERE actor = ?').run(actor).changes;
    if (removed === 0)
      throw new LinesightError('ERR_CLOUD_NOT_FOUND', `actor ${actor} has no token`);
  }

  /** The actor a token belongs to and its role, if any. */
  holderOf(token: string): { actor: string; role: Role } | undefined {
    return this.#db
      .prepare('SELECT actor, role FROM api_tokens WHERE token_sha256 = ?')
      .get(hash(token)) as { actor: string; role: Role } | undefined;
  }
}
