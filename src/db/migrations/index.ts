/**
 * Every migration, in order. Listed statically (not read from disk) so the same list works under tsx,
 * in the compiled build and in tests. Names sort in the order they must run.
 */
import type { Migration } from 'kysely/migration';
import * as m0001 from './0001_installation.js';
import * as m0002 from './0002_accounts.js';
import * as m0003 from './0003_rooms.js';
import * as m0004 from './0004_ledger.js';
import * as m0005 from './0005_payments.js';
import * as m0006 from './0006_provider_event_payloads.js';
import * as m0007 from './0007_marketplace.js';
import * as m0008 from './0008_notifications.js';
import * as m0009 from './0009_marketplace_search.js';
import * as m0010 from './0010_millisecond_keysets.js';
import * as m0011 from './0011_room_owner_epoch.js';
import * as m0012 from './0012_auth_revocations.js';
import * as m0013 from './0013_user_last_seen.js';
import * as m0014 from './0014_retention_indexes.js';
import * as m0015 from './0015_auth_retention_indexes.js';
import * as m0016 from './0016_unapplied_provider_events_index.js';
import * as m0017 from './0017_unsubscribe_key.js';
import * as m0018 from './0018_paid_withdrawals_index.js';
import * as m0019 from './0019_email_token_verified_email.js';
import * as m0020 from './0020_four_digit_year_deadlines.js';
import * as m0021 from './0021_reconciler_indexes.js';
import * as m0022 from './0022_pending_emails_index.js';
import * as m0023 from './0023_blind_reviews_index.js';
import * as m0024 from './0024_job_search_tags_and_paths.js';
import * as m0025 from './0025_user_search_tags_and_paths.js';
import * as m0026 from './0026_bids_withdrawn_by_lock.js';
import * as m0027 from './0027_payment_submit_attempts.js';

export const migrations: Readonly<Record<string, Migration>> = {
  '0001_installation': m0001,
  '0002_accounts': m0002,
  '0003_rooms': m0003,
  '0004_ledger': m0004,
  '0005_payments': m0005,
  '0006_provider_event_payloads': m0006,
  '0007_marketplace': m0007,
  '0008_notifications': m0008,
  '0009_marketplace_search': m0009,
  '0010_millisecond_keysets': m0010,
  '0011_room_owner_epoch': m0011,
  '0012_auth_revocations': m0012,
  '0013_user_last_seen': m0013,
  '0014_retention_indexes': m0014,
  '0015_auth_retention_indexes': m0015,
  '0016_unapplied_provider_events_index': m0016,
  '0017_unsubscribe_key': m0017,
  '0018_paid_withdrawals_index': m0018,
  '0019_email_token_verified_email': m0019,
  '0020_four_digit_year_deadlines': m0020,
  '0021_reconciler_indexes': m0021,
  '0022_pending_emails_index': m0022,
  '0023_blind_reviews_index': m0023,
  '0024_job_search_tags_and_paths': m0024,
  '0025_user_search_tags_and_paths': m0025,
  '0026_bids_withdrawn_by_lock': m0026,
  '0027_payment_submit_attempts': m0027,
};
