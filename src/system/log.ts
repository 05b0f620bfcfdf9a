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

export function debug(message: string): void {
  if (process.env.BRICK_LAB_DEBUG) process.stderr.write(`[debug +${((performance.now() - started) / 1000).toFixed(2)}s] ${message}\n`);
}

export function warn(message: string): void {
  process.stderr.write(`[warn] ${message}\n`);
}
