/**
 * Named points where brick-lab's own tests stop a process to kill it there (`kill -9` of `up` at
 * each stage of a boot, of `run` in the middle of a scenario), so that what is left behind at that
 * exact point can be checked, instead of racing a timer against the process.
 *
 * BRICK_LAB_FAILPOINT=NAME: on reaching NAME the process says so on stderr and waits, doing
 * nothing, until it is killed. Unset (always, outside those tests), a failpoint is nothing.
 */
export const FAILPOINTS = ['up:record', 'up:template', 'up:networks', 'up:started', 'up:ready', 'scenario:outage'] as const;
export type Failpoint = (typeof FAILPOINTS)[number];

export async function failpoint(name: Failpoint): Promise<void> {
  if (process.env.BRICK_LAB_FAILPOINT !== name) return;
  process.stderr.write(`brick-lab: failpoint ${name} reached (pid ${process.pid}); waiting to be killed\n`);
  // A timer keeps the event loop (and so the process) alive; the promise never settles.
  setInterval(() => undefined, 1 << 30);
  await new Promise<never>(() => undefined);
}
