import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildAgent, parseTimeline } from '../../src/agent/server.js';
import { isStaleSocket, parseServerTiming, sendPastStaleSockets } from '../../src/agent/api/http.js';
import { FIXTURE_KERNELS, guestFixtureUrl, type FixtureKernel } from './inventory-fixtures.js';

const FIXTURES = new URL('../fixtures/guest-6.1.0-56/', import.meta.url);
const DPKG_STATUS = fileURLToPath(new URL('dpkg-status', FIXTURES));
const TIMELINE = fileURLToPath(new URL('timeline', FIXTURES));
const TOKEN = 'c2VjcmV0LWxhYi10b2tlbi1mb3ItdW5pdC10ZXN0cw';

const TIMELINE_STEPS = [
  { step: 'stage2', uptimeSeconds: 2.69 },
  { step: 'network', uptimeSeconds: 3.23 },
  { step: 'agent-started', uptimeSeconds: 3.28 },
  { step: 'udev', uptimeSeconds: 11.38 },
  { step: 'role', uptimeSeconds: 14.27 },
  { step: 'ready', uptimeSeconds: 14.36 },
];

/**
 * The timeline of each captured guest: 6.1's of a compute booted from scratch, 6.12's of a compute
 * restored from a template (stage2.sh marks the template's steps, then the restore, the agent's
 * wake-up, the boot disk's boot count, the daemons and the agent's listening).
 */
const TIMELINES: Record<FixtureKernel, typeof TIMELINE_STEPS> = {
  '6.1.0-56': TIMELINE_STEPS,
  '6.12.117': [
    { step: 'stage2', uptimeSeconds: 6.86 },
    { step: 'modules', uptimeSeconds: 11.94 },
    { step: 'udev', uptimeSeconds: 14.57 },
    { step: 'template', uptimeSeconds: 34.75 },
    { step: 'restored:compute', uptimeSeconds: 35.75 },
    { step: 'network', uptimeSeconds: 37.29 },
    { step: 'agent-woken', uptimeSeconds: 37.46 },
    { step: 'disk:boot-1', uptimeSeconds: 38.4 },
    { step: 'daemons', uptimeSeconds: 39.11 },
    { step: 'role', uptimeSeconds: 39.68 },
    { step: 'ready', uptimeSeconds: 40.59 },
    { step: 'agent-listening', uptimeSeconds: 43.78 },
  ],
};

describe('parseTimeline', () => {
  it.each(FIXTURE_KERNELS)('reads the timeline stage2.sh writes in a TCG guest (kernel %s)', (kernel) => {
    const text = readFileSync(guestFixtureUrl('timeline', kernel), 'utf8');
    expect(parseTimeline(text)).toEqual(TIMELINES[kernel]);
    // Every line is a step: none is skipped.
    expect(parseTimeline(text)).toHaveLength(text.trim().split('\n').length);
  });

  it('keeps failure marks and skips lines that are not "step seconds"', () => {
    const text = 'stage2 2.69\n\ngarbage\nfailed:udev 130.5\nnetwork three\ntoo many fields 1\n  ready   14.36  \n';
    expect(parseTimeline(text)).toEqual([
      { step: 'stage2', uptimeSeconds: 2.69 },
      { step: 'failed:udev', uptimeSeconds: 130.5 },
      { step: 'ready', uptimeSeconds: 14.36 },
    ]);
  });

  it('is empty for an empty file', () => {
    expect(parseTimeline('')).toEqual([]);
  });
});

describe('buildAgent', () => {
  let dir: string;
  let readyFile: string;
  let timelineFile: string;
  let app: FastifyInstance;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'brick-agent-'));
    readyFile = join(dir, 'ready');
    timelineFile = join(dir, 'timeline');
    copyFileSync(TIMELINE, timelineFile);
    app = await buildAgent({
      lab: 'unit',
      node: 'compute-1',
      role: 'compute',
      token: TOKEN,
      readyFile,
      timelineFile,
      dpkgStatusFile: DPKG_STATUS,
    });
    await app.ready();
  });

  afterAll(async () => {
    await app?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const execPost = (payload: unknown, token: string | null = TOKEN) =>
    app.inject({
      method: 'POST',
      url: '/v1/exec',
      headers: token === null ? {} : { authorization: `Bearer ${token}` },
      payload: payload as Record<string, unknown>,
    });

  describe('Server-Timing', () => {
    it('says where the time went: the whole, the request before the handler (the wait for its body apart), each step a route times, and the writing of the answer', async () => {
      const auth = { authorization: `Bearer ${TOKEN}` };
      const compute = await buildAgent({ lab: 'unit', node: 'compute-1', role: 'compute', token: TOKEN, readyFile, timelineFile, dpkgStatusFile: DPKG_STATUS, compute: true });
      const inv = await compute.inject({ method: 'GET', url: '/v1/inventory', headers: auth });
      expect(inv.statusCode, inv.body).toBe(200);
      expect(Object.keys(parseServerTiming(inv.headers['server-timing'] as string))).toEqual(['agent', 'request', 'serialize']);
      // This host's own sysfs, checked against itself: every step of the host-wide view is timed.
      const r = await compute.inject({ method: 'POST', url: '/v1/inventory/host-check', headers: auth, payload: { baseline: inv.json(), stillAttached: [] } });
      await compute.close();
      expect(r.statusCode, r.body).toBe(200);
      const t = parseServerTiming(r.headers['server-timing'] as string);
      expect(Object.keys(t).sort()).toEqual(['agent', 'hostwide', 'receive', 'request', 'serialize', 'snapshot', 'tools', 'volumes']);
      for (const ms of Object.values(t)) expect(ms).toBeGreaterThanOrEqual(0);
      expect(t.agent).toBeGreaterThanOrEqual(t.snapshot!);
      expect(t.agent).toBeGreaterThanOrEqual(t.serialize!);
      // The wait for the body is a part of the request's phase.
      expect(t.request).toBeGreaterThanOrEqual(t.receive!);
    });

    it('keeps a baseline and names it by id: host-check against it, and a clear refusal for an id it does not keep, for both or for neither', async () => {
      const auth = { authorization: `Bearer ${TOKEN}` };
      const compute = await buildAgent({ lab: 'unit', node: 'compute-1', role: 'compute', token: TOKEN, readyFile, timelineFile, dpkgStatusFile: DPKG_STATUS, compute: true });
      try {
        const taken = await compute.inject({ method: 'POST', url: '/v1/inventory/baselines', headers: auth });
        expect(taken.statusCode, taken.body).toBe(201);
        const { id, snapshot } = taken.json() as { id: string; snapshot: { scope: string; takenAt: string } };
        expect(id).toMatch(/^[A-Za-z0-9-]+$/);
        expect(snapshot.scope).toBe('full');
        const byId = await compute.inject({ method: 'POST', url: '/v1/inventory/host-check', headers: auth, payload: { baselineId: id } });
        expect(byId.statusCode, byId.body).toBe(200);
        expect(byId.json()).toMatchObject({ baselineTakenAt: snapshot.takenAt });
        const unknown = await compute.inject({ method: 'POST', url: '/v1/inventory/host-check', headers: auth, payload: { baselineId: 'not-kept-here' } });
        expect(unknown.statusCode).toBe(404);
        expect(unknown.json()).toMatchObject({ code: 'BASELINE_UNKNOWN' });
        expect(unknown.json().hint).toContain('send the snapshot itself');
        const both = await compute.inject({ method: 'POST', url: '/v1/inventory/host-check', headers: auth, payload: { baselineId: id, baseline: snapshot } });
        expect(both.statusCode).toBe(400);
        expect(both.json().message).toContain('not both');
        const neither = await compute.inject({ method: 'POST', url: '/v1/inventory/host-check', headers: auth, payload: {} });
        expect(neither.statusCode).toBe(400);
        expect(neither.json().message).toContain('needs a baseline');
      } finally {
        await compute.close();
      }
    });

    it('reads a header back, adding up a phase named twice and skipping what is not "name;dur=N"', () => {
      expect(parseServerTiming('agent;dur=12.5, snapshot;dur=3, x;desc=y, snapshot;dur=1.5')).toEqual({ agent: 12.5, snapshot: 4.5 });
      expect(parseServerTiming(null)).toEqual({});
    });
  });

  describe('a request on a kept-alive connection that died (the node rebooted)', () => {
    const dead = (code: string): Error => Object.assign(new TypeError('fetch failed'), { cause: Object.assign(new Error('other side closed'), { code }) });

    it('is sent again on another connection, each dead one costing one try', async () => {
      let calls = 0;
      const res = await sendPastStaleSockets(async () => {
        calls++;
        if (calls <= 3) throw dead(calls % 2 ? 'UND_ERR_SOCKET' : 'ECONNRESET');
        return new Response('ok');
      });
      expect(await res.text()).toBe('ok');
      expect(calls).toBe(4);
    });

    it('gives up after its tries, and sends nothing again for any other failure (refused, timed out)', async () => {
      let calls = 0;
      await expect(sendPastStaleSockets(async () => ((calls++, Promise.reject(dead('UND_ERR_SOCKET')))), 3)).rejects.toThrow('fetch failed');
      expect(calls).toBe(3);
      for (const e of [dead('ECONNREFUSED'), new DOMException('timed out', 'TimeoutError')]) {
        calls = 0;
        expect(isStaleSocket(e)).toBe(false);
        await expect(sendPastStaleSockets(async () => ((calls++, Promise.reject(e))))).rejects.toBe(e);
        expect(calls).toBe(1);
      }
    });
  });

  describe('POST /v1/agent/restart', () => {
    it('answers 202 with its pid, then restarts (after the answer is sent); without a token it refuses and does not', async () => {
      const calls: string[] = [];
      const a = await buildAgent({ lab: 'unit', node: 'compute-1', role: 'compute', token: TOKEN, dpkgStatusFile: DPKG_STATUS, restart: () => calls.push('restart') });
      try {
        const no = await a.inject({ method: 'POST', url: '/v1/agent/restart', headers: { authorization: 'Bearer wrong' } });
        expect(no.statusCode).toBe(401);
        expect(calls).toEqual([]);
        const r = await a.inject({ method: 'POST', url: '/v1/agent/restart', headers: { authorization: `Bearer ${TOKEN}` } });
        expect(r.statusCode).toBe(202);
        expect(r.json()).toEqual({ pid: process.pid, restarting: true });
        expect(calls).toEqual(['restart']);
        expect((await a.inject({ method: 'GET', url: '/v1/health' })).json().agent.pid).toBe(process.pid);
      } finally {
        await a.close();
      }
    });
  });

  describe('POST /v1/agent/memory', () => {
    it('answers the memory after a full collection (garbage gone), without one when asked; refuses no token and a bad body', async () => {
      const a = await buildAgent({ lab: 'unit', node: 'compute-1', role: 'compute', token: TOKEN, dpkgStatusFile: DPKG_STATUS });
      const auth = { authorization: `Bearer ${TOKEN}` };
      try {
        expect((await a.inject({ method: 'POST', url: '/v1/agent/memory', payload: {} })).statusCode).toBe(401);
        const bad = await a.inject({ method: 'POST', url: '/v1/agent/memory', headers: auth, payload: { collect: 'yes' } });
        expect(bad.statusCode).toBe(400);
        expect(bad.json().message).toContain('collect');
        // 32 MiB in large arrays, held while the memory is read without a collection (a
        // collection V8 starts by itself meanwhile cannot free them), then let go: only a full
        // (mark-compact) collection frees them.
        let garbage: number[][] | null = Array.from({ length: 32 }, () => new Array<number>(128 * 1024).fill(1.5));
        const before = await a.inject({ method: 'POST', url: '/v1/agent/memory', headers: auth, payload: { collect: false } });
        expect(before.statusCode).toBe(200);
        expect(before.json().collected).toBe(false);
        expect(garbage.length).toBe(32);
        garbage = null;
        const after = await a.inject({ method: 'POST', url: '/v1/agent/memory', headers: auth, payload: {} });
        expect(after.statusCode).toBe(200);
        const m = after.json();
        expect(m.collected).toBe(true);
        expect(before.json().memory.heapUsed - m.memory.heapUsed).toBeGreaterThan(24 * 1024 * 1024);
        expect(m.heapSpaces.map((x: { name: string }) => x.name)).toEqual(expect.arrayContaining(['new_space', 'old_space', 'code_space', 'large_object_space']));
        for (const x of m.heapSpaces) expect(x.usedBytes).toBeLessThanOrEqual(x.sizeBytes);
      } finally {
        await a.close();
      }
    });
  });

  describe('POST /v1/node/reboot', () => {
    it('answers 202 with the boot it leaves, then reboots clean or hard (after the answer); refuses a bad body, no token, and a node that cannot reboot', async () => {
      const calls: string[] = [];
      const dir = mkdtempSync(join(tmpdir(), 'brick-boot-'));
      const bootIdFile = join(dir, 'boot_id');
      writeFileSync(bootIdFile, 'b0a7e5c1-1111-4222-8333-944455556666\n');
      const a = await buildAgent({ lab: 'unit', node: 'compute-1', role: 'compute', token: TOKEN, dpkgStatusFile: DPKG_STATUS, bootIdFile, reboot: (hard) => calls.push(hard ? 'hard' : 'clean') });
      const none = await buildAgent({ lab: 'unit', node: 'target-1', role: 'target', token: TOKEN, dpkgStatusFile: DPKG_STATUS });
      const auth = { authorization: `Bearer ${TOKEN}` };
      try {
        expect((await a.inject({ method: 'POST', url: '/v1/node/reboot', payload: {} })).statusCode).toBe(401);
        for (const payload of [{ hard: 'yes' }, { hard: true, now: true }, '"reboot"']) {
          const r = await a.inject({ method: 'POST', url: '/v1/node/reboot', headers: { ...auth, 'content-type': 'application/json' }, payload: typeof payload === 'string' ? payload : JSON.stringify(payload) });
          expect(r.statusCode, JSON.stringify(payload)).toBe(400);
        }
        expect(calls).toEqual([]);
        const clean = await a.inject({ method: 'POST', url: '/v1/node/reboot', headers: auth, payload: {} });
        expect(clean.statusCode).toBe(202);
        expect(clean.json()).toEqual({ bootId: 'b0a7e5c1-1111-4222-8333-944455556666', hard: false });
        const hard = await a.inject({ method: 'POST', url: '/v1/node/reboot', headers: auth, payload: { hard: true } });
        expect(hard.json()).toEqual({ bootId: 'b0a7e5c1-1111-4222-8333-944455556666', hard: true });
        expect(calls).toEqual(['clean', 'hard']);
        expect((await a.inject({ method: 'GET', url: '/v1/health' })).json().bootId).toBe('b0a7e5c1-1111-4222-8333-944455556666');
        const refused = await none.inject({ method: 'POST', url: '/v1/node/reboot', headers: auth, payload: { hard: true } });
        expect(refused.statusCode).toBe(409);
        expect(refused.json()).toMatchObject({ code: 'NODE_NOT_REBOOTABLE', message: expect.stringContaining('target-1') });
      } finally {
        await a.close();
        await none.close();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  describe('/v1/node/outage', () => {
    // Only what is refused before any interface is touched: the unit host's links stay as they are.
    it('refuses a request without a token, a duration out of range, a network the node does not have, and a node with none; ending nothing is fine', async () => {
      const a = await buildAgent({ lab: 'unit', node: 'compute-1', role: 'compute', token: TOKEN, dpkgStatusFile: DPKG_STATUS, dataNetworks: [{ name: 'path-a', address: '10.10.1.11' }, { name: 'path-b', address: '10.10.2.11' }] });
      const none = await buildAgent({ lab: 'unit', node: 'compute-2', role: 'compute', token: TOKEN, dpkgStatusFile: DPKG_STATUS });
      const auth = { authorization: `Bearer ${TOKEN}` };
      try {
        expect((await a.inject({ method: 'POST', url: '/v1/node/outage', payload: { seconds: 5 } })).statusCode).toBe(401);
        for (const seconds of [0, 3601, 2.5]) {
          const r = await a.inject({ method: 'POST', url: '/v1/node/outage', headers: auth, payload: { seconds } });
          expect(r.statusCode, String(seconds)).toBe(400);
          expect(r.json().message).toMatch(/seconds/);
        }
        const unknown = await a.inject({ method: 'POST', url: '/v1/node/outage', headers: auth, payload: { seconds: 5, networks: ['path-c'] } });
        expect(unknown.statusCode).toBe(400);
        expect(unknown.json()).toMatchObject({ code: 'BAD_REQUEST', message: 'networks: this node has no data network "path-c" (it has path-a, path-b)' });
        const bare = await none.inject({ method: 'POST', url: '/v1/node/outage', headers: auth, payload: { seconds: 5 } });
        expect(bare.statusCode).toBe(400);
        expect(bare.json().message).toBe('this node has no data network to take down');
        const end = await a.inject({ method: 'DELETE', url: '/v1/node/outage', headers: auth });
        expect(end.statusCode).toBe(200);
        expect(end.json()).toEqual({ down: [] });
      } finally {
        await a.close();
        await none.close();
      }
    });
  });

  describe('GET /v1/health', () => {
    it('says booting while the ready file does not exist, then ready once it does', async () => {
      const booting = await app.inject({ method: 'GET', url: '/v1/health' });
      expect(booting.statusCode).toBe(200);
      const b = booting.json();
      expect(b).toMatchObject({ lab: 'unit', node: 'compute-1', role: 'compute', state: 'booting' });

      writeFileSync(readyFile, '');
      const ready = await app.inject({ method: 'GET', url: '/v1/health' });
      expect(ready.statusCode).toBe(200);
      expect(ready.json()).toMatchObject({ lab: 'unit', node: 'compute-1', role: 'compute', state: 'ready' });
      rmSync(readyFile);
    });

    it('reports the timeline, the storage tool versions and the kernel', async () => {
      const r = await app.inject({ method: 'GET', url: '/v1/health' });
      const h = r.json();
      expect(h.timeline).toEqual(TIMELINE_STEPS);
      expect(h.tools['open-iscsi']).toBe('2.1.8-1+deb12u1');
      expect(h.tools['nvme-cli']).toBe('2.4+really2.3-3');
      expect(h.tools['python3-os-brick']).toBe('6.1.0-3');
      expect(typeof h.kernel).toBe('string');
      expect(h.kernel.length).toBeGreaterThan(0);
      expect(h.uptimeSeconds).toBeGreaterThan(0);
      expect(h.agent.version).toMatch(/^\d+\.\d+\.\d+/);
    });

    it('needs no token', async () => {
      const r = await app.inject({ method: 'GET', url: '/v1/health', headers: { authorization: 'Bearer wrong' } });
      expect(r.statusCode).toBe(200);
    });
  });

  describe('POST /v1/exec', () => {
    it('refuses a request without a token', async () => {
      const r = await execPost({ argv: ['true'] }, null);
      expect(r.statusCode).toBe(401);
      expect(r.json().code).toBe('UNAUTHORIZED');
    });

    it('refuses a wrong token, including one that is a prefix of the right one', async () => {
      for (const token of ['wrong', TOKEN.slice(0, -1), `${TOKEN}x`]) {
        const r = await execPost({ argv: ['true'] }, token);
        expect(r.statusCode).toBe(401);
        expect(r.json().code).toBe('UNAUTHORIZED');
      }
      const basic = await app.inject({
        method: 'POST',
        url: '/v1/exec',
        headers: { authorization: `Basic ${TOKEN}` },
        payload: { argv: ['true'] },
      });
      expect(basic.statusCode).toBe(401);
    });

    it('does not run the command when the token is wrong', async () => {
      const marker = join(dir, 'should-not-exist');
      await execPost({ argv: ['touch', marker] }, 'wrong');
      expect(existsSync(marker)).toBe(false);
    });

    it('runs a command and returns its exit code, stdout and stderr', async () => {
      const r = await execPost({ argv: ['sh', '-c', 'echo out; echo err >&2; exit 3'] });
      expect(r.statusCode).toBe(200);
      const body = r.json();
      expect(body).toMatchObject({ exitCode: 3, stdout: 'out\n', stderr: 'err\n', timedOut: false });
      expect(body.argv).toEqual(['sh', '-c', 'echo out; echo err >&2; exit 3']);
    });

    it('passes input on stdin and env to the command', async () => {
      const r = await execPost({ argv: ['sh', '-c', 'cat; printf "%s" "$BRICK_UNIT"'], input: 'in\n', env: { BRICK_UNIT: 'yes' } });
      expect(r.statusCode).toBe(200);
      expect(r.json()).toMatchObject({ exitCode: 0, stdout: 'in\nyes' });
    });

    it('answers exit code 127 for a program that does not exist', async () => {
      const r = await execPost({ argv: ['brick-lab-no-such-program-xyz'] });
      expect(r.statusCode).toBe(200);
      const body = r.json();
      expect(body.exitCode).toBe(127);
      expect(body.stderr).toContain('brick-lab-no-such-program-xyz');
    });

    it('refuses a body without argv, or with an empty argv', async () => {
      for (const payload of [{}, { timeoutMs: 100 }, { argv: [] }, { argv: [''] }]) {
        const r = await execPost(payload);
        expect(r.statusCode, JSON.stringify(payload)).toBe(400);
        expect(r.json().code).toBe('BAD_REQUEST');
      }
    });

    it('refuses a body with fields it does not know, instead of ignoring them', async () => {
      const marker = join(dir, 'extra-field-ran');
      const r = await execPost({ argv: ['touch', marker], shell: true });
      expect(r.statusCode).toBe(400);
      expect(r.json().code).toBe('BAD_REQUEST');
      expect(existsSync(marker)).toBe(false);
    });

    it('stops a command at timeoutMs and says it timed out', async () => {
      const r = await execPost({ argv: ['sleep', '5'], timeoutMs: 200 });
      expect(r.statusCode).toBe(200);
      const body = r.json();
      expect(body.timedOut).toBe(true);
      expect(body.exitCode).not.toBe(0);
    });
  });
});
