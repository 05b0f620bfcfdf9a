import { existsSync } from 'node:fs';
import { RemoteError } from '../system/errors.js';
import { exec, startLineWorker, type LineWorker } from '../system/exec.js';
import { debug } from '../system/log.js';

/**
 * multipathd's answers without a process per question. `multipathd show ...` is a process (100-250
 * ms under TCG) and the oracle asks several times per call; multipathd also answers on its control
 * socket, which one long-lived relay (multipathd_relay.py: Node 20 cannot connect to an abstract
 * unix socket) keeps open. The compute agent turns the relay on at start (useMultipathdRelay);
 * anywhere else the CLI answers, as before.
 */

/**
 * How long multipathd may take to answer: what the CLI waits (uxsock_timeout, 4000 ms by default,
 * plus 100 ms), so that a busy multipathd gives nothing here exactly when it would to the CLI.
 */
export const MULTIPATHD_REPLY_TIMEOUT_MS = 4100;

/** Present while multipathd runs (it writes it at start and removes it at exit). */
const MULTIPATHD_PIDFILE = '/run/multipathd.pid';

/**
 * Replies that are no answer: "fail" for a command that failed, "timeout" when multipathd could
 * not take its own lock in time (uxlsnr.c, 0.9.4); the CLI prints them and exits 1.
 */
const UNANSWERED = new Set(['fail\n', 'timeout\n']);

/**
 * The request the CLI sends for `multipathd WORD...` (multipathd/main.c, 0.9.4): each word followed
 * by a space, a word holding a space in double quotes, then a newline. Sending the same bytes gets
 * the same reply, so the parsers read the same text over the socket as from the CLI.
 */
export function multipathdCommand(words: readonly string[]): string {
  return `${words.map((w) => (w.includes(' ') ? `"${w}" ` : `${w} `)).join('')}\n`;
}

export interface MultipathdRelayOptions {
  /** The relay's argument vector: python3 and multipathd_relay.py (tests add a socket name). */
  argv: readonly string[];
  /** How long python3 may take to start (about 0.5 s under TCG; more on a busy vCPU). */
  startTimeoutMs?: number;
  /** How much longer than multipathd the relay itself may take before it counts as hung. */
  answerGraceMs?: number;
}

/** Relays alive now: ended when this process exits, whatever else is going on then. */
const LIVE = new Set<LineWorker>();
let exitHook = false;

function track(w: LineWorker): void {
  LIVE.add(w);
  if (!exitHook) {
    exitHook = true;
    // The relay also ends when its stdin closes; this is for the owner that exits while the relay waits on multipathd.
    process.once('exit', () => LIVE.forEach((x) => x.kill()));
  }
}

/**
 * One relay, started on the first question (or warmUp) and kept. Questions go one at a time: the
 * relay has one connection and multipathd answers in order. A relay that stops answering is
 * killed and forgotten, one that exited is forgotten; the next question starts another.
 */
export class MultipathdRelay {
  private starting: Promise<LineWorker> | null = null;
  private live: LineWorker | null = null;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly opts: MultipathdRelayOptions) {}

  /** The relay process now, if one runs (tests look at it). */
  get pid(): number | undefined {
    return this.live?.running ? this.live.pid : undefined;
  }

  /** Start the relay ahead of the first question; a failure is the next question's to see. */
  warmUp(): void {
    void this.started().catch(() => undefined);
  }

  /**
   * multipathd's reply to one request (see multipathdCommand), as the CLI would print it; '' when
   * nothing listens on its socket (it does not run); null when it runs but gave no answer: "fail"
   * or "timeout" (its own lock wait), no answer in `timeoutMs`, a connection it closed.
   */
  query(command: string, timeoutMs = MULTIPATHD_REPLY_TIMEOUT_MS): Promise<string | null> {
    const run = this.queue.then(() => this.ask(command, timeoutMs));
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** End the relay now; a later question starts a new one. */
  close(): void {
    this.starting = null;
    if (this.live) this.forget(this.live);
  }

  private async ask(command: string, timeoutMs: number): Promise<string | null> {
    let w: LineWorker;
    try {
      w = await this.started();
    } catch (e) {
      // No relay (no python3): nothing can be learnt of multipathd here, running or not.
      debug(`multipathd relay: ${(e as Error).message}`);
      return existsSync(MULTIPATHD_PIDFILE) ? null : '';
    }
    try {
      // The relay gives up on multipathd first and says so; our own limit is for a relay that hangs.
      const { reply } = await w.request<{ reply: string }>('query', { command, timeoutMs }, timeoutMs + (this.opts.answerGraceMs ?? 1000));
      // The CLI exits 1 after printing "fail" or "timeout": multipathd runs and did not answer.
      return UNANSWERED.has(reply) ? null : reply;
    } catch (e) {
      // A RemoteError is the relay's own answer (multipathd absent or silent): it is still fine.
      if (!(e instanceof RemoteError)) this.forget(w);
      debug(`multipathd relay: ${(e as Error).message}`);
      return e instanceof RemoteError && e.code === 'MULTIPATHD_NOT_RUNNING' ? '' : null;
    }
  }

  private started(): Promise<LineWorker> {
    if (this.live && !this.live.running) this.forget(this.live);
    if (!this.starting) {
      const p: Promise<LineWorker> = startLineWorker(this.opts.argv, { startTimeoutMs: this.opts.startTimeoutMs ?? 30_000 }).then((w) => {
        // Closed while it started: nobody holds it.
        if (this.starting !== p) {
          w.kill();
          throw new Error('the relay was closed while it started');
        }
        this.live = w;
        track(w);
        return w;
      });
      this.starting = p;
      p.catch(() => {
        if (this.starting === p) this.starting = null;
      });
    }
    return this.starting;
  }

  private forget(w: LineWorker): void {
    if (this.live === w) {
      this.live = null;
      this.starting = null;
    }
    LIVE.delete(w);
    w.kill();
  }
}

let relay: MultipathdRelay | null = null;

/** Ask multipathd through a relay from now on (the compute agent, at start); null: through the CLI. */
export function useMultipathdRelay(opts: MultipathdRelayOptions | null): MultipathdRelay | null {
  relay?.close();
  relay = opts ? new MultipathdRelay(opts) : null;
  return relay;
}

/** Start the relay, if there is one and multipathd runs, so that the first question does not pay python3's start. */
export function warmUpMultipathd(): void {
  if (relay && existsSync(MULTIPATHD_PIDFILE)) relay.warmUp();
}

/**
 * What `multipathd WORDS...` prints, through the relay when there is one: the same text either
 * way. '' when multipathd does not run (or is not installed): it holds nothing. null when it runs
 * and gave no answer (busy past the CLI's wait, "fail", "timeout"): what it holds is not known,
 * and must not be taken for nothing.
 */
export async function multipathdQuery(words: readonly string[], timeoutMs = MULTIPATHD_REPLY_TIMEOUT_MS): Promise<string | null> {
  if (relay) return relay.query(multipathdCommand(words), timeoutMs);
  const r = await exec(['multipathd', ...words], { timeoutMs: 30_000, reject: false }).catch(() => null);
  if (r && r.exitCode === 0 && !UNANSWERED.has(r.stdout)) return r.stdout;
  return r && existsSync(MULTIPATHD_PIDFILE) ? null : '';
}
