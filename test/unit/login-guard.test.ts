import { describe, expect, it } from 'vitest';
import { LoginGuard } from '../../src/scenarios/login-guard.js';

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));
async function ticks(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await tick();
}

describe('LoginGuard: iSCSI logins and LIO target changes kept apart', () => {
  it('lets logins overlap, holds a change until they end, and holds logins that come after a waiting change', async () => {
    const g = new LoginGuard();
    const log: string[] = [];
    let inLogin = 0;
    let inChange = 0;
    const login = (name: string, n: number) =>
      g.login(async () => {
        expect(inChange, `${name} during a change`).toBe(0);
        inLogin++;
        log.push(`+${name}`);
        await ticks(n);
        log.push(`-${name}`);
        inLogin--;
      });
    const change = (name: string, n: number) =>
      g.change(async () => {
        expect({ inLogin, inChange }, `${name} beside another`).toEqual({ inLogin: 0, inChange: 0 });
        inChange++;
        log.push(`+${name}`);
        await ticks(n);
        log.push(`-${name}`);
        inChange--;
      });
    await Promise.all([login('a', 5), login('b', 2), change('delete', 2), login('c', 1), change('create', 1)]);
    // a and b together; the delete waits for both; c, which came after the delete, waits for it;
    // the create, after c, waits for c.
    expect(log).toEqual(['+a', '+b', '-b', '-a', '+delete', '-delete', '+c', '-c', '+create', '-create']);
  });

  it('lets the next one go when a holder throws', async () => {
    const g = new LoginGuard();
    await expect(g.change(async () => Promise.reject(new Error('target agent said no')))).rejects.toThrow('target agent said no');
    await expect(g.login(async () => 'logged in')).resolves.toBe('logged in');
    await expect(g.change(async () => 'deleted')).resolves.toBe('deleted');
  });
});
