import { BrickError } from '../../system/errors.js';
import { waitFor } from '../../system/wait.js';
import { AgentHttp, DEFAULT_TIMEOUT_MS } from './http.js';
import { paths, ROUTES } from './paths.js';
import type { AgentMemoryReply, AgentMemoryRequest, ExecReply, ExecRequest, HealthReport, KernelLogReply, OutageReply, RebootReply, RestartAgentReply } from './types.js';

/**
 * A client of one node's agent: what every node answers (health, exec). ComputeClient and
 * TargetClient add their role's routes; several clients of one node may share one AgentHttp.
 */
export class AgentClient {
  protected readonly http: AgentHttp;

  constructor(node: string, url: string, token: string);
  constructor(http: AgentHttp);
  constructor(nodeOrHttp: string | AgentHttp, url?: string, token?: string) {
    this.http = typeof nodeOrHttp === 'string' ? new AgentHttp(nodeOrHttp, url!, token!) : nodeOrHttp;
  }

  get node(): string {
    return this.http.node;
  }

  get url(): string {
    return this.http.url;
  }

  /** The agent's own time for the last answer (its Server-Timing header), in milliseconds. */
  get lastServerMs(): number | null {
    return this.http.lastServerMs;
  }

  /** The agent's time for the last answer by phase (Server-Timing). */
  get lastServerTimings(): Record<string, number> {
    return this.http.lastServerTimings;
  }

  /** A raw request, for tests of the HTTP surface itself; everything else has a typed method. */
  get<T>(path: string, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<T> {
    return this.http.request('GET', path, undefined, timeoutMs);
  }

  post<T>(path: string, body: unknown = {}, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<T> {
    return this.http.request('POST', path, body, timeoutMs);
  }

  put<T>(path: string, body: unknown = {}, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<T> {
    return this.http.request('PUT', path, body, timeoutMs);
  }

  delete<T>(path: string, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<T> {
    return this.http.request('DELETE', path, undefined, timeoutMs);
  }

  /** With waitReadyMs the agent holds the answer until the node is ready or the wait ends. */
  health(timeoutMs = 5000, waitReadyMs = 0): Promise<HealthReport> {
    return this.http.request('GET', paths.health(waitReadyMs), undefined, timeoutMs + waitReadyMs);
  }

  /** The agent's memory, after a full garbage collection unless `collect` is false (a soak's figure of what the agent holds). */
  memory(collect = true): Promise<AgentMemoryReply> {
    return this.http.request<AgentMemoryReply>('POST', ROUTES.agentMemory, { collect } satisfies AgentMemoryRequest, 60_000);
  }

  /** The kernel's log: with `since`, the records from that sequence number on; without, only the next one's number (a mark). */
  kernelLog(since?: number): Promise<KernelLogReply> {
    return this.http.request<KernelLogReply>('GET', paths.kernelLog(since), undefined, 30_000);
  }

  /** Run a command in the node; a non-zero exit is a result, not an error. */
  exec(argv: string[], opts: Omit<ExecRequest, 'argv'> = {}): Promise<ExecReply> {
    const limit = opts.timeoutMs ?? 60_000;
    return this.http.request('POST', ROUTES.exec, { argv, ...opts, timeoutMs: limit } satisfies ExecRequest, limit + 10_000);
  }

  /** Take the node's data networks (all when none is named) down for `seconds`; the agent brings them back. */
  startOutage(seconds: number, networks?: string[]): Promise<OutageReply> {
    return this.http.request<OutageReply>('POST', ROUTES.outage, { seconds, ...(networks?.length ? { networks } : {}) });
  }

  /** Bring every data network the node has down back up now. */
  endOutage(): Promise<OutageReply> {
    return this.http.request<OutageReply>('DELETE', ROUTES.outage);
  }

  /**
   * Ask the node to reboot (clean, or with hard a reset at once). It answers with the boot it is
   * leaving before it goes; lab/reboot.ts waits for the next one.
   */
  reboot(hard: boolean): Promise<RebootReply> {
    return this.http.request<RebootReply>('POST', ROUTES.reboot, { hard }, 30_000);
  }

  /**
   * Restart the node's agent (its process ends and the node's agent loop starts it again) and
   * wait until the new one answers ready: what it kept in memory is gone, the node is not touched.
   */
  async restartAgent(timeoutMs = 120_000): Promise<HealthReport> {
    const old = await this.http.request<RestartAgentReply>('POST', ROUTES.restartAgent, {}, 30_000);
    let last = 'no answer yet';
    return waitFor(
      async () => {
        const h = await this.health(5000, 5000).catch((e: Error) => ((last = e.message), null));
        if (h && h.agent.pid === old.pid) last = `pid ${old.pid} still answers`;
        return h && h.agent.pid !== old.pid && h.state === 'ready' ? h : null;
      },
      {
        timeoutMs,
        intervalMs: 500,
        onTimeout: () => new BrickError('AGENT_UNREACHABLE', `${this.node}: the agent did not come back within ${timeoutMs / 1000} s of its restart (${last})`, { hint: `see the node's console: brick-lab logs ${this.node}` }),
      },
    );
  }

  /** Like exec, but a non-zero exit throws with the command's stderr. */
  async run(argv: string[], opts: Omit<ExecRequest, 'argv'> = {}): Promise<ExecReply> {
    const r = await this.exec(argv, opts);
    if (r.exitCode !== 0) {
      throw new BrickError('NODE_COMMAND_FAILED', `${this.node}: ${argv.join(' ')} exited ${r.exitCode}: ${r.stderr.trim().slice(-500)}`);
    }
    return r;
  }
}
