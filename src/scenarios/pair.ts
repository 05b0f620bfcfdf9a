import type { DeviceInfo, TargetVolume } from '../agent/api/types.js';
import { onCompute, type Scenario } from './catalog.js';
import { BrickError, type ErrorCode } from '../system/errors.js';
import { check, ScenarioFailure, type ComputeHandle, type Expected, type ScenarioContext } from './context.js';

/**
 * The one runner of the orphan pairs: red before green. The faulty half runs first and the oracle
 * must name what it leaves; then the correct half, and the oracle must find nothing. The runner
 * owns that order, each half's volumes (deleted at its end, last made first) and what a pair does
 * once before its halves; a pair gives only what its halves do.
 */

export type Phase = 'faulty' | 'correct';

/** One half of a pair as its steps see it: the context, the compute node, which half. */
export interface Half {
  ctx: ScenarioContext;
  node: ComputeHandle;
  phase: Phase;
}

export interface OrphanPair<S, P> extends Omit<Scenario, 'name' | 'kind' | 'needs' | 'run'> {
  /** Data networks the pair's volumes are exported on (1 unless said); a pair runs on one compute node. */
  dataNetworks?: number;
  /** The pair acts on the target as a whole, or leaves iscsid to log in by itself: it runs alone (ScenarioNeeds.wholeLab). */
  wholeLab?: boolean;
  /**
   * 'separate' (the default): each half makes, attaches and judges volumes of its own, so setup
   * runs once a half. 'continued': one setup, and the correct half repairs what the faulty half left.
   */
  halves?: 'separate' | 'continued';
  /** Once, before the halves: what the pair changes on the lab for both (its undo on ctx.undo). */
  prepare?(ctx: ScenarioContext, node: ComputeHandle): Promise<P> | P;
  /** A half's opening, common to both halves: volumes made and attached, the steps before the fault. */
  setup(h: Half, prepared: P): Promise<S>;
  /** The faulty sequence, and the oracle naming what it left (then swept, so the lab is clean). */
  faulty(h: Half, state: S): Promise<void>;
  /** The correct sequence, and the oracle finding nothing. */
  correct(h: Half, state: S): Promise<void>;
  /** A half's closing, common to both halves, before the volumes it made are deleted. */
  teardown?(h: Half, state: S): Promise<void>;
}

export function orphanPair<S, P = undefined>(name: string, pair: OrphanPair<S, P>): Scenario {
  const { title, refs, dataNetworks = 1, wholeLab, halves = 'separate', prepare, setup, faulty, correct, teardown } = pair;
  return onCompute({ name, title, kind: 'orphan-pair', needs: { computes: 1, dataNetworks, ...(wholeLab ? { wholeLab } : {}) }, refs }, async (ctx, node) => {
    const prepared = (prepare ? await prepare(ctx, node) : undefined) as P;
    const half = (phase: Phase): Half => ({ ctx, node, phase });
    if (halves === 'continued') {
      await ownVolumes(ctx, async () => {
        const state = await setup(half('faulty'), prepared);
        await faulty(half('faulty'), state);
        await correct(half('correct'), state);
        await teardown?.(half('correct'), state);
      });
      return;
    }
    for (const phase of ['faulty', 'correct'] as const) {
      await ownVolumes(ctx, async () => {
        const state = await setup(half(phase), prepared);
        await (phase === 'faulty' ? faulty : correct)(half(phase), state);
        await teardown?.(half(phase), state);
      });
    }
  });
}

/** Run `body`, then delete the volumes it made and did not delete itself, last made first. */
async function ownVolumes(ctx: ScenarioContext, body: () => Promise<void>): Promise<void> {
  const before = new Set(ctx.volumes.keys());
  await body();
  const made = [...ctx.volumes.values()].filter((v) => !before.has(v.name));
  for (const v of made.reverse()) await ctx.deleteVolume(v);
}

/** The correct half's usual end: a plain detach, then nothing may be left. */
export async function detachedClean(h: Half, v: TargetVolume, d: DeviceInfo, phase: string, paths?: string[]): Promise<void> {
  await h.ctx.disconnect(h.node, v, d);
  await h.ctx.verdict(h.node, v, { phase, device: d, paths, expect: 'clean' });
}

/**
 * A detach with force=True. brick-lab's own connector must not raise here. A connector under test
 * may: os-brick's contract is that with force and without ignore_errors it finishes the clean-up
 * and then raises what went wrong. Then the oracle, not the exception, says what is left.
 */
export async function forcedDetach(ctx: ScenarioContext, node: ComputeHandle, v: TargetVolume, d: DeviceInfo): Promise<void> {
  try {
    await ctx.disconnect(node, v, d, { force: true });
  } catch (e) {
    if (!ctx.connector) throw e;
    ctx.forget(node, v);
    ctx.step(`${node.name}: the connector's detach with force=True raised (${(e as Error).message.split('\n')[0]}); the oracle judges what it left`);
  }
}

/**
 * The faulty half's usual end: the oracle must name exactly `expect`, then brick-lab's own forced
 * detach, ignoring errors, sweeps it (the faulty half is the lab's, also under brick-lab validate).
 */
export async function leftThenSwept(h: Half, v: TargetVolume, d: DeviceInfo, phase: string, expect: Expected, paths?: string[]): Promise<void> {
  await h.ctx.verdict(h.node, v, { phase, device: d, paths, expect });
  await h.ctx.disconnect(h.node, v, d, { force: true, ignoreErrors: true, builtin: true });
}

/**
 * Run what this sequence makes fail: it must fail with one of `codes`, the coded refusal the
 * sequence causes. Success fails the scenario, and so does any other failure (an agent timeout,
 * a bug): that would be a red half for the wrong reason.
 */
export async function expectFailure(ctx: ScenarioContext, what: string, codes: readonly ErrorCode[], fn: () => Promise<unknown>): Promise<string> {
  try {
    await fn();
  } catch (e) {
    const msg = (e as Error).message.split('\n')[0]!;
    const code = e instanceof BrickError ? e.code : (e as Error).name;
    check(codes.includes(code as ErrorCode), `${what} failed with ${code}, not as this sequence fails (${codes.join(' or ')}): ${msg}`);
    ctx.step(`${what} failed with ${code}, as it must: ${msg}`);
    return msg;
  }
  throw new ScenarioFailure(`${what} succeeded, but this sequence must fail here with ${codes.join(' or ')}`);
}
