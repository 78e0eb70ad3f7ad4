/** Kysely's view of the schema: one `*.table.ts` per table (or small family of tables), gathered here. */
import type { InstallationTable } from './tables/installation.table.js';
import type {
  IdempotencyKeysTable,
  LedgerAccountsTable,
  LedgerEntriesTable,
  LedgerEscrowsTable,
  LedgerHoldsTable,
  LedgerTransactionsTable,
  PaymentsTable,
  ProviderEventsTable,
} from './tables/ledger.table.js';
import type {
  BidsTable,
  CategoriesTable,
  ContractsTable,
  ContractTransitionsTable,
  JobsTable,
  ReviewsTable,
  UserRatingsTable,
} from './tables/marketplace.table.js';
import type {
  NotificationDigestsTable,
  NotificationPreferencesTable,
  NotificationsTable,
} from './tables/notifications.table.js';
import type { EmailsTable, OutboxEventsTable } from './tables/outbox.table.js';
import type { MessagesTable, RoomMembersTable, RoomsTable } from './tables/rooms.table.js';
import type {
  EmailTokensTable,
  RefreshTokensTable,
  SessionsTable,
  SigningKeysTable,
} from './tables/sessions.table.js';
import type { ContactsTable, UserLastSeenTable, UsersTable } from './tables/users.table.js';

export interface Database {
  installation: InstallationTable;
  users: UsersTable;
  user_last_seen: UserLastSeenTable;
  contacts: ContactsTable;
  sessions: SessionsTable;
  refresh_tokens: RefreshTokensTable;
  signing_keys: SigningKeysTable;
  email_tokens: EmailTokensTable;
  outbox_events: OutboxEventsTable;
  emails: EmailsTable;
  rooms: RoomsTable;
  room_members: RoomMembersTable;
  messages: MessagesTable;
  ledger_accounts: LedgerAccountsTable;
  ledger_transactions: LedgerTransactionsTable;
  ledger_entries: LedgerEntriesTable;
  ledger_holds: LedgerHoldsTable;
  ledger_escrows: LedgerEscrowsTable;
  idempotency_keys: IdempotencyKeysTable;
  payments: PaymentsTable;
  provider_events: ProviderEventsTable;
  categories: CategoriesTable;
  jobs: JobsTable;
  bids: BidsTable;
  contracts: ContractsTable;
  contract_transitions: ContractTransitionsTable;
  reviews: ReviewsTable;
  user_ratings: UserRatingsTable;
  notifications: NotificationsTable;
  notification_digests: NotificationDigestsTable;
  notification_preferences: NotificationPreferencesTable;
}
