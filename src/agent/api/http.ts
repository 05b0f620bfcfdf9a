import { BrickError, RemoteError } from '../../system/errors.js';
import { debug } from '../../system/log.js';

export type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';

/** A Server-Timing header read back: phase -> milliseconds ("agent;dur=12.3, snapshot;dur=8.1"). */
export function parseServerTiming(header: string | null): Record<string, number> {
  const out: Record<string, number> = {};
  for (const part of (header ?? '').split(',')) {
    const m = /^\s*([\w-]+);dur=([\d.]+)\s*$/.exec(part);
    if (m) out[m[1]!] = (out[m[1]!] ?? 0) + Number(m[2]);
  }
  return out;
}

/** How many kept-alive connections a request may find dead before it gives up. */
const STALE_SOCKET_TRIES = 8;

/**
 * Whether a failed fetch died on a kept-alive connection closed before any answer: the agent's
 * node rebooted (QEMU's user network keeps the host's side of the old connection open; the new
 * boot's kernel resets it at the first byte), so the request never reached an agent.
 */
export function isStaleSocket(e: unknown): boolean {
  const cause = (e as { cause?: { code?: string } } | null)?.cause;
  return cause?.code === 'UND_ERR_SOCKET' || cause?.code === 'ECONNRESET';
}

/**
 * Send, and send again on another connection when the one fetch took from its pool turned out
 * dead (each such try drops one dead connection from the pool); any other failure is thrown.
 */
export async function sendPastStaleSockets(send: () => Promise<Response>, tries = STALE_SOCKET_TRIES): Promise<Response> {
  for (let i = 1; ; i++) {
    try {
      return await send();
    } catch (e) {
      if (i >= tries || !isStaleSocket(e)) throw e;
    }
  }
}

/** The default wait for an answer: long, because attach and detach wait on the kernel. */
export const DEFAULT_TIMEOUT_MS = 120_000;

/**
 * HTTP to one node's agent: the lab token, a timeout per call, the agent's own time (its
 * Server-Timing header), and error answers as BrickErrors with the agent's code and status.
 */
export class AgentHttp {
  /** The agent's own time for the last answer (its Server-Timing header), in milliseconds. */
  lastServerMs: number | null = null;
  /** The same, by phase (`agent` the whole, `request`, and what the route timed: `snapshot`, `tools`, `judge`). */
  lastServerTimings: Record<string, number> = {};

  constructor(
    readonly node: string,
    readonly url: string,
    private readonly token: string,
  ) {}

  async request<T>(method: Method, path: string, body?: unknown, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<T> {
    let res: Response;
    const t0 = performance.now();
    const signal = AbortSignal.timeout(timeoutMs);
    const send = (): Promise<Response> =>
      fetch(`${this.url}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${this.token}`,
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal,
      });
    try {
      res = await sendPastStaleSockets(send);
    } catch (e) {
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      // A lab's node, or an agent named by its URL (brick-lab agent on a user's host).
      const byUrl = /^https?:\/\//.test(this.node);
      throw new BrickError('AGENT_UNREACHABLE', `${byUrl ? `agent at ${this.url}` : `agent of ${this.node} at ${this.url}`} did not answer ${method} ${path}: ${(e as Error).message}${cause ? ` (${cause.code ?? ''} ${cause.message ?? ''})` : ''}`, {
        hint: byUrl
          ? 'check that brick-lab agent runs there and listens on that address and port (its --listen); for a certificate a private CA signed, set NODE_EXTRA_CA_CERTS to that CA'
          : `check the node with \`brick-lab status\` and its console with \`brick-lab logs ${this.node}\``,
        cause: e,
      });
    }
    this.lastServerTimings = parseServerTiming(res.headers.get('server-timing'));
    this.lastServerMs = this.lastServerTimings.agent ?? null;
    const text = await res.text();
    debug(() => {
      // An exec's command line says what the request was for.
      const argv = (body as { argv?: unknown } | undefined)?.argv;
      return `${this.node}: ${method} ${path} ${res.status} in ${(performance.now() - t0).toFixed(0)} ms (agent ${this.lastServerMs?.toFixed(0) ?? '-'} ms)${Array.isArray(argv) ? `: ${argv.join(' ').slice(0, 160)}` : ''}`;
    });
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    if (!res.ok) {
      const err = (json ?? {}) as { code?: string; message?: string; hint?: string };
      throw new RemoteError(err.code ?? `HTTP_${res.status}`, `${this.node}: ${method} ${path}: ${err.message ?? text.slice(0, 300)}`, {
        ...(err.hint ? { hint: err.hint } : {}),
        status: res.status,
      });
    }
    return json as T;
  }
}
