/**
 * Scenarios side by side on one lab (brick-lab run --jobs N): each scenario gets the computes it
 * needs (one, or two for a live migration) to itself for its whole run, up to N scenarios at once,
 * while the target serves them all. A scenario that needs the target as a whole, or every compute
 * of the lab, runs alone: those run first, one after another, so that no lane stands idle waiting
 * for the others to end before each of them; the rest then start in catalogue order (one waiting
 * for two computes is not overtaken). Results come back in catalogue order, whatever order they
 * ran and ended in.
 */

export interface Schedulable {
  name: string;
  needs: { computes: number; wholeLab?: boolean };
}

/**
 * A scenario that cannot share a lab of `computes` compute nodes (2, the default lab's, unless
 * told): it acts on the target as a whole, or needs every compute there is.
 */
export function runsAlone(s: Schedulable, computes = 2): boolean {
  return s.needs.wholeLab === true || s.needs.computes >= computes;
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
 * with every compute, in catalogue order). `quiet` runs when nothing else does: before a scenario
 * that runs alone and at the end (the runner cleans a target a scenario left unclean there). A
 * `run` that throws stops the starting of new ones; those under way are waited for, then it is
 * thrown.
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
  const indexed = items.map((s, index) => ({ s, index }));
  const sideBySide = jobs > 1 && computes.length > 1;
  const alone = sideBySide ? indexed.filter(({ s }) => runsAlone(s, computes.length)) : indexed;
  for (const { s, index } of alone) {
    if (failed) break;
    await quiet();
    await start(s, { computes: [...computes], alone: true, index }, []);
  }
  for (const { s, index } of sideBySide ? indexed.filter(({ s }) => !runsAlone(s, computes.length)) : []) {
    const want = Math.max(1, s.needs.computes);
    while (!failed && (free.length < want || running.size >= jobs)) await Promise.race(running);
    if (failed) break;
    const held = free.splice(0, want);
    void start(s, { computes: held.map((c) => computes[c]!), alone: false, index }, held);
  }
  await Promise.all(running);
  if (failed) throw (failed as { error: unknown }).error;
  await quiet();
  return results;
}
