/**
 * A minimal typed event emitter (no Node EventEmitter: the SDK runs in browsers). `on` returns the
 * unsubscribe function. A throwing handler does not break the client or the other handlers: the
 * exception is passed to `onHandlerError`.
 */

export class Emitter<Events extends object> {
  private readonly handlers = new Map<keyof Events, Set<(payload: never) => void>>();

  constructor(private readonly onHandlerError: (event: keyof Events, error: unknown) => void) {}

  on<E extends keyof Events>(event: E, handler: (payload: Events[E]) => void): () => void {
    let set = this.handlers.get(event);
    if (set === undefined) {
      set = new Set();
      this.handlers.set(event, set);
    }
    const entry = handler as (payload: never) => void;
    set.add(entry);
    return () => {
      this.handlers.get(event)?.delete(entry);
    };
  }

  emit<E extends keyof Events>(event: E, payload: Events[E]): void {
    const set = this.handlers.get(event);
    if (set === undefined) return;
    for (const handler of [...set]) {
      try {
        (handler as (payload: Events[E]) => void)(payload);
      } catch (error) {
        this.onHandlerError(event, error);
      }
    }
  }

  listenerCount(event: keyof Events): number {
    return this.handlers.get(event)?.size ?? 0;
  }

  clear(): void {
    this.handlers.clear();
  }
}
