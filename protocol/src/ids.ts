/**
 * Branded ids: a UserId cannot be passed where a SessionId is expected. Values are UUIDs. Parse
 * untrusted input with these schemas; `as UserId` appears only here and in test factories.
 */
import { z } from 'zod';

export const UserId = z.uuid().brand<'UserId'>();
export type UserId = z.infer<typeof UserId>;

export const SessionId = z.uuid().brand<'SessionId'>();
export type SessionId = z.infer<typeof SessionId>;

export const EmailId = z.uuid().brand<'EmailId'>();
export type EmailId = z.infer<typeof EmailId>;

export const OutboxEventId = z.uuid().brand<'OutboxEventId'>();
export type OutboxEventId = z.infer<typeof OutboxEventId>;

export const RoomId = z.uuid().brand<'RoomId'>();
export type RoomId = z.infer<typeof RoomId>;

export const CategoryId = z.uuid().brand<'CategoryId'>();
export type CategoryId = z.infer<typeof CategoryId>;

export const JobId = z.uuid().brand<'JobId'>();
export type JobId = z.infer<typeof JobId>;

export const BidId = z.uuid().brand<'BidId'>();
export type BidId = z.infer<typeof BidId>;

export const ContractId = z.uuid().brand<'ContractId'>();
export type ContractId = z.infer<typeof ContractId>;

export const ReviewId = z.uuid().brand<'ReviewId'>();
export type ReviewId = z.infer<typeof ReviewId>;

export const NotificationId = z.uuid().brand<'NotificationId'>();
export type NotificationId = z.infer<typeof NotificationId>;
