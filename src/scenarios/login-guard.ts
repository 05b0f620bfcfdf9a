/**
 * iSCSI logins and LIO target changes, kept apart when scenarios run side by side.
 *
 * LIO serves every target on one portal (ip:port) from one network-portal thread, which does the
 * logins; removing a target's portal from a TPG signals that thread, and a login it is in the
 * middle of, for any target, is aborted ("rx_data returned -512" on the target's console). The
 * initiator's login then waits for its retry: measured on the default lab (TCG), a connect took
 * 17.5 or 35 s instead of 0.6 s while another target was made and deleted on the same portal, and
 * once 120 s (iscsiadm's login gave up). One scenario at a time never meets this; two side by side
 * do, so a login takes the guard shared and a target change exclusive. A scenario that leaves
 * iscsid to log in by itself (after an outage, at a reboot) cannot say when, and runs alone.
 */
export class LoginGuard {
  private logins = 0;
  private changing = false;
  private readonly waiting: Array<{ change: boolean; go: () => void }> = [];

  /** A login (an attach, or a scenario's own iscsiadm login): any number at once, none during a change. */
  login<T>(fn: () => Promise<T>): Promise<T> {
    return this.hold(false, fn);
  }

  /** A target made or deleted: alone, once the logins under way have ended. */
  change<T>(fn: () => Promise<T>): Promise<T> {
    return this.hold(true, fn);
  }

  private async hold<T>(change: boolean, fn: () => Promise<T>): Promise<T> {
    // First come, first served: nothing joins ahead of one already waiting.
    // A waiter is woken with its hold already taken (wake()), so that the next one sees it.
    if (this.waiting.length > 0 || !this.free(change)) await new Promise<void>((go) => this.waiting.push({ change, go }));
    else this.take(change);
    try {
      return await fn();
    } finally {
      if (change) this.changing = false;
      else this.logins--;
      this.wake();
    }
  }

  private take(change: boolean): void {
    if (change) this.changing = true;
    else this.logins++;
  }

  private free(change: boolean): boolean {
    return change ? !this.changing && this.logins === 0 : !this.changing;
  }

  private wake(): void {
    while (this.waiting.length > 0 && this.free(this.waiting[0]!.change)) {
      const next = this.waiting.shift()!;
      this.take(next.change);
      next.go();
      if (next.change) break;
    }
  }
}
