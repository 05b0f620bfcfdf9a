import { kernelRandomBytes } from '../../system/random.js';
import { constants } from 'node:fs';
import { access, open, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { BrickError, isBrickError, type ErrorCode } from '../../system/errors.js';
import { exec, which, type ExecResult } from '../../system/exec.js';
import { killProcessTree, processesWithEnv, signalAll } from '../../system/process.js';
import { debug } from '../../system/log.js';
import { tail } from '../../system/text.js';
import { DOCS, PROTOCOL_VERSION, type ConnectorRequest, type ResultByOperation } from './protocol.js';
import { parseReply, validateReply, validateRequest } from './validate.js';

/** How long one call may take unless the caller says otherwise (os-brick's own waits are shorter). */
export const DEFAULT_CONNECTOR_TIMEOUT_MS = 120_000;
/** Between SIGTERM and SIGKILL when a call has run out of time. */
export const DEFAULT_KILL_GRACE_MS = 2_000;
/** Set to the protocol version in the program's environment. */
export const PROTOCOL_ENV = 'BRICK_CONNECTOR_PROTOCOL';
/**
 * Set to a fresh random id for each call, in the program's environment (and so in that of every
 * process it starts): at a timeout, every process holding it is ended, also those that left the
 * program's process group or session.
 */
export const CALL_ENV = 'BRICK_CONNECTOR_CALL';

export interface RunOptions {
  /** Default DEFAULT_CONNECTOR_TIMEOUT_MS. */
  timeoutMs?: number;
  /** Added to the environment the program inherits (brick-lab's own, plus PROTOCOL_ENV and CALL_ENV). */
  env?: Record<string, string>;
  /** Default DEFAULT_KILL_GRACE_MS. */
  killGraceMs?: number;
}

function fail(code: ErrorCode, message: string, details: Record<string, unknown>, hint?: string): BrickError {
  return new BrickError(code, message, { details, hint: hint ?? `see ${DOCS}` });
}

/** The end of a program's stderr for a message: 20 lines, 4000 characters at most. */
const stderrTail = (text: string, lines = 20): string => tail(text, lines, 4000);

/** The absolute path of the program, checked to be an executable file. */
export async function locateProgram(program: string): Promise<string> {
  if (typeof program !== 'string' || program.trim() === '') {
    throw fail('CONNECTOR_NOT_FOUND', 'no connector program given: pass the path of the executable file', { program });
  }
  let path: string;
  if (program.includes('/')) {
    path = resolve(program);
  } else {
    const found = await which(program);
    if (!found) {
      throw fail('CONNECTOR_NOT_FOUND', `connector program ${program} is not an executable on PATH: give the path of the program's file`, { program });
    }
    path = found;
  }
  let st;
  try {
    st = await stat(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EACCES') {
      throw fail('CONNECTOR_NOT_EXECUTABLE', `connector program ${path} cannot be reached (permission denied on a directory above it): make its directories searchable (chmod +x on each)`, { program: path });
    }
    throw fail('CONNECTOR_NOT_FOUND', `connector program ${path} does not exist (${code ?? (e as Error).message}): give the path of the program's file as the compute node sees it`, { program: path });
  }
  if (st.isDirectory()) {
    throw fail('CONNECTOR_NOT_EXECUTABLE', `connector program ${path} is a directory: give the path of the program's file inside it`, { program: path });
  }
  if (!st.isFile()) throw fail('CONNECTOR_NOT_EXECUTABLE', `connector program ${path} is not a regular file: give the path of the program's file`, { program: path });
  try {
    await access(path, constants.X_OK);
  } catch {
    throw fail(
      'CONNECTOR_NOT_EXECUTABLE',
      `connector program ${path} is not executable: run "chmod +x ${path}" (a script also needs a #! line, e.g. "#!/usr/bin/env python3")`,
      { program: path, mode: `0${(st.mode & 0o7777).toString(8)}` },
    );
  }
  return path;
}

/** The first line of a script, when it is a #! line. */
async function shebang(path: string): Promise<string | null> {
  try {
    const fh = await open(path, 'r');
    try {
      const buf = Buffer.alloc(256);
      const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
      const line = buf.subarray(0, bytesRead).toString('utf8').split('\n')[0] ?? '';
      return line.startsWith('#!') ? line : null;
    } finally {
      await fh.close();
    }
  } catch {
    return null;
  }
}

/**
 * Run a connector program for one call: the request as JSON on its stdin, its reply read from
 * stdout, through the exec wrapper (an argument vector, no shell). The program runs with its own
 * directory as the working directory and PROTOCOL_ENV=1 and CALL_ENV set in its environment.
 *
 * At `timeoutMs` the program and every process it started are ended (see CALL_ENV): exec's own
 * timeout only signals the process it started, and waits for whoever still holds the pipes.
 *
 * Errors (BrickError): CONNECTOR_NOT_FOUND, CONNECTOR_NOT_EXECUTABLE, CONNECTOR_TIMEOUT,
 * CONNECTOR_CRASHED, and parseReply's CONNECTOR_BAD_JSON, CONNECTOR_BAD_REPLY, CONNECTOR_FAILED.
 */
export async function runConnectorProgram<R extends ConnectorRequest>(program: string, request: R, opts: RunOptions = {}): Promise<ResultByOperation[R['operation']]> {
  const req = validateRequest(request);
  const op = req.operation as R['operation'];
  const timeoutMs = opts.timeoutMs ?? DEFAULT_CONNECTOR_TIMEOUT_MS;
  const graceMs = opts.killGraceMs ?? DEFAULT_KILL_GRACE_MS;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new BrickError('CONNECTOR_BAD_REQUEST', `timeoutMs must be a positive number of milliseconds (got ${timeoutMs})`);
  const path = await locateProgram(program);
  const callId = kernelRandomBytes(12).toString('hex');

  let timedOut = false;
  let killTimer: NodeJS.Timeout | undefined;
  const timer = setTimeout(() => {
    timedOut = true;
    void processesWithEnv(CALL_ENV, callId).then((pids) => signalAll(pids, 'SIGTERM'));
    killTimer = setTimeout(() => void processesWithEnv(CALL_ENV, callId).then((pids) => signalAll(pids, 'SIGKILL')), graceMs);
  }, timeoutMs);

  let r: ExecResult;
  try {
    r = await exec([path], {
      input: JSON.stringify(req),
      cwd: dirname(path),
      env: { ...opts.env, [PROTOCOL_ENV]: String(PROTOCOL_VERSION), [CALL_ENV]: callId },
      // A backstop only: the timer above ends the call first.
      timeoutMs: timeoutMs + graceMs + 5_000,
      killGraceMs: graceMs,
      reject: false,
    });
  } catch (e) {
    clearTimeout(timer);
    clearTimeout(killTimer);
    if (isBrickError(e) && e.code === 'EXEC_NOT_FOUND') {
      const line = await shebang(path);
      throw fail(
        'CONNECTOR_NOT_FOUND',
        `connector program ${path} exists but could not be started: ${line ? `the interpreter of its first line "${line}" is not installed on this node` : 'the kernel found no such program'}: install it, or fix the #! line`,
        { program: path, operation: op },
      );
    }
    throw e;
  }
  clearTimeout(timer);
  if (r.stderr) debug(`connector ${path} ${op} stderr:\n${stderrTail(r.stderr)}`);

  if (timedOut || r.timedOut) {
    const { ended, left } = await killProcessTree(CALL_ENV, callId, graceMs);
    clearTimeout(killTimer);
    const err = stderrTail(r.stderr, 10);
    const exitedByItself = r.exitCode === 0 && r.signal === null;
    throw fail(
      'CONNECTOR_TIMEOUT',
      `connector program ${path} did not finish ${op} within ${timeoutMs / 1000} s; it was killed together with the processes it started` +
        `${left.length > 0 ? ` (still running after SIGKILL: ${left.join(', ')})` : ''}.` +
        `${exitedByItself ? ' It had exited with 0, so a process it started kept its stdout or stderr open: start helpers with those redirected.' : ''}` +
        ` Make ${op} finish in time (wait for devices with a bounded poll), or run brick-lab with a longer timeout.` +
        `${err ? `\nLast lines of its stderr:\n${err}` : ''}`,
      { program: path, operation: op, timeoutMs, exitCode: r.exitCode, signal: r.signal, processesAfterTimeout: ended, stillRunning: left, stderr: err },
    );
  }
  clearTimeout(killTimer);

  if (r.exitCode === null && r.signal === null) {
    throw fail('CONNECTOR_NOT_EXECUTABLE', `connector program ${path} could not be started (the kernel refused to run it): check "chmod +x ${path}" and its #! line`, { program: path, operation: op });
  }
  if (r.exitCode !== 0 || r.signal !== null) {
    const how = r.signal ? `was killed by ${r.signal}` : `exited with ${r.exitCode}`;
    const err = stderrTail(r.stderr);
    let replied = '';
    try {
      const reply = validateReply(op, JSON.parse(r.stdout), path);
      if (!reply.ok) replied = ` Its stdout held an error reply (${reply.error.type}: ${reply.error.message.slice(0, 200)}), but a reply counts only with exit status 0.`;
    } catch {
      // no reply: nothing to add
    }
    throw fail(
      'CONNECTOR_CRASHED',
      `connector program ${path} ${how} during ${op}.${replied} A connector exits 0 after printing its reply, also when the reply reports a failure ("ok": false); find the cause in its stderr.` +
        (err ? `\nLast lines of its stderr:\n${err}` : ' It wrote nothing on stderr.'),
      { program: path, operation: op, exitCode: r.exitCode, signal: r.signal, stderr: err },
    );
  }
  try {
    return parseReply(op, r.stdout, path);
  } catch (e) {
    if (isBrickError(e) && e.details) Object.assign(e.details, { stderr: stderrTail(r.stderr, 10) });
    throw e;
  }
}
