/**
 * The bounded FIFO of one actor: a ring buffer that starts small and doubles up to its capacity, never
 * beyond, so a flood costs the sender a RATE_LIMITED error instead of the node its memory, and a
 * quiet actor costs a few slots. Each message may carry an attachment (the pending request of an
 * `ask`); attachments live in a second ring that is only allocated once one is queued, so plain `tell`
 * traffic allocates nothing per message.
 */

const INITIAL_SLOTS = 4;

export class BoundedMailbox<Msg, Attachment> {
  /** Most messages held at once (whole number ≥ 1). */
  readonly capacity: number;
  private messages: (Msg | undefined)[];
  private attachments: (Attachment | undefined)[] | undefined;
  /** Slot of the oldest message. */
  private head = 0;
  private count = 0;

  constructor(capacity: number) {
    if (!(Number.isInteger(capacity) && capacity >= 1)) {
      throw new RangeError(`mailbox capacity must be a whole number ≥ 1 (got ${capacity})`);
    }
    this.capacity = capacity;
    this.messages = new Array<Msg | undefined>(Math.min(INITIAL_SLOTS, capacity));
  }

  get size(): number {
    return this.count;
  }

  get isEmpty(): boolean {
    return this.count === 0;
  }

  get isFull(): boolean {
    return this.count === this.capacity;
  }

  /** Appends at the tail; false (and nothing queued) when the mailbox is full. */
  offer(message: Msg, attachment?: Attachment): boolean {
    if (this.count === this.capacity) return false;
    if (this.count === this.messages.length) this.grow();
    const slot = (this.head + this.count) % this.messages.length;
    this.messages[slot] = message;
    if (attachment !== undefined) {
      if (this.attachments === undefined) {
        this.attachments = new Array<Attachment | undefined>(this.messages.length);
      }
      this.attachments[slot] = attachment;
    }
    this.count++;
    return true;
  }

  /** The attachment of the oldest message (read it before `take`), or undefined. */
  peekAttachment(): Attachment | undefined {
    return this.count === 0 ? undefined : this.attachments?.[this.head];
  }

  /** Removes and returns the oldest message. Precondition: not empty. */
  take(): Msg {
    if (this.count === 0) throw new RangeError('take() on an empty mailbox');
    const slot = this.head;
    // The slot is filled: count > 0 guarantees it, whatever Msg itself admits.
    const message = this.messages[slot] as Msg;
    this.messages[slot] = undefined;
    if (this.attachments !== undefined) this.attachments[slot] = undefined;
    this.head = (slot + 1) % this.messages.length;
    this.count--;
    return message;
  }

  /** Empties the mailbox, oldest first, handing each message to `visit`; returns how many there were. */
  clear(visit?: (message: Msg, attachment: Attachment | undefined) => void): number {
    const dropped = this.count;
    while (this.count > 0) {
      const attachment = this.peekAttachment();
      const message = this.take();
      visit?.(message, attachment);
    }
    this.head = 0;
    return dropped;
  }

  private grow(): void {
    const length = this.messages.length;
    const slots = Math.min(this.capacity, length * 2);
    const messages = new Array<Msg | undefined>(slots);
    const attachments = this.attachments === undefined ? undefined : new Array<Attachment | undefined>(slots);
    for (let index = 0; index < this.count; index++) {
      const from = (this.head + index) % length;
      messages[index] = this.messages[from];
      if (attachments !== undefined) attachments[index] = this.attachments?.[from];
    }
    this.messages = messages;
    this.attachments = attachments;
    this.head = 0;
  }
}
