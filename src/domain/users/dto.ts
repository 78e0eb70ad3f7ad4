/** Rows to the REST shapes of protocol/src/rest/users.ts. The only place user rows become DTOs. */
import type { Me, PublicUser, Role } from '../../../protocol/src/rest/users.js';
import type { ProfileRow } from '../../db/repositories/users.repo.js';

const KNOWN_ROLES: readonly Role[] = ['worker', 'hirer', 'admin'];
export const rolesOf = (row: Pick<ProfileRow, 'roles'>): Role[] =>
  KNOWN_ROLES.filter((role) => row.roles.includes(role));

/**
 * The roles other users see: `admin` is granted by the operators, not a marketplace role, and
 * showing it in profiles, search and contact lists told anyone who the moderators are (a target
 * list for phishing and social engineering). The user's own /v1/me and the admin console (`toMe`)
 * keep it.
 */
export const publicRolesOf = (row: Pick<ProfileRow, 'roles'>): Role[] =>
  rolesOf(row).filter((role) => role !== 'admin');

/** The public profile (GET /v1/users/:id, search, contacts): the roles of `publicRolesOf`. */
export function toPublicUser(row: ProfileRow): PublicUser {
  return profileWithRoles(row, publicRolesOf(row));
}

function profileWithRoles(row: ProfileRow, roles: Role[]): PublicUser {
  return {
    id: row.id,
    username: row.username,
    roles,
    displayName: row.display_name,
    bio: row.bio,
    avatarUrl: row.avatar_url,
    location: row.location,
    workerProfile: roles.includes('worker')
      ? {
          skills: row.skills,
          hourlyRate:
            row.hourly_rate_amount !== null && row.hourly_rate_currency !== null
              ? { amount: row.hourly_rate_amount, currency: row.hourly_rate_currency }
              : null,
          availability: row.availability,
          portfolioLinks: row.portfolio_links,
        }
      : null,
    createdAt: row.created_at.toISOString(),
  };
}

export function toMe(row: ProfileRow): Me {
  return {
    ...profileWithRoles(row, rolesOf(row)),
    email: row.email,
    emailVerified: row.email_verified_at !== null,
  };
}
