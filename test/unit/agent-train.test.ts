import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildAgent } from '../../src/agent/server.js';
import { loadTraining, trainAnswers, trainRequests, TRAINING_FILE, type TrainingFile } from '../../src/agent/train.js';
import { PROJECT_ROOT } from '../../src/system/paths.js';

// The training file is the inventory fixture captured from a real compute (test/fixtures/README.md).
const FIXTURE_DIR = join(PROJECT_ROOT, 'test/fixtures/guest-6.1.0-56');
const training = JSON.parse(readFileSync(join(FIXTURE_DIR, 'inventory-attached.json'), 'utf8')) as TrainingFile;

describe('a compute template\'s training', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await buildAgent({ lab: 't', node: 't', role: 'compute', token: 'train', compute: true });
    await app.ready();
  });
  afterAll(() => app.close());

  it('trains the answers on the recorded volumes, not on empty ones', async () => {
    const { rounds, first } = await trainAnswers(training, 0);
    expect(rounds).toBeGreaterThanOrEqual(40);
    // Every iSCSI volume of the fixture, each as sent three ways (os-brick's envelope, its data, one portal).
    const iscsi = Object.values(training.volumes).filter((v) => v.connectionInfo.driver_volume_type === 'iscsi');
    expect(first).toHaveLength(iscsi.length * 3);
    expect(first.every((a) => a.paths.length > 0 && a.devices.length > 0)).toBe(true);
    // The multipath volume's answer names its map and both paths' devices.
    const m = training.volumes.m!.connectionInfo.data;
    const mi = Object.values(training.volumes).findIndex((v) => v.connectionInfo.data === m);
    expect(first[mi * 3]!.devices.filter((d) => d.startsWith('dm-'))).toHaveLength(1);
    expect(first[mi * 3]!.paths).toHaveLength(2);
    // The one-portal form of the same volume: one by-path link, the same devices.
    expect(first[mi * 3 + 2]!.paths).toHaveLength(1);
  });

  it('trains the routes on answered requests, and refuses to train a refusal', async () => {
    expect(await trainRequests(app, training, 'train', 0)).toBeGreaterThanOrEqual(80);
    await expect(trainRequests(app, training, 'wrong-token', 0)).rejects.toThrow(/training: POST \/v1\/connectors\/iscsi\/volume-paths-batch answered 401/);
  });

  it('finds its file beside the agent, and goes without it', () => {
    expect(loadTraining(join(PROJECT_ROOT, 'test/fixtures'))).toBeNull();
    expect(loadTraining(undefined)).toBeNull();
    expect(TRAINING_FILE).toBe('agent-training.json');
  });
});
