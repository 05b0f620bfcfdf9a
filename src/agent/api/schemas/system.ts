import { OUTAGE_MAX_SECONDS } from '../types.js';
/** Routes every node has (health, exec) and the compute role's local disks (scsi_debug). */
import { HOST_FAILURES, nullableNumber, nullableString, replies, strings, type JsonSchema, type RouteSchema } from './common.js';
import { LOCAL_DISK_ERRORS } from './targets.js';

/** process.memoryUsage(), in bytes. */
const processMemory: JsonSchema = {
  type: 'object',
  required: ['rss', 'heapTotal', 'heapUsed', 'external', 'arrayBuffers'],
  properties: { rss: { type: 'integer' }, heapTotal: { type: 'integer' }, heapUsed: { type: 'integer' }, external: { type: 'integer' }, arrayBuffers: { type: 'integer' } },
};

export const healthReport: JsonSchema = {
  type: 'object',
  required: ['lab', 'node', 'role', 'state', 'kernel', 'uptimeSeconds', 'bootId', 'timeline', 'tools', 'agent'],
  properties: {
    lab: { type: 'string' },
    node: { type: 'string' },
    role: { type: 'string', enum: ['target', 'compute'] },
    state: { type: 'string', enum: ['booting', 'ready'] },
    kernel: { type: 'string' },
    uptimeSeconds: { type: 'number' },
    bootId: { type: 'string', description: "the kernel's boot_id: another one after a reboot" },
    timeline: {
      type: 'array',
      items: { type: 'object', required: ['step', 'uptimeSeconds'], properties: { step: { type: 'string' }, uptimeSeconds: { type: 'number' } } },
    },
    tools: { type: 'object', additionalProperties: nullableString, description: 'installed package versions by name, null when missing' },
    agent: {
      type: 'object',
      required: ['version', 'node', 'pid'],
      properties: {
        version: { type: 'string' },
        node: { type: 'string' },
        pid: { type: 'integer' },
      },
    },
  },
};

/** A command's result (system/exec.ts ExecResult); more fields pass through. */
export const execResult: JsonSchema = {
  type: 'object',
  required: ['argv', 'exitCode', 'signal', 'stdout', 'stderr', 'durationMs', 'timedOut'],
  properties: {
    argv: strings,
    command: { type: 'string', description: 'argv as one shell-quoted line' },
    exitCode: { type: ['integer', 'null'] },
    signal: nullableString,
    stdout: { type: 'string' },
    stderr: { type: 'string' },
    durationMs: { type: 'number' },
    timedOut: { type: 'boolean' },
    failed: { type: 'boolean' },
  },
  additionalProperties: true,
};

const localDisk: JsonSchema = {
  type: 'object',
  required: ['host', 'hctl', 'device', 'wwid', 'sizeBytes'],
  properties: { host: { type: 'integer' }, hctl: { type: 'string' }, device: nullableString, wwid: nullableString, sizeBytes: nullableNumber },
  additionalProperties: true,
};

/** The data networks a node has down, and when each comes back. */
const outageReply = {
  type: 'object',
  required: ['down'],
  properties: { down: { type: 'array', items: { type: 'object', required: ['network', 'until'], properties: { network: { type: 'string' }, until: { type: 'string' } } } } },
} as const;

export const systemSchemas = {
  health: {
    // A long poll: the host asks once and the agent answers when stage 2 is done (or the wait
    // ends). Polling every few hundred ms would cost the booting guest CPU it does not have
    // under TCG.
    querystring: {
      type: 'object',
      additionalProperties: false,
      properties: { waitReadyMs: { type: 'integer', minimum: 0, maximum: 60_000 } },
    },
    response: replies({ 200: healthReport }, ['BAD_REQUEST', 'INTERNAL']),
  },
  exec: {
    body: {
      type: 'object',
      additionalProperties: false,
      required: ['argv'],
      properties: {
        argv: { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } },
        timeoutMs: { type: 'integer', minimum: 1, maximum: 3_600_000 },
        input: { type: 'string', description: 'written to stdin' },
        env: { type: 'object', additionalProperties: { type: 'string' }, description: "added to the agent's environment" },
      },
    },
    response: replies({ 200: execResult }, ['UNAUTHORIZED', 'BAD_REQUEST', ...HOST_FAILURES]),
  },
  restartAgent: {
    response: replies(
      { 202: { type: 'object', required: ['pid', 'restarting'], properties: { pid: { type: 'integer' }, restarting: { type: 'boolean', const: true } } } },
      ['UNAUTHORIZED', 'AGENT_NOT_RESTARTABLE'],
    ),
  },
  agentMemory: {
    body: {
      type: 'object',
      additionalProperties: false,
      properties: { collect: { type: 'boolean', description: 'a full garbage collection first (default true): what stays is what the agent holds' } },
    },
    response: replies(
      {
        200: {
          type: 'object',
          required: ['collected', 'memory', 'heapSpaces'],
          properties: {
            collected: { type: 'boolean' },
            memory: processMemory,
            heapSpaces: { type: 'array', items: { type: 'object', required: ['name', 'sizeBytes', 'usedBytes'], properties: { name: { type: 'string' }, sizeBytes: { type: 'integer' }, usedBytes: { type: 'integer' } } } },
          },
        },
      },
      ['UNAUTHORIZED', 'BAD_REQUEST'],
    ),
  },
  kernelLog: {
    querystring: {
      type: 'object',
      additionalProperties: false,
      properties: { since: { type: 'integer', minimum: 0, description: 'the records from this sequence number on (a `next` from an earlier answer); without it only `next`' } },
    },
    response: replies(
      {
        200: {
          type: 'object',
          required: ['next', 'records'],
          properties: {
            next: { type: 'integer', description: 'the sequence number the next record will have' },
            records: {
              type: 'array',
              items: { type: 'object', required: ['seq', 'level', 'usec', 'text'], properties: { seq: { type: 'integer' }, level: { type: 'integer' }, usec: { type: 'integer' }, text: { type: 'string' } } },
            },
          },
        },
      },
      ['UNAUTHORIZED', 'BAD_REQUEST', 'KERNEL_LOG_UNREADABLE'],
    ),
  },
  reboot: {
    body: {
      type: 'object',
      additionalProperties: false,
      properties: { hard: { type: 'boolean', description: 'a reset at once: nothing synced, unmounted or logged out' } },
    },
    response: replies(
      { 202: { type: 'object', required: ['bootId', 'hard'], properties: { bootId: { type: 'string' }, hard: { type: 'boolean' } } } },
      ['UNAUTHORIZED', 'BAD_REQUEST', 'NODE_NOT_REBOOTABLE'],
    ),
  },
  startOutage: {
    body: {
      type: 'object',
      additionalProperties: false,
      required: ['seconds'],
      properties: { seconds: { type: 'integer', minimum: 1, maximum: OUTAGE_MAX_SECONDS }, networks: { type: 'array', items: { type: 'string', pattern: '^[a-z0-9-]{1,15}$' }, maxItems: 16 } },
    },
    response: replies({ 200: outageReply }, ['UNAUTHORIZED', 'BAD_REQUEST']),
  },
  endOutage: {
    response: replies({ 200: outageReply }, ['UNAUTHORIZED']),
  },
  localDisks: {
    response: replies({ 200: { type: 'object', required: ['disks'], properties: { disks: { type: 'array', items: localDisk } } } }, LOCAL_DISK_ERRORS),
  },
  addLocalDisk: { response: replies({ 201: localDisk }, LOCAL_DISK_ERRORS) },
  removeLocalDisk: {
    params: { type: 'object', properties: { host: { type: 'integer', minimum: 0 } } },
    response: replies({ 200: { type: 'object', required: ['removed'], properties: { removed: strings } } }, [...LOCAL_DISK_ERRORS, 'BAD_REQUEST', 'DISK_UNKNOWN']),
  },
} satisfies Record<string, RouteSchema>;
