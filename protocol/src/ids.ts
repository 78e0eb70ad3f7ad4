/**
 * Branded ids: a UserId cannot be passed where a SessionId is expected. Values are UUIDs. Parse
 * untrusted input with these schemas; `as UserId` appears only here and in test factories.
 */
import { z } from 'zod';

/**
 * A UUID as accepted (either case, as RFC 9562 allows) and then lower-cased: PostgreSQL prints
 * uuids in lower case, and ids are compared and used as map keys as strings (batched readers, "is
 * this me" checks, room and presence maps), so an upper-case id would match nothing. The lower-casing
 * changes no JSON Schema: the pattern still admits A-F, as the input may have it.
 */
export const Uuid = z.uuid().toLowerCase();

export const UserId = Uuid.brand<'UserId'>();
export type UserId = z.infer<typeof UserId>;

export const SessionId = Uuid.brand<'SessionId'>();
export type SessionId = z.infer<typeof SessionId>;

export const EmailId = Uuid.brand<'EmailId'>();
export type EmailId = z.infer<typeof EmailId>;

export const OutboxEventId = Uuid.brand<'OutboxEventId'>();
export type OutboxEventId = z.infer<typeof OutboxEventId>;

export const RoomId = Uuid.brand<'RoomId'>();
export type RoomId = z.infer<typeof RoomId>;

export const CategoryId = Uuid.brand<'CategoryId'>();
export type CategoryId = z.infer<typeof CategoryId>;

export const JobId = Uuid.brand<'JobId'>();
export type JobId = z.infer<typeof JobId>;

export const BidId = Uuid.brand<'BidId'>();
export type BidId = z.infer<typeof BidId>;

export const ContractId = Uuid.brand<'ContractId'>();
export type ContractId = z.infer<typeof ContractId>;

export const ReviewId = Uuid.brand<'ReviewId'>();
export type ReviewId = z.infer<typeof ReviewId>;

export const NotificationId = Uuid.brand<'NotificationId'>();
export type NotificationId = z.infer<typeof NotificationId>;
