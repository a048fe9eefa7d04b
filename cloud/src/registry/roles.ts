import { API_ROLES } from '@linesight/protocol';

/**
 * What a named API token may do. Each role includes the ones before it:
 * `viewer` reads (and asks for central inference), `operator` also changes
 * models, rollouts and labels, `admin` also manages devices, keys and tokens.
 */
export const ROLES = API_ROLES;

/** A token's role. */
export type Role = (typeof ROLES)[number];

/** True when a caller with `held` may do what needs `needed`. */
export function roleAllows(held: Role, needed: Role): boolean {
  return ROLES.indexOf(held) >= ROLES.indexOf(needed);
}

/** Narrows a string to a role. */
export function isRole(value: string): value is Role {
  return (ROLES as readonly string[]).includes(value);
}
