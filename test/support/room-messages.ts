/** A message to write straight through a RoomStore in store-level tests (body derived from the id). */
import type { UserId } from '../../protocol/src/ids.js';
import type { NewMessage } from '../../src/actors/room/room-store.js';

export const newMessage = (senderId: UserId, seq: number, clientMsgId: string): NewMessage => ({
  seq,
  senderId,
  clientMsgId,
  body: `body ${clientMsgId}`,
  meta: null,
});
