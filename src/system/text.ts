/** Small text and value helpers used across the node code: one definition each. */

/**
 * The last `lines` lines of a text (trailing blank space dropped), cut to its last `chars`
 * characters when given: the end of a program's stderr for an error message or a log.
 */
export function tail(text: string, lines = 12, chars?: number): string {
  const t = text.trimEnd().split('\n').slice(-lines).join('\n');
  return chars !== undefined && t.length > chars ? t.slice(-chars) : t;
}

/** A plain JSON object (not null, not an array). */
export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
