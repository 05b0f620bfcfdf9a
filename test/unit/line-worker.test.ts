import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startLineWorker, type LineWorker } from '../../src/system/exec.js';
import { rejection } from './refusal.js';

/**
 * A worker in the LIO worker's protocol: announces itself with id 0, then answers one JSON line
 * per request line. 'echo' answers with its args (after args.delayMs, when given), 'fail' refuses,
 * 'sleep' never answers, 'die' exits. It ends when its stdin closes, as the real one does.
 */
const WORKER = `
import { createInterface } from 'node:readline';
const send = (m) => process.stdout.write(JSON.stringify(m) + '\\n');
send({ id: 0, ok: true, result: { ready: true } });
const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  const { id, op, args } = JSON.parse(line);
  if (op === 'echo') setTimeout(() => send({ id, ok: true, result: args }), (args && args.delayMs) || 0);
  else if (op === 'fail') send({ id, ok: false, error: { code: 'X_REFUSED', message: 'no', field: 'f' } });
  else if (op === 'sleep') return;
  else if (op === 'die') process.exit(3);
  else send({ id, ok: false, error: { code: 'X_UNKNOWN_OP', message: op } });
});
rl.on('close', () => process.exit(0));
`;

/** Never says it is ready; writes its pid where told so the test can see whether it was ended. */
const SILENT = `
import { writeFileSync } from 'node:fs';
writeFileSync(process.env.PID_FILE, String(process.pid));
process.stdout.write('not json, and not the ready line\\n');
setInterval(() => {}, 60_000);
`;

let dir: string;
let workerPath: string;
let silentPath: string;
const started: LineWorker[] = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'brick-worker-'));
  workerPath = join(dir, 'worker.mjs');
  silentPath = join(dir, 'silent.mjs');
  writeFileSync(workerPath, WORKER);
  writeFileSync(silentPath, SILENT);
});

afterEach(async () => {
  await Promise.all(started.splice(0).map((w) => w.stop()));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

async function start(): Promise<LineWorker> {
  const w = await startLineWorker([process.execPath, workerPath], { startTimeoutMs: 10_000 });
  started.push(w);
  return w;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw e;
  }
}

async function waitUntilGone(pid: number, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (!alive(pid)) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return !alive(pid);
}

describe('startLineWorker', () => {
  it('starts once the worker says it is ready, and answers a request with its result', async () => {
    const w = await start();
    expect(typeof w.pid).toBe('number');
    expect(alive(w.pid!)).toBe(true);
    await expect(w.request('echo', { a: 1 })).resolves.toEqual({ a: 1 });
  });

  it('matches concurrent answers to their requests, even out of order', async () => {
    const w = await start();
    const slow = w.request('echo', { which: 'slow', delayMs: 200 });
    const fast = w.request('echo', { which: 'fast' });
    const order: string[] = [];
    void slow.then(() => order.push('slow'));
    void fast.then(() => order.push('fast'));
    await expect(Promise.all([slow, fast])).resolves.toEqual([
      { which: 'slow', delayMs: 200 },
      { which: 'fast' },
    ]);
    expect(order).toEqual(['fast', 'slow']);
  });

  it('turns a refusal into a 400 BrickError with the code and "field: message"', async () => {
    const w = await start();
    const err = await rejection(w.request('fail', {}));
    expect(err.code).toBe('X_REFUSED');
    expect(err.statusCode).toBe(400);
    expect(err.message).toBe('f: no');
    expect(err.details).toEqual({ field: 'f' });
    // The worker is still usable afterwards.
    await expect(w.request('echo', 'still here')).resolves.toBe('still here');
  });

  it('gives up on an unanswered request with WORKER_TIMEOUT, and keeps serving others', async () => {
    const w = await start();
    const err = await rejection(w.request('sleep', {}, 300));
    expect(err.code).toBe('WORKER_TIMEOUT');
    expect(err.message).toContain('sleep');
    expect(err.message).toContain('300 ms');
    await expect(w.request('echo', { after: 'timeout' })).resolves.toEqual({ after: 'timeout' });
  });

  it('rejects the pending request with WORKER_DIED when the worker exits, and every later one too', async () => {
    const w = await start();
    const pending = w.request('sleep', {}, 10_000);
    const err = await rejection(w.request('die', {}, 10_000));
    expect(err.code).toBe('WORKER_DIED');
    expect(err.message).toContain(workerPath);
    expect((await rejection(pending)).code).toBe('WORKER_DIED');
    const later = await rejection(w.request('echo', { a: 1 }));
    expect(later.code).toBe('WORKER_DIED');
    expect(later.message).toContain('not running');
    expect(await waitUntilGone(w.pid!, 2000)).toBe(true);
    await w.stop(); // stopping a dead worker is fine
  });

  it('fails to start with WORKER_TIMEOUT when the ready line never comes, and ends the child', async () => {
    const pidFile = join(dir, 'silent.pid');
    const err = await rejection(startLineWorker([process.execPath, silentPath], { startTimeoutMs: 1500, env: { PID_FILE: pidFile } }));
    expect(err.code).toBe('WORKER_TIMEOUT');
    expect(err.message).toContain('start-up');
    expect(err.message).toContain(silentPath);
    const pid = Number(readFileSync(pidFile, 'utf8'));
    expect(pid).toBeGreaterThan(0);
    const gone = await waitUntilGone(pid, 3000);
    if (!gone) process.kill(pid, 'SIGKILL');
    expect(gone, 'a worker that failed to start must not be left running').toBe(true);
  });

  it('fails to start with WORKER_DIED when the program does not exist', async () => {
    const err = await rejection(startLineWorker([join(dir, 'no-such-program')], { startTimeoutMs: 5000 }));
    expect(err.code).toBe('WORKER_DIED');
  });

  it('kill() ends the child at once: the pending request fails with WORKER_DIED, running turns false', async () => {
    const w = await start();
    expect(w.running).toBe(true);
    const pending = w.request('sleep', {}, 10_000);
    w.kill();
    expect((await rejection(pending)).code).toBe('WORKER_DIED');
    expect(w.running).toBe(false);
    expect(await waitUntilGone(w.pid!, 2000)).toBe(true);
    w.kill(); // killing a dead worker is fine
  });

  it('stop() ends the child', async () => {
    const w = await startLineWorker([process.execPath, workerPath], { startTimeoutMs: 10_000 });
    const pid = w.pid!;
    expect(alive(pid)).toBe(true);
    await w.stop();
    expect(alive(pid)).toBe(false);
    const err = await rejection(w.request('echo', {}));
    expect(err.code).toBe('WORKER_DIED');
  });
});
