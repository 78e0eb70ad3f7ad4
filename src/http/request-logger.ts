/**
 * The per-request logger, created only when a line is written (issue 15).
 *
 * Fastify gives every request a child logger carrying its request id. pino's child() is not cheap:
 * it serializes the bindings through the logger's redaction (~7 % of GET /v1/me's CPU in the
 * profile), and at LOG_LEVEL=warn or above a successful request writes no line at all, so that work
 * was thrown away. `RequestLogger` holds the parent and the bindings and makes the pino child on the
 * first call at an enabled level; calls at a disabled level cost one level check. The lines it
 * writes are exactly the child's: same bindings, same serializers, same redaction.
 */
import type { FastifyBaseLogger, FastifyServerOptions } from 'fastify';
import type { Bindings, ChildLoggerOptions } from 'pino';

type Level = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';

/** pino's `isLevelEnabled`, which Fastify's narrower logger type leaves out. */
interface LevelAware {
  isLevelEnabled(level: string): boolean;
}

export class RequestLogger implements FastifyBaseLogger {
  private made: FastifyBaseLogger | undefined;

  constructor(
    private readonly parent: FastifyBaseLogger,
    private readonly childBindings: Bindings,
  ) {}

  /** The pino child, made on first need. */
  private logger(): FastifyBaseLogger {
    if (this.made === undefined) this.made = this.parent.child(this.childBindings);
    return this.made;
  }

  private write(level: Level, args: unknown[]): void {
    const made = this.made;
    if (made !== undefined) {
      (made[level] as (...a: unknown[]) => void)(...args);
    } else if ((this.parent as unknown as LevelAware).isLevelEnabled(level)) {
      (this.logger()[level] as (...a: unknown[]) => void)(...args);
    }
  }

  get level(): string {
    return (this.made ?? this.parent).level;
  }

  set level(level: string) {
    this.logger().level = level;
  }

  isLevelEnabled(level: string): boolean {
    return ((this.made ?? this.parent) as unknown as LevelAware).isLevelEnabled(level);
  }

  // Prototype methods, not arrow fields: a request makes no closures for a logger it may not use.
  fatal(...args: unknown[]): void {
    this.write('fatal', args);
  }
  error(...args: unknown[]): void {
    this.write('error', args);
  }
  warn(...args: unknown[]): void {
    this.write('warn', args);
  }
  info(...args: unknown[]): void {
    this.write('info', args);
  }
  debug(...args: unknown[]): void {
    this.write('debug', args);
  }
  trace(...args: unknown[]): void {
    this.write('trace', args);
  }
  silent(): void {}

  child(bindings: Bindings, options?: ChildLoggerOptions): FastifyBaseLogger {
    return this.logger().child(bindings, options);
  }

  /** pino's bindings(): the parent's and the request's. */
  bindings(): Bindings {
    return (this.logger() as unknown as { bindings(): Bindings }).bindings();
  }
}

/**
 * Fastify's `childLoggerFactory`: the request id as `reqId` and as `traceId` (the trace id of what
 * the request causes). A route with its own log level or serializers gets the pino child at once.
 */
export const requestLoggerFactory: NonNullable<FastifyServerOptions['childLoggerFactory']> = (
  logger,
  bindings,
  options,
) => {
  const withTrace = { ...bindings, traceId: bindings.reqId };
  if (
    options.level !== undefined ||
    options.serializers !== undefined ||
    typeof (logger as Partial<LevelAware>).isLevelEnabled !== 'function'
  ) {
    return logger.child(withTrace, options);
  }
  return new RequestLogger(logger, withTrace);
};
