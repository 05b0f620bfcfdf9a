import { describe, expect, it } from 'vitest';
import type { ComputeClient } from '../../src/agent/api/compute-client.js';
import type { TargetClient } from '../../src/agent/api/target-client.js';
import type { KernelLogRecord } from '../../src/system/kmsg.js';
import type { DeviceInfo, HostCheckRequest, HostSnapshot, OrphansRequest, TargetVolume } from '../../src/agent/api/types.js';
import { diffSnapshots } from '../../src/inventory/diff.js';
import { hostWideView } from '../../src/inventory/hostwide.js';
import { oracleAnswer } from '../../src/inventory/oracle.js';
import type { ToolViews } from '../../src/inventory/tools.js';
import type { LabRecord } from '../../src/lab/state.js';
import { normalise } from '../../src/osbrick/index.js';
import { ScenarioContext, ScenarioFailure, type ComputeHandle, type Expected, type TargetHandle } from '../../src/scenarios/context.js';
import { expectFailure, orphanPair } from '../../src/scenarios/pair.js';
import { LoginGuard } from '../../src/scenarios/login-guard.js';
import { runScenarioOn } from '../../src/scenarios/runner.js';
import { BrickError, RemoteError } from '../../src/system/errors.js';
import { replayHostFs } from '../../src/system/hostfs-record.js';
import { identityFromProperties } from '../../src/volume/identity.js';
import { fixtureTools, loadInventoryFixture, type FixtureVolume } from './inventory-fixtures.js';

/**
 * The scenarios' verdicts and the runner's status on recorded hosts: agents that answer from the
 * captured inventories (test/fixtures/guest-6.1.0-56) through the real oracle. A host is either
 * the capture with volumes attached or an empty one (the capture with every list emptied), and a
 * scenario's attach and detach move it between the two.
 *
 * The recorded compute answers the volume-scoped verdict only (no host-wide view): the host-wide
 * view of two captures taken apart would name every other volume that changed between them.
 */
const ATTACHED = loadInventoryFixture('inventory-attached.json');
const EMPTY: HostSnapshot = {
  ...ATTACHED.snapshot,
  scsiDevices: [],
  iscsiSessions: [],
  iscsiNodes: [],
  iscsiDiscovery: [],
  iscsiIfaces: [],
  nvmeControllers: [],
  nvmeNamespaces: [],
  blockDevices: [],
  links: [],
  multipathMaps: [],
};
const NO_TOOLS: ToolViews = { multipathPaths: [], multipathMaps: [], dmStatus: [] };

/** What the oracle finds of fixture volume `a` (single-path iSCSI) on the attached capture. */
const A_ATTACHED: Expected = ['scsi-device', 'block-device', 'by-path-link', 'by-id-link', 'multipathd-path'];

class RecordedHost {
  attached = false;
  readonly calls: string[] = [];
  /** The host's kernel log (/dev/kmsg records); a scenario's check reads what came after its mark. */
  readonly kmsg: KernelLogRecord[] = [{ seq: 40, level: 6, usec: 1000, text: 'sd 0:0:0:0: [sda] Attached SCSI disk' }];

  private now(): HostSnapshot {
    return this.attached ? ATTACHED.snapshot : EMPTY;
  }

  readonly handle: ComputeHandle = {
    name: 'compute-1',
    initiatorIqn: 'iqn.2026-11.io.brick-lab:compute-1',
    client: {
      inventory: async () => this.now(),
      orphans: async (req: OrphansRequest) =>
        oracleAnswer({
          now: this.now(),
          tools: this.attached ? fixtureTools(ATTACHED) : NO_TOOLS,
          volume: identityFromProperties(normalise(req.protocol, req.properties), req.wwid ?? null),
          known: { devices: req.devices ?? [] },
          stillAttached: [],
          baseline: null,
          alsoDetached: [],
          fs: replayHostFs(ATTACHED.recording),
        }),
      hostCheck: async (req: HostCheckRequest) => {
        const now = this.now();
        const view = hostWideView({ baseline: req.baseline!, now, diff: diffSnapshots(req.baseline!, now), tools: NO_TOOLS, stillAttached: [] });
        return { clean: view.orphans.length === 0 && view.collateral.length === 0, ...view };
      },
      connect: async () => {
        this.calls.push('connect');
        this.attached = true;
        return ATTACHED.devices!.da as DeviceInfo;
      },
      disconnect: async (_p: unknown, _props: unknown, _d: unknown, opts: { force?: boolean }) => {
        this.calls.push(opts.force ? 'disconnect force' : 'disconnect');
        this.attached = false;
        return { removed: ['everything'], errors: [] };
      },
      exec: async () => ({ exitCode: 0, stdout: '', stderr: '' }),
      kernelLog: async (since?: number) => ({ next: this.kmsg.at(-1)!.seq + 1, records: since === undefined ? [] : this.kmsg.filter((r) => r.seq >= since) }),
    } as unknown as ComputeClient,
  };
}

/** What the target still holds after a scenario: nothing, unless given (names as the target agent reports them). */
interface TargetHeld {
  targets?: string[];
  backstores?: string[];
  subsystems?: string[];
  loopDevices?: string[];
  files?: string[];
  cleanups?: number;
}

function recordedTarget(held: TargetHeld = {}): TargetHandle {
  const a = ATTACHED.volumes.a;
  return {
    name: 'target-1',
    client: {
      createIscsiVolume: async (req: { name: string }): Promise<TargetVolume> => ({ ...(a as FixtureVolume), name: req.name }) as unknown as TargetVolume,
      deleteVolume: async (name: string) => ({ deleted: name }),
      leftovers: async () => ({
        lio: { targets: (held.targets ?? []).map((iqn) => ({ iqn })), backstores: (held.backstores ?? []).map((name) => ({ name })) },
        nvmet: { subsystems: (held.subsystems ?? []).map((nqn) => ({ nqn })), ports: [], hosts: [] },
        loopDevices: held.loopDevices ?? [],
        files: held.files ?? [],
      }),
      cleanup: async () => {
        held.cleanups = (held.cleanups ?? 0) + 1;
        return { removed: [] };
      },
      exec: async () => ({ exitCode: 0, stdout: '', stderr: '' }),
      kernelLog: async () => ({ next: 7, records: [] }),
    } as unknown as TargetClient,
  };
}

const LAB = { name: 'unit' } as LabRecord;

function context(host: RecordedHost): ScenarioContext {
  return new ScenarioContext(LAB, recordedTarget(), [host.handle], 'unit', 1);
}

describe('ScenarioContext.verdict', () => {
  it('passes when the oracle finds exactly the kinds the sequence leaves', async () => {
    const host = new RecordedHost();
    const ctx = context(host);
    const v = await ctx.createIscsi({ name: 'a' });
    const d = await ctx.connect(host.handle, v);
    const left = await ctx.verdict(host.handle, v, { device: d, expect: A_ATTACHED });
    expect(new Set(left.map((o) => o.kind))).toEqual(new Set(A_ATTACHED));
    expect(ctx.rows.at(-1)!.expected).toBe(A_ATTACHED.join(', '));
  });

  it('fails on a kind the oracle missed, naming it', async () => {
    const host = new RecordedHost();
    const ctx = context(host);
    const v = await ctx.createIscsi({ name: 'a' });
    await ctx.connect(host.handle, v);
    const err = await ctx.verdict(host.handle, v, { expect: [...A_ATTACHED, 'iscsi-session'] as Expected }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(ScenarioFailure);
    expect((err as Error).message).toMatch(/missed: iscsi-session$/);
  });

  it('fails on kinds found beyond the expected ones, naming them (a subset is not enough)', async () => {
    const host = new RecordedHost();
    const ctx = context(host);
    const v = await ctx.createIscsi({ name: 'a' });
    await ctx.connect(host.handle, v);
    const err = await ctx.verdict(host.handle, v, { expect: ['scsi-device', 'block-device'] }).catch((e: Error) => e);
    expect((err as Error).message).toMatch(/not expected: by-path-link, by-id-link, multipathd-path$/);
  });

  it("fails 'clean' with what was left, and passes it when nothing is", async () => {
    const host = new RecordedHost();
    const ctx = context(host);
    const v = await ctx.createIscsi({ name: 'a' });
    const d = await ctx.connect(host.handle, v);
    await expect(ctx.verdict(host.handle, v, { expect: 'clean' })).rejects.toThrow(/left scsi-device /);
    await ctx.disconnect(host.handle, v, d);
    await expect(ctx.verdict(host.handle, v, { expect: 'clean' })).resolves.toEqual([]);
  });
});

describe('expectFailure', () => {
  const ctx = context(new RecordedHost());
  it('returns on the coded failure the sequence causes', async () => {
    await expect(expectFailure(ctx, 'detach', ['FLUSH_FAILED'], () => Promise.reject(new RemoteError('FLUSH_FAILED', 'flushing /dev/sda failed')))).resolves.toBe('flushing /dev/sda failed');
    expect(ctx.steps.at(-1)).toBe('detach failed with FLUSH_FAILED, as it must: flushing /dev/sda failed');
  });

  it('fails on any other failure: another code, an error without one', async () => {
    await expect(expectFailure(ctx, 'detach', ['FLUSH_FAILED'], () => Promise.reject(new BrickError('AGENT_UNREACHABLE', 'no answer')))).rejects.toThrow(
      /^detach failed with AGENT_UNREACHABLE, not as this sequence fails \(FLUSH_FAILED\): no answer$/,
    );
    await expect(expectFailure(ctx, 'detach', ['FLUSH_FAILED'], () => Promise.reject(new TypeError('x is undefined')))).rejects.toThrow(/failed with TypeError, not as this sequence fails/);
  });

  it('fails when the sequence succeeds', async () => {
    await expect(expectFailure(ctx, 'detach', ['FLUSH_FAILED', 'MULTIPATH_FLUSH_FAILED'], async () => 'ok')).rejects.toThrow(/^detach succeeded, but this sequence must fail here with FLUSH_FAILED or MULTIPATH_FLUSH_FAILED$/);
  });
});

describe('ScenarioContext.waitGone', () => {
  it('fails the step with the namespaces that lingered when the host keeps them', async () => {
    const host = new RecordedHost();
    host.attached = true;
    const ctx = context(host);
    const n = ATTACHED.volumes.n as unknown as TargetVolume;
    const err = await ctx.waitGone(host.handle, n, 300).catch((e: Error) => e);
    expect(err).toBeInstanceOf(ScenarioFailure);
    expect((err as Error).message).toMatch(new RegExp(`namespace ${n.nvme!.nsid} of ${n.nvme!.nqn} still shown \\d+ s after the target removed it: nvme\\S+ \\(nsid ${n.nvme!.nsid}\\)`));
  });

  it('returns once the namespace is gone', async () => {
    const host = new RecordedHost();
    const ctx = context(host);
    await expect(ctx.waitGone(host.handle, ATTACHED.volumes.n as unknown as TargetVolume, 300)).resolves.toBeUndefined();
  });
});

/**
 * A pair over the recorded host: the faulty half attaches fixture volume `a`, runs `faultyDetach`
 * and expects what `a` has on the attached capture; the correct half detaches it and expects nothing.
 */
function pairOn(host: RecordedHost, faultyDetach: () => void) {
  return orphanPair('recorded', {
    title: 'a pair on recorded hosts',
    refs: [],
    async setup({ ctx, node }) {
      const v = await ctx.createIscsi({ name: 'a' });
      return { v, d: await ctx.connect(node, v) };
    },
    async faulty({ ctx, node }, { v, d }) {
      await ctx.faultyDetach(node, v, 'the fault under test', async () => faultyDetach());
      await ctx.verdict(node, v, { phase: 'faulty', device: d, expect: A_ATTACHED });
      await ctx.disconnect(node, v, d, { force: true, ignoreErrors: true, builtin: true });
    },
    async correct({ ctx, node }, { v, d }) {
      await ctx.disconnect(node, v, d);
      await ctx.verdict(node, v, { phase: 'correct', device: d, expect: 'clean' });
    },
  });
}

describe('runScenario on recorded hosts', () => {
  it('passes a pair whose faulty half leaves what it names and whose correct half leaves nothing', async () => {
    const host = new RecordedHost();
    const r = await runScenarioOn(LAB, { target: recordedTarget(), computes: [host.handle] }, pairOn(host, () => {}), { resultsDir: '/nonexistent', evidence: false, inspect: false });
    expect(r).toMatchObject({ status: 'passed', failure: null, problems: [] });
    expect(r.rows.map((x) => [x.phase, x.expected, x.left.length > 0])).toEqual([
      ['faulty', A_ATTACHED.join(', '), true],
      ['correct', 'clean', false],
    ]);
    expect(host.calls).toEqual(['connect', 'disconnect force', 'connect', 'disconnect']);
  });

  it('fails a pair whose faulty half the oracle calls clean: a red half that shows nothing is no red half', async () => {
    const host = new RecordedHost();
    // The faulty detach here removes everything: the oracle rightly finds nothing, and the pair,
    // which claims a leftover, must go red.
    const r = await runScenarioOn(LAB, { target: recordedTarget(), computes: [host.handle] }, pairOn(host, () => (host.attached = false)), { resultsDir: '/nonexistent', evidence: false, inspect: false });
    expect(r.status).toBe('failed');
    expect(r.failure).toMatch(/^compute-1: for recorded-a the oracle found nothing, the sequence leaves scsi-device, block-device, by-path-link, by-id-link, multipathd-path; missed: /);
    expect(r.rows.map((x) => x.phase)).toEqual(['faulty']);
  });

  it('beside other scenarios, judges the target by its own objects only, and leaves the clean-up to the scheduler', async () => {
    // What another scenario running at the same time holds on the target (names as the agent gives them).
    const others: TargetHeld = {
      targets: ['iqn.2026-11.io.brick-lab:dev.orphan-rescan-during-detach-correct-gone'],
      backstores: ['orp-res-dur-det-correct-third', 'recorded-a-2'],
      subsystems: ['nqn.2026-11.io.brick-lab:dev.field-nvme-ctrl-loss-faulty'],
      loopDevices: ['/dev/loop3 /var/lib/brick-lab/volumes/orp-res-dur-det-correct-third.img'],
      files: ['orp-res-dur-det-correct-third.img'],
    };
    const beside = { targetDirty: false, guard: new LoginGuard() };
    const first = new RecordedHost();
    const clean = await runScenarioOn(LAB, { target: recordedTarget(others), computes: [first.handle] }, pairOn(first, () => {}), { resultsDir: '/nonexistent', evidence: false, inspect: false, beside });
    expect(clean).toMatchObject({ status: 'passed', problems: [] });
    expect(beside.targetDirty).toBe(false);
    expect(others.cleanups).toBeUndefined();

    // Its own volume's objects left behind: named (and only they), marked for the scheduler, not cleaned now.
    const held: TargetHeld = { ...others, targets: [...others.targets!, 'iqn.2026-11.io.brick-lab:dev.recorded-a'], backstores: [...others.backstores!, 'recorded-a'], files: [...others.files!, 'recorded-a.img'] };
    const host = new RecordedHost();
    const dirty = await runScenarioOn(LAB, { target: recordedTarget(held), computes: [host.handle] }, pairOn(host, () => {}), { resultsDir: '/nonexistent', evidence: false, inspect: false, beside });
    expect(dirty.status).toBe('failed');
    expect(dirty.problems).toEqual(['target-1 not clean after the scenario: LIO target iqn.2026-11.io.brick-lab:dev.recorded-a; LIO backstore recorded-a; backing file recorded-a.img']);
    expect(beside.targetDirty).toBe(true);
    expect(held.cleanups).toBeUndefined();

    // Alone (no one beside it), anything on the target is its own: named, and cleaned at once.
    const third = new RecordedHost();
    const alone = await runScenarioOn(LAB, { target: recordedTarget(others), computes: [third.handle] }, pairOn(third, () => {}), { resultsDir: '/nonexistent', evidence: false, inspect: false });
    expect(alone.problems.join('\n')).toMatch(/^target-1 not clean after the scenario: LIO target iqn\.2026-11\.io\.brick-lab:dev\.orphan-rescan-during-detach-correct-gone; LIO backstore orp-res-dur-det-correct-third; LIO backstore recorded-a-2; nvmet subsystem /);
    expect(others.cleanups).toBe(1);
  });

  /** A pair's setup: fixture volume `a` made and attached. */
  const attachA = async ({ ctx, node }: { ctx: ScenarioContext; node: ComputeHandle }): Promise<TargetVolume> => {
    const v = await ctx.createIscsi({ name: 'a' });
    await ctx.connect(node, v);
    return v;
  };

  it('fails a scenario that leaves the host other than it found it, host-wide', async () => {
    const host = new RecordedHost();
    // Attached once and then forgotten, as a connector that reports a detach it did not make.
    const leaky = orphanPair('leaky', {
      title: 'leaves its volume attached',
      refs: [],
      halves: 'continued',
      setup: attachA,
      faulty: async () => {},
      correct: async ({ ctx, node }, v) => ctx.forget(node, v),
    });
    const r = await runScenarioOn(LAB, { target: recordedTarget(), computes: [host.handle] }, leaky, { resultsDir: '/nonexistent', evidence: false, inspect: false });
    expect(r.status).toBe('failed');
    expect(r.failure).toBeNull();
    expect(r.problems.join('\n')).toMatch(/compute-1 host-wide, left after the scenario: .*scsi-device/);
    expect(r.problems.join('\n')).toMatch(/compute-1 not clean after the scenario: iSCSI session/);
  });

  it('fails a scenario during which a kernel logged trouble, naming the node and the line, and not for what came before it', async () => {
    const host = new RecordedHost();
    // Logged before the scenario: not the scenario's.
    host.kmsg.push({ seq: 41, level: 4, usec: 2000, text: 'WARNING: CPU: 0 PID: 1 at an earlier test' });
    const warns = orphanPair('warns', {
      title: 'a kernel warning while it runs',
      refs: [],
      halves: 'continued',
      setup: attachA,
      faulty: async ({ ctx, node }, v) => {
        host.kmsg.push({ seq: 42, level: 4, usec: 3000, text: 'WARNING: CPU: 0 PID: 812 at drivers/scsi/scsi_lib.c:1234 scsi_queue_rq' });
        await ctx.faultyDetach(node, v, 'nothing', async () => {});
      },
      correct: async ({ ctx, node }, v) => {
        await ctx.disconnect(node, v, null);
      },
    });
    const r = await runScenarioOn(LAB, { target: recordedTarget(), computes: [host.handle] }, warns, { resultsDir: '/nonexistent', evidence: false, inspect: false });
    expect(r.status).toBe('failed');
    const kernel = r.problems.filter((p) => p.includes('kernel:'));
    expect(kernel).toEqual(['compute-1 kernel: WARNING: CPU: 0 PID: 812 at drivers/scsi/scsi_lib.c:1234 scsi_queue_rq']);
  });
});
