/**
 * Scenarios side by side on one lab (brick-lab run --jobs N): each scenario that uses one compute
 * node gets one of its own for its whole run, up to N at once, while the target serves them all;
 * a scenario that needs the whole lab (two computes, or the target itself taken down) waits until
 * nothing else runs and runs alone. Scenarios start in catalogue order (first come, first served:
 * a scenario that must run alone is not overtaken by those after it), and their results come back
 * in that order, whatever order they end in.
 */

export interface Schedulable {
  name: string;
  needs: { computes: number; wholeLab?: boolean };
}

/** A scenario that cannot share the lab: it uses more than one compute, or the target as a whole. */
export function runsAlone(s: Schedulable): boolean {
  return s.needs.computes > 1 || s.needs.wholeLab === true;
}

export interface Turn<N> {
  /** The computes this scenario has to itself: one, or all of them when it runs alone. */
  computes: N[];
  /** Nothing else runs while it does. */
  alone: boolean;
  /** Its place in the catalogue order (0-based). */
  index: number;
}

/**
 * Run `items` over `computes` with at most `jobs` at once (jobs <= 1: one after another, each
 * with every compute, as before). `quiet` runs when nothing else does: before a scenario that
 * runs alone and at the end (the runner cleans a target a scenario left unclean there). A `run`
 * that throws stops the starting of new ones; those under way are waited for, then it is thrown.
 */
export async function runScheduled<S extends Schedulable, N, R>(
  items: S[],
  computes: N[],
  jobs: number,
  run: (s: S, turn: Turn<N>) => Promise<R>,
  quiet: () => Promise<void> = async () => {},
): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  const free = computes.map((_, i) => i);
  const running = new Set<Promise<void>>();
  let failed: { error: unknown } | null = null;
  const start = (s: S, turn: Turn<N>, held: number[]): Promise<void> => {
    const p: Promise<void> = run(s, turn)
      .then((r) => {
        results[turn.index] = r;
      })
      .catch((e: unknown) => {
        failed ??= { error: e };
      })
      .finally(() => {
        running.delete(p);
        free.push(...held);
        free.sort((a, b) => a - b);
      });
    running.add(p);
    return p;
  };
  for (const [index, s] of items.entries()) {
    if (failed) break;
    if (jobs <= 1 || computes.length <= 1 || runsAlone(s)) {
      await Promise.all(running);
      if (failed) break;
      await quiet();
      await start(s, { computes: [...computes], alone: true, index }, []);
      continue;
    }
    while (free.length === 0 || running.size >= jobs) await Promise.race(running);
    if (failed) break;
    const c = free.shift()!;
    void start(s, { computes: [computes[c]!], alone: false, index }, [c]);
  }
  await Promise.all(running);
  if (failed) throw (failed as { error: unknown }).error;
  await quiet();
  return results;
}
