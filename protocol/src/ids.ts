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
