import { timingSafeEqual } from 'node:crypto';
import { markBodyReceived, markBodyWait, markHandlerStart, markSerializeStart, serverTiming, startTiming } from './timing.js';
import { existsSync, readFileSync } from 'node:fs';
import { release } from 'node:os';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { BrickError, ERROR_CATALOGUE, type ErrorCode } from '../system/errors.js';
import { exec } from '../system/exec.js';
import { readKernelLog } from '../system/kmsg.js';
import { poll } from '../system/wait.js';
import type { TargetVolumes } from '../targets/volumes.js';
import { ROUTES } from './api/paths.js';
import { systemSchemas } from './api/schemas/system.js';
import type { AgentMemoryRequest, ExecRequest, HealthReport, OutageRequest, RebootReply, RebootRequest } from './api/types.js';
import { agentMemory } from './memory.js';
import { Outages } from './outage.js';
import type { DataNetwork } from '../targets/model.js';
import { computeRoutes } from './compute.js';
import type { IdleScavenger } from './idle-gc.js';
import { inRehearsal } from '../inventory/paths-view.js';
import { openApiDocument, type RouteInfo } from './openapi.js';
import { localDiskRoutes, targetRoutes } from './targets.js';
import type { HostFs } from '../system/hostfs.js';
import { parseDpkgStatus } from '../system/packages.js';
import { refuseBody, schemaErrorFormatter, validatorCompiler } from './validation.js';

export const AGENT_VERSION = '0.1.0';

const DPKG_STATUS = '/var/lib/dpkg/status';

export interface AgentOptions {
  lab: string;
  node: string;
  role: 'target' | 'compute';
  token: string;
  /** Present once stage 2 has finished; until then health says "booting". */
  readyFile?: string;
  timelineFile?: string;
  dpkgStatusFile?: string;
  /** The kernel's log device (tests give a file of their own). */
  kmsgFile?: string;
  logger?: boolean;
  /** Target nodes: the volume manager behind /v1/targets. */
  targets?: TargetVolumes;
  /** Compute nodes: scsi_debug local disks behind /v1/local-disks. */
  localDisks?: boolean;
  /** One line per request on stderr (the node's console). */
  requestLog?: boolean;
  /** A node's agent: the young generation emptied once no request has come for a moment (idle-gc.ts). */
  idleScavenger?: IdleScavenger;
  /** Compute nodes: the connectors' fetch-paths API and the inventory. */
  compute?: boolean;
  /** Where installed connectors go (default /var/lib/brick-lab/connectors). */
  connectorsDir?: string;
  /** How brick-lab's own connectors reach the host: the real one, or in route tests a replayed recording. */
  connectorFs?: HostFs;
  /**
   * How this agent restarts (POST /v1/agent/restart), called once the answer is sent: in a node,
   * close and exit 75, which the node's agent loop takes as "start me again". Without it the
   * route refuses (AGENT_NOT_RESTARTABLE).
   */
  restart?: () => void;
  /**
   * How this node reboots (POST /v1/node/reboot), called once the answer is sent: in a lab guest,
   * its reboot script (images/guest/reboot.sh). Without it (a target on the host's own kernel, a
   * test) the route refuses (NODE_NOT_REBOOTABLE).
   */
  reboot?: (hard: boolean) => void;
  /** This boot's identity (/proc/sys/kernel/random/boot_id): another after a reboot. */
  bootIdFile?: string;
  /** The node's data networks, which POST /v1/node/outage takes down for a while (none: it refuses). */
  dataNetworks?: DataNetwork[];
  /**
   * An agent on a host the user already has (`brick-lab agent`, src/agent/host-agent.ts), not a
   * lab's node: every route behind the token (health and /openapi.json too); the compute role's
   * reads only (connectors, search path, volume paths, available volumes, inventory, diff,
   * orphans, baselines, host check) and brick-lab's own connectors only; attach and detach
   * refused unless `allowAttach`; no exec, node control (restart, reboot, outage, kernel log,
   * memory) or connector programs. startHostAgent builds it with neither targets nor local disks.
   */
  host?: { allowAttach: boolean };
  /** Serve HTTPS with this certificate and key (PEM): a host agent's --tls-cert and --tls-key. */
  https?: { cert: Buffer; key: Buffer };
}

/** The largest request body the agent reads (an installed connector's file, base64, is the largest). */
export const BODY_LIMIT_BYTES = 8 * 1024 * 1024;

/**
 * Fastify's own refusals (a body that is not JSON, too large, of another type), as coded answers
 * like every other: the framework's FST_ERR_* codes are not the agent's contract.
 */
export function frameworkError(err: Error & { statusCode?: number; code?: string }): { code: ErrorCode; message: string; hint?: string } | null {
  const code = err.code ?? '';
  if (code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    return { code: 'BODY_TOO_LARGE', message: `body: larger than ${BODY_LIMIT_BYTES} bytes`, hint: 'install a connector of at most 6 MiB (base64 adds a third)' };
  }
  if (code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
    return { code: 'UNSUPPORTED_MEDIA_TYPE', message: 'body: the agent takes application/json only', hint: 'send "Content-Type: application/json"' };
  }
  if (code.startsWith('FST_ERR_CTP_') || (err.statusCode === 400 && err instanceof SyntaxError)) {
    return {
      code: 'BAD_REQUEST',
      message: `body: not valid JSON, or JSON with a "__proto__" or "constructor.prototype" key (${err.message})`,
      hint: 'send one JSON object, with "Content-Type: application/json"',
    };
  }
  if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) {
    return { code: 'BAD_REQUEST', message: err.message };
  }
  return null;
}

export function parseTimeline(text: string): HealthReport['timeline'] {
  return text
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((p) => p.length === 2 && p[0] && Number.isFinite(Number(p[1])))
    .map(([step, up]) => ({ step: step!, uptimeSeconds: Number(up) }));
}

function tokenMatches(header: string | undefined, token: string): boolean {
  const m = /^Bearer (.+)$/.exec(header ?? '');
  if (!m) return false;
  const a = Buffer.from(m[1]!);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The node agent: the only network surface of a node. */
export async function buildAgent(opts: AgentOptions): Promise<FastifyInstance> {
  const app = Fastify({
    ...(opts.https ? { https: opts.https } : {}),
    logger: opts.logger ?? false,
    bodyLimit: BODY_LIMIT_BYTES,
    // Every refusal names its field and what was wrong with it (validation.ts).
    schemaErrorFormatter: schemaErrorFormatter as never,
  });
  // The body as JSON gives it (no conversion), unknown fields refused, not stripped.
  app.setValidatorCompiler(validatorCompiler);
  // JSON only: a text/plain body would otherwise reach the schemas as a string.
  app.removeContentTypeParser('text/plain');
  let tools: Record<string, string | null> | undefined;
  // Every answer says how long the agent worked on it (Server-Timing), so a client can tell the
  // node's time from the network's and the host's.
  // Callback hooks, not async ones: no promise per hook on every request.
  app.addHook('onRequest', (req, _reply, done) => {
    startTiming(req);
    opts.idleScavenger?.started();
    done();
  });
  if (opts.idleScavenger) {
    const s = opts.idleScavenger;
    app.addHook('onResponse', (_req, _reply, done) => {
      s.ended();
      done();
    });
    // A request whose client went away gets no response: it ended all the same.
    app.addHook('onRequestAbort', (_req, done) => {
      s.ended();
      done();
    });
  }
  app.addHook('preParsing', (req, _reply, _payload, done) => {
    markBodyWait(req);
    done();
  });
  app.addHook('preHandler', (req, _reply, done) => {
    markHandlerStart(req);
    done();
  });
  app.addHook('preSerialization', (req, _reply, payload, done) => {
    markSerializeStart(req);
    done(null, payload);
  });
  // fastify's own JSON parser (a "__proto__" or "constructor.prototype" key refused), told when the whole body is in.
  const json = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    markBodyReceived(req);
    json(req, body as string, done);
  });
  app.addHook('onSend', (req, reply, payload, done) => {
    const start = (req as unknown as { brickStart?: number }).brickStart;
    const timing = serverTiming(req);
    if (timing) reply.header('server-timing', timing);
    // One line per request on the node's console: the console log is the request log.
    if (opts.requestLog && req.url !== ROUTES.health && !req.url.startsWith(`${ROUTES.health}?`) && !inRehearsal()) {
      process.stderr.write(`brick-lab agent: ${req.method} ${req.url} ${reply.statusCode} ${start !== undefined ? (performance.now() - start).toFixed(0) : '?'} ms\n`);
    }
    done(null, payload);
  });
  // Every route as registered (scoped plugins included), for /openapi.json.
  const routes: RouteInfo[] = [];
  app.addHook('onRoute', (r) => {
    const methods = [r.method].flat();
    // A route without a query string schema takes no parameters: one sent is refused, not ignored.
    if (r.schema && !r.schema.querystring) r.schema = { ...r.schema, querystring: { type: 'object', additionalProperties: false, properties: {} } };
    for (const method of methods) {
      if (method === 'HEAD') continue;
      routes.push({ method, url: r.url, schema: r.schema as RouteInfo['schema'] });
    }
    // A route without a body schema takes no body: one sent is refused, not ignored.
    if (!r.schema?.body && methods.some((m) => m !== 'GET' && m !== 'HEAD')) {
      const route = `${methods.join('/')} ${r.url}`;
      const refuse = async (req: FastifyRequest): Promise<void> => refuseBody(req.body, route);
      r.preValidation = [...[r.preValidation ?? []].flat(), refuse] as typeof r.preValidation;
    }
  });

  // Schema refusals arrive as the BrickError schemaErrorFormatter made (validation.ts).
  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, _req, reply) => {
    if (err instanceof BrickError) {
      return reply.code(err.statusCode).send({ code: err.code, message: err.message, ...(err.hint ? { hint: err.hint } : {}) });
    }
    const framework = frameworkError(err);
    if (framework) return reply.code(ERROR_CATALOGUE[framework.code].status).send(framework);
    return reply.code(500).send({ code: 'INTERNAL', message: err.message });
  });
  app.setNotFoundHandler((req, reply) => reply.code(404).send({
    code: 'ROUTE_UNKNOWN',
    message: `no route ${req.method} ${req.url.split('?')[0]} on this agent`,
    hint: 'GET /openapi.json lists the routes',
  }));

  const requireToken = async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (!tokenMatches(req.headers.authorization, opts.token)) {
      await reply.code(401).send({
        code: 'UNAUTHORIZED',
        message: opts.host ? 'missing or wrong agent token' : 'missing or wrong lab token',
        hint: opts.host
          ? 'send "Authorization: Bearer <token>" with the token of the file this agent was started with (--token-file, default /etc/brick-lab/agent-token)'
          : 'send "Authorization: Bearer <token>"; `brick-lab status` shows where the token file is',
      });
    }
  };

  // A host agent answers nobody without the token, not even its health or its route list.
  if (opts.host) app.addHook('onRequest', requireToken);

  app.get<{ Querystring: { waitReadyMs?: number } }>(ROUTES.health, { schema: systemSchemas.health }, async (req): Promise<HealthReport> => {
    const isReady = (): boolean => !opts.readyFile || existsSync(opts.readyFile);
    await poll(isReady, { timeoutMs: req.query.waitReadyMs ?? 0, intervalMs: 100 });
    // A host that is not Debian's has no dpkg status: no package versions, not an error.
    tools ??= existsSync(opts.dpkgStatusFile ?? DPKG_STATUS) ? parseDpkgStatus(readFileSync(opts.dpkgStatusFile ?? DPKG_STATUS, 'utf8')) : {};
    const uptime = Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
    return {
      lab: opts.lab,
      node: opts.node,
      role: opts.role,
      state: isReady() ? 'ready' : 'booting',
      kernel: release(),
      uptimeSeconds: uptime,
      bootId: readFileSync(opts.bootIdFile ?? '/proc/sys/kernel/random/boot_id', 'utf8').trim(),
      timeline: opts.timelineFile && existsSync(opts.timelineFile) ? parseTimeline(readFileSync(opts.timelineFile, 'utf8')) : [],
      tools,
      agent: { version: AGENT_VERSION, node: process.version, pid: process.pid },
    };
  });

  if (!opts.host) nodeRoutes(app, opts, requireToken);

  if (opts.targets || opts.localDisks || opts.compute) {
    const targets = opts.targets;
    await app.register(async (scoped) => {
      if (!opts.host) scoped.addHook('onRequest', requireToken);
      if (targets) await targetRoutes(scoped, targets);
      if (opts.localDisks) await localDiskRoutes(scoped);
      if (opts.compute) await computeRoutes(scoped, { ...(opts.connectorsDir ? { connectorsDir: opts.connectorsDir } : {}), ...(opts.connectorFs ? { fs: opts.connectorFs } : {}), ...(opts.host ? { host: opts.host } : { fcoeNetworks: (opts.dataNetworks ?? []).map((n) => n.name), ip: opts.dataNetworks?.[0]?.address ?? null }) });
    });
  }

  app.get(ROUTES.openapi, async () => openApiDocument(routes, AGENT_VERSION));

  return app;
}

/** A lab node's own routes: exec, the agent's memory and restart, the node's reboot, outages and kernel log. */
function nodeRoutes(app: FastifyInstance, opts: AgentOptions, requireToken: (req: FastifyRequest, reply: FastifyReply) => Promise<void>): void {
  app.post<{ Body: ExecRequest }>(ROUTES.exec, {
    onRequest: requireToken,
    schema: systemSchemas.exec,
  }, async (req) => {
    const { argv, timeoutMs, input, env } = req.body;
    try {
      return await exec(argv, {
        timeoutMs: timeoutMs ?? 60_000,
        reject: false,
        ...(input !== undefined ? { input } : {}),
        ...(env ? { env: { ...process.env, ...env } } : {}),
      });
    } catch (e) {
      if (e instanceof BrickError && e.code === 'EXEC_NOT_FOUND') {
        // The shell convention, so `brick-lab exec` passes 127 through like ssh would.
        return { argv, exitCode: 127, signal: null, stdout: '', stderr: `${e.message}\n`, durationMs: 0, timedOut: false };
      }
      throw e;
    }
  });

  // Behind the token: a full collection stops the agent for a while, which an open route must not let anyone do.
  app.post<{ Body: AgentMemoryRequest | undefined }>(ROUTES.agentMemory, {
    onRequest: requireToken,
    schema: systemSchemas.agentMemory,
  }, async (req) => agentMemory(req.body?.collect !== false));

  // The kernel's log by sequence number: what a scenario's check reads before and after it, with no process started.
  app.get<{ Querystring: { since?: number } }>(ROUTES.kernelLog, {
    onRequest: requireToken,
    schema: systemSchemas.kernelLog,
  }, async (req) => readKernelLog(req.query.since, opts.kmsgFile));

  // The connector's process restarting between attach and detach, as a kubelet or a driver
  // container restarts: everything the agent kept in memory (kept baselines, identities, the
  // multipathd relay, the LIO worker) is gone, and the node is otherwise as it was.
  app.post(ROUTES.restartAgent, {
    onRequest: requireToken,
    schema: systemSchemas.restartAgent,
    // Only once the 202 went out: a refused request (no token) also gets here, and must not restart.
    onResponse: async (_req, reply) => {
      if (reply.statusCode === 202) opts.restart?.();
    },
  }, async (_req, reply) => {
    if (!opts.restart) throw new BrickError('AGENT_NOT_RESTARTABLE', 'this agent cannot restart: it was not started by a node\'s agent loop', { hint: 'only the agents of a lab\'s nodes restart' });
    return reply.code(202).send({ pid: process.pid, restarting: true });
  });

  // The node reboots (clean, or a reset at once): it answers first, with the boot it is leaving,
  // then its reboot script runs; the host waits for another boot id to answer ready.
  app.post<{ Body: RebootRequest }>(ROUTES.reboot, {
    onRequest: requireToken,
    schema: systemSchemas.reboot,
    onResponse: async (req, reply) => {
      if (reply.statusCode === 202) opts.reboot?.(req.body.hard === true);
    },
  }, async (req, reply) => {
    if (!opts.reboot) throw new BrickError('NODE_NOT_REBOOTABLE', `node ${opts.node} cannot reboot: it has no kernel of its own (a target on the host's kernel) or no reboot script`, { hint: 'only nodes that boot the lab\'s guest kernel (QEMU, or QEMU in a container) reboot' });
    const bootId = readFileSync(opts.bootIdFile ?? '/proc/sys/kernel/random/boot_id', 'utf8').trim();
    return reply.code(202).send({ bootId, hard: req.body.hard === true } satisfies RebootReply);
  });

  // A node's own data paths down for N seconds (a compute's link; a target offline): the agent
  // brings them back itself, and when it closes.
  const outages = new Outages(opts.dataNetworks ?? []);
  app.addHook('onClose', async () => void (await outages.restore()));
  app.post<{ Body: OutageRequest }>(ROUTES.outage, { onRequest: requireToken, schema: systemSchemas.startOutage }, async (req) => outages.start(req.body.networks, req.body.seconds));
  app.delete(ROUTES.outage, { onRequest: requireToken, schema: systemSchemas.endOutage }, async () => outages.restore());
}
