import { spawn } from 'node:child_process';
import { closeSync, constants, openSync, writeFileSync } from 'node:fs';
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { execa, type Options as ExecaOptions } from 'execa';
import { BrickError, isErrorCode, RemoteError, statusOf } from './errors.js';
import { debug } from './log.js';
import { tail } from './text.js';

/** What one finished command looked like; kept small so it can be logged and sent over HTTP. */
export interface ExecResult {
  argv: string[];
  command: string;
  exitCode: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  durationMs: number;
  timedOut: boolean;
  failed: boolean;
}

export interface ExecOptions {
  /** Every command has a limit; the default suits quick tools, long steps pass their own. */
  timeoutMs?: number;
  input?: string | Buffer;
  cwd?: string;
  env?: Record<string, string | undefined>;
  /** When false a non-zero exit is returned, not thrown. */
  reject?: boolean;
  /** Stream output to our own stderr as well (long build steps). */
  passthrough?: boolean;
  /** Cancel from outside (Ctrl-C during `up`). */
  signal?: AbortSignal;
  stdout?: 'pipe' | 'ignore';
  /** Write stdout to this file instead of keeping it (binary output such as a decompressed kernel). */
  stdoutFile?: string;
  /** How long a cancelled or timed-out command gets between SIGTERM and SIGKILL. */
  killGraceMs?: number;
}

export const DEFAULT_TIMEOUT_MS = 30_000;

let programsStartedSoFar = 0;
let childOomScoreAdj: number | null = null;

/**
 * In the node agent, which the OOM killer is told to spare (oom_score_adj -900, set by the node's
 * agent loop): the programs it starts get this value instead of inheriting the agent's, so that a
 * memory hog it runs is not spared with it. null (the default): children inherit.
 */
export function setChildOomScoreAdj(adj: number | null): void {
  childOomScoreAdj = adj;
}

function adjustChild(pid: number | undefined): void {
  if (childOomScoreAdj === null || pid === undefined) return;
  try {
    writeFileSync(`/proc/${pid}/oom_score_adj`, String(childOomScoreAdj));
  } catch {
    // It ended already.
  }
}

/**
 * How many programs this process has started (exec and startLineWorker alike): the agent's fuzz
 * tests check that a refused request started none.
 */
export function programsStarted(): number {
  return programsStartedSoFar;
}

/** One argument as a POSIX shell word: as is when it is plain, else in single quotes with ' escaped. */
export function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** A copy-pasteable rendering of an argument vector, for logs and error messages only. */
export function renderCommand(argv: readonly string[]): string {
  return argv.map(shellQuote).join(' ');
}


/**
 * The one way this project runs a program: an argument vector (never a shell string built from
 * input), always a timeout, a typed record back, and an error that names the command, its exit
 * code and the end of its stderr.
 */
export async function exec(argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  if (argv.length === 0 || !argv[0]) throw new BrickError('EXEC_EMPTY', 'exec called with an empty argument vector');
  const [file, ...args] = argv as [string, ...string[]];
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const command = renderCommand(argv);
  debug(`exec: ${command}`);
  const execaOpts: ExecaOptions = {
    timeout: timeoutMs,
    reject: false,
    stripFinalNewline: false,
    ...(opts.input !== undefined ? { input: opts.input } : { stdin: 'ignore' }),
    ...(opts.cwd ? { cwd: opts.cwd } : {}),
    ...(opts.env ? { env: opts.env as Record<string, string> } : {}),
    ...(opts.signal ? { cancelSignal: opts.signal } : {}),
    stdout: opts.stdoutFile ? { file: opts.stdoutFile } : opts.stdout === 'ignore' ? 'ignore' : opts.passthrough ? ['pipe', 'inherit'] : 'pipe',
    stderr: opts.passthrough ? ['pipe', 'inherit'] : 'pipe',
    forceKillAfterDelay: opts.killGraceMs ?? 2000,
    encoding: 'utf8',
  };
  const started = performance.now();
  programsStartedSoFar++;
  const subprocess = execa(file, args, execaOpts);
  adjustChild(subprocess.pid);
  const r = await subprocess;
  const result: ExecResult = {
    argv: [...argv],
    command,
    exitCode: typeof r.exitCode === 'number' ? r.exitCode : null,
    signal: r.signal ?? null,
    stdout: typeof r.stdout === 'string' ? r.stdout : '',
    stderr: typeof r.stderr === 'string' ? r.stderr : '',
    durationMs: Math.round(performance.now() - started),
    timedOut: Boolean(r.timedOut),
    failed: Boolean(r.failed),
  };
  debug(`exec: ${command} -> ${result.exitCode ?? result.signal} in ${result.durationMs} ms`);
  const notFound = (r as { code?: string }).code === 'ENOENT' || /ENOENT/.test(String((r as { originalMessage?: string }).originalMessage ?? ''));
  if (notFound && result.exitCode === null) {
    throw new BrickError('EXEC_NOT_FOUND', `program not found: ${file}`, {
      hint: 'install the package that provides it (run `brick-lab doctor` to see what is missing)',
      details: { command },
    });
  }
  if (result.failed && opts.reject !== false) throw execError(result, timeoutMs, r);
  return result;
}

function execError(result: ExecResult, timeoutMs: number, cause: unknown): BrickError {
  if (result.timedOut) {
    return new BrickError('EXEC_TIMEOUT', `command timed out after ${timeoutMs} ms: ${result.command}`, {
      details: { ...result },
      cause,
    });
  }
  const how = result.signal ? `was killed by ${result.signal}` : `exited with ${result.exitCode}`;
  const err = tail(result.stderr) || tail(result.stdout);
  return new BrickError('EXEC_FAILED', `command ${how}: ${result.command}${err ? `\n${err}` : ''}`, {
    details: { ...result },
    cause,
  });
}

/** True when a program can be found on PATH (no exec of it). */
export async function which(program: string): Promise<string | null> {
  for (const dir of (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':')) {
    if (!dir) continue;
    const p = join(dir, program);
    try {
      await access(p, constants.X_OK);
      return p;
    } catch {
      // next
    }
  }
  return null;
}

/**
 * The long-lived counterpart of exec: a child that answers one JSON line per JSON request line
 * (the LIO worker). Same rules: an argument vector, a timeout on start and on every request, and
 * errors that name the program.
 */
export interface LineWorker {
  request<T>(op: string, args: unknown, timeoutMs?: number): Promise<T>;
  stop(): Promise<void>;
  /** Ends it now (SIGKILL), without waiting: for a worker that stopped answering, or at exit. */
  kill(): void;
  readonly pid: number | undefined;
  /** False once the child has exited (or never started): its owner starts another. */
  readonly running: boolean;
}

export interface WorkerError {
  code: string;
  message: string;
  field?: string | null;
}

export async function startLineWorker(argv: readonly string[], opts: { startTimeoutMs?: number; env?: Record<string, string> } = {}): Promise<LineWorker> {
  const [file, ...args] = argv as [string, ...string[]];
  const command = renderCommand(argv);
  debug(`worker: ${command}`);
  programsStartedSoFar++;
  const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'], ...(opts.env ? { env: { ...process.env, ...opts.env } } : {}) });
  adjustChild(child.pid);
  let nextId = 1;
  let buffer = '';
  let stderr = '';
  let exited = false;
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  const failAll = (why: string): void => {
    for (const [, p] of pending) {
      clearTimeout(p.timer);
      p.reject(new BrickError('WORKER_DIED', `${command}: ${why}${stderr ? `\n${tail(stderr)}` : ''}`));
    }
    pending.clear();
  };
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-8000)));
  child.on('exit', (code, signal) => {
    exited = true;
    failAll(`exited ${signal ?? code}`);
  });
  child.on('error', (e) => {
    exited = true;
    failAll(e.message);
  });
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    buffer += d;
    for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      let msg: { id: number; ok: boolean; result?: unknown; error?: WorkerError };
      try {
        msg = JSON.parse(line) as typeof msg;
      } catch {
        continue;
      }
      const p = pending.get(msg.id);
      if (!p) continue;
      pending.delete(msg.id);
      clearTimeout(p.timer);
      if (msg.ok) p.resolve(msg.result);
      else {
        const e = msg.error ?? { code: 'WORKER_ERROR', message: 'no error text' };
        const field = e.field ?? undefined;
        // A worker's error answer is a refusal of the request (400) unless the catalogue knows its code.
        p.reject(new RemoteError(e.code, field ? `${field}: ${e.message}` : e.message, { status: isErrorCode(e.code) ? statusOf(e.code) : 400, ...(field ? { details: { field } } : {}) }));
      }
    }
  });
  const call = <T>(id: number, payload: string | null, timeoutMs: number, what: string): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      if (exited) {
        reject(new BrickError('WORKER_DIED', `${command} is not running${stderr ? `\n${tail(stderr)}` : ''}`));
        return;
      }
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new BrickError('WORKER_TIMEOUT', `${command}: ${what} took longer than ${timeoutMs} ms`));
      }, timeoutMs);
      pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      if (payload !== null) child.stdin.write(`${payload}\n`);
    });
  // The worker announces itself with id 0 once its imports are done. A worker that never does is
  // ended here: nobody else holds it, and a retry would otherwise start a second one beside it.
  try {
    await call(0, null, opts.startTimeoutMs ?? 60_000, 'start-up');
  } catch (e) {
    if (!exited) child.kill('SIGKILL');
    throw e;
  }
  return {
    pid: child.pid,
    get running(): boolean {
      return !exited;
    },
    request<T>(op: string, args: unknown, timeoutMs = 60_000): Promise<T> {
      const id = nextId++;
      return call<T>(id, JSON.stringify({ id, op, args }), timeoutMs, op);
    },
    async stop(): Promise<void> {
      if (exited) return;
      child.stdin.end();
      const gone = new Promise<void>((r) => child.once('exit', () => r()));
      const t = setTimeout(() => child.kill('SIGKILL'), 3000);
      await gone;
      clearTimeout(t);
    },
    kill(): void {
      if (!exited) child.kill('SIGKILL');
    },
  };
}

/**
 * A server started for the caller and left running (a Docker Engine for the tests): argument
 * vector, output to a log file, detached into its own process group so that a test runner's
 * Ctrl-C does not kill it half-way. The caller stops it by pid; the start is bounded by the
 * caller's readiness wait, not here.
 */
export function startServer(argv: readonly string[], opts: { logFile: string; env?: Record<string, string> }): number {
  if (argv.length === 0 || !argv[0]) throw new BrickError('EXEC_EMPTY', 'startServer called with an empty argument vector');
  const [file, ...args] = argv as [string, ...string[]];
  const fd = openSync(opts.logFile, 'a');
  try {
    const child = spawn(file, args, { detached: true, stdio: ['ignore', fd, fd], ...(opts.env ? { env: { ...process.env, ...opts.env } } : {}) });
    child.on('error', () => undefined); // reported below: no pid
    if (!child.pid) throw new BrickError('EXEC_NOT_FOUND', `could not start ${renderCommand(argv)}`, { hint: 'is it installed?' });
    child.unref();
    debug(`server: ${renderCommand(argv)} -> pid ${child.pid}`);
    return child.pid;
  } finally {
    closeSync(fd);
  }
}
