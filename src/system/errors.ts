/**
 * Every failure a user or a client can see carries a stable code, a message that says what was
 * wrong, and a hint that says what to do about it.
 */
export class BrickError extends Error {
  readonly code: string;
  readonly hint: string | undefined;
  readonly details: Record<string, unknown> | undefined;
  /** HTTP status used when the error crosses the agent's API. */
  readonly statusCode: number;

  constructor(
    code: string,
    message: string,
    opts: { hint?: string; details?: Record<string, unknown>; cause?: unknown; statusCode?: number } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'BrickError';
    this.code = code;
    this.hint = opts.hint;
    this.details = opts.details;
    this.statusCode = opts.statusCode ?? 500;
  }

  /** One block of text for a terminal: message, then what to do. */
  describe(): string {
    return this.hint ? `${this.code}: ${this.message}\n  hint: ${this.hint}` : `${this.code}: ${this.message}`;
  }
}

export function isBrickError(e: unknown): e is BrickError {
  return e instanceof BrickError;
}
