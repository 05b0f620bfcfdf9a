/**
 * Progress lines go to stderr so that stdout stays clean for `--json` and for `exec` output.
 * BRICK_LAB_DEBUG=1 adds every command line run.
 */
let quiet = false;

export function setQuiet(q: boolean): void {
  quiet = q;
}

export function progress(stage: string, message: string): void {
  if (quiet) return;
  process.stderr.write(`[${stage}] ${message}\n`);
}

const started = performance.now();

/** A debug line; pass a function when the line costs something to build (it runs only with BRICK_LAB_DEBUG set). */
export function debug(message: string | (() => string)): void {
  if (process.env.BRICK_LAB_DEBUG) process.stderr.write(`[debug +${((performance.now() - started) / 1000).toFixed(2)}s] ${typeof message === 'function' ? message() : message}\n`);
}

export function warn(message: string): void {
  process.stderr.write(`[warn] ${message}\n`);
}
