import { BrickError } from '../system/errors.js';
import type { ExecRequest, HealthReport } from '../agent/server.js';
import type { ExecResult } from '../system/exec.js';

/** HTTP client for one node's agent. */
export class AgentClient {
  constructor(
    readonly node: string,
    readonly url: string,
    private readonly token: string,
  ) {}

  /** The agent's own time for the last answer (its Server-Timing header), in milliseconds. */
  lastServerMs: number | null = null;

  private async call<T>(method: string, path: string, body?: unknown, timeoutMs = 30_000): Promise<T> {
    let res: Response;
    try {
      res = await fetch(`${this.url}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${this.token}`,
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (e) {
      throw new BrickError('AGENT_UNREACHABLE', `agent of ${this.node} at ${this.url} did not answer ${method} ${path}: ${(e as Error).message}`, {
        hint: `check the node with \`brick-lab status\` and its console with \`brick-lab logs ${this.node}\``,
        cause: e,
      });
    }
    const timing = /dur=([\d.]+)/.exec(res.headers.get('server-timing') ?? '');
    this.lastServerMs = timing ? Number(timing[1]) : null;
    const text = await res.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    if (!res.ok) {
      const err = (json ?? {}) as { code?: string; message?: string; hint?: string };
      throw BrickError.remote(err.code ?? `HTTP_${res.status}`, `${this.node}: ${method} ${path}: ${err.message ?? text.slice(0, 300)}`, {
        ...(err.hint ? { hint: err.hint } : {}),
        status: res.status,
      });
    }
    return json as T;
  }

  get<T>(path: string, timeoutMs = 120_000): Promise<T> {
    return this.call('GET', path, undefined, timeoutMs);
  }

  post<T>(path: string, body: unknown = {}, timeoutMs = 120_000): Promise<T> {
    return this.call('POST', path, body, timeoutMs);
  }

  put<T>(path: string, body: unknown = {}, timeoutMs = 120_000): Promise<T> {
    return this.call('PUT', path, body, timeoutMs);
  }

  delete<T>(path: string, timeoutMs = 120_000): Promise<T> {
    return this.call('DELETE', path, undefined, timeoutMs);
  }

  /** With waitReadyMs the agent holds the answer until the node is ready or the wait ends. */
  health(timeoutMs = 5000, waitReadyMs = 0): Promise<HealthReport> {
    const q = waitReadyMs > 0 ? `?waitReadyMs=${waitReadyMs}` : '';
    return this.call('GET', `/v1/health${q}`, undefined, timeoutMs + waitReadyMs);
  }

  /** Run a command in the node; a non-zero exit is a result, not an error. */
  exec(argv: string[], opts: Omit<ExecRequest, 'argv'> = {}): Promise<ExecResult> {
    const limit = opts.timeoutMs ?? 60_000;
    return this.call('POST', '/v1/exec', { argv, ...opts, timeoutMs: limit }, limit + 10_000);
  }

  /** Like exec, but a non-zero exit throws with the command's stderr. */
  async run(argv: string[], opts: Omit<ExecRequest, 'argv'> = {}): Promise<ExecResult> {
    const r = await this.exec(argv, opts);
    if (r.exitCode !== 0) {
      throw new BrickError('NODE_COMMAND_FAILED', `${this.node}: ${argv.join(' ')} exited ${r.exitCode}: ${r.stderr.trim().slice(-500)}`);
    }
    return r;
  }
}
