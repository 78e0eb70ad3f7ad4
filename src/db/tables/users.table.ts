import type { ColumnType, Generated } from 'kysely';
import type { UserId } from '../../../protocol/src/ids.js';
import type { Availability } from '../../../protocol/src/rest/users.js';

export type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;

export interface UsersTable {
  id: Generated<UserId>;
  username: string;
  email: string;
  email_verified_at: Date | null;
  password_hash: string;
  roles: ColumnType<string[], string[] | undefined, string[]>;
  display_name: string | null;
  bio: string | null;
  avatar_url: string | null;
  location: string | null;
  skills: ColumnType<string[], string[] | undefined, string[]>;
  hourly_rate_amount: number | null;
  hourly_rate_currency: string | null;
  availability: Availability | null;
  portfolio_links: ColumnType<string[], string[] | undefined, string[]>;
  search_document: string;
  session_version: Generated<number>;
  locked_at: Date | null;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}

/** When each user was last seen going offline (a narrow table: one is written per disconnect). */
export interface UserLastSeenTable {
  user_id: UserId;
  last_seen_at: Date;
}

export interface ContactsTable {
  user_id: UserId;
  contact_id: UserId;
  created_at: Generated<Date>;
}
