import { describe, expect, it } from 'vitest';
import { accelArgs, decideAccel } from '../../src/lab/accel.js';

const okProbe = { ok: true, detail: 'guest userland ran', seconds: 1.4 };
const failedProbe = { ok: false, detail: 'qemu exited 1: kvm_init_vcpu failed', seconds: 0.3 };

describe('decideAccel', () => {
  it('BRICK_LAB_ACCEL=tcg wins even over a successful probe', () => {
    const d = decideAccel({ override: 'tcg', kvmDevice: true, probe: okProbe });
    expect(d.accel).toBe('tcg');
    expect(d.reason).toContain('BRICK_LAB_ACCEL=tcg');
  });

  it('BRICK_LAB_ACCEL=kvm wins even without /dev/kvm (the caller refuses it later)', () => {
    const d = decideAccel({ override: 'kvm', kvmDevice: false });
    expect(d.accel).toBe('kvm');
    expect(d.reason).toContain('BRICK_LAB_ACCEL=kvm');
  });

  it('the override is case- and space-insensitive', () => {
    expect(decideAccel({ override: ' KVM ', kvmDevice: false }).accel).toBe('kvm');
    expect(decideAccel({ override: 'TCG', kvmDevice: true, probe: okProbe }).accel).toBe('tcg');
  });

  it('no /dev/kvm means TCG, whatever a probe says', () => {
    const d = decideAccel({ kvmDevice: false, probe: okProbe });
    expect(d.accel).toBe('tcg');
    expect(d.reason).toContain('no /dev/kvm');
  });

  it('a successful probe means KVM', () => {
    const d = decideAccel({ kvmDevice: true, probe: okProbe });
    expect(d.accel).toBe('kvm');
    expect(d.reason).toContain('1.4 s');
  });

  it('a failed probe means TCG, and the reason carries the probe detail', () => {
    const d = decideAccel({ kvmDevice: true, probe: failedProbe });
    expect(d.accel).toBe('tcg');
    expect(d.reason).toContain('/dev/kvm exists');
    expect(d.reason).toContain(failedProbe.detail);
  });

  it('/dev/kvm present but never probed means TCG: the device alone proves nothing', () => {
    const d = decideAccel({ kvmDevice: true });
    expect(d.accel).toBe('tcg');
    expect(d.reason).toMatch(/not probed/);
  });

  it('an empty override is no override', () => {
    expect(decideAccel({ override: '', kvmDevice: true, probe: okProbe }).accel).toBe('kvm');
  });
});

describe('accelArgs', () => {
  it('TCG uses a 512 MiB translation cache and -cpu max', () => {
    const a = accelArgs('tcg');
    expect(a[a.indexOf('-accel') + 1]).toBe('tcg,tb-size=512');
    expect(a[a.indexOf('-cpu') + 1]).toBe('max');
  });

  it('KVM uses -cpu host', () => {
    const a = accelArgs('kvm');
    expect(a[a.indexOf('-accel') + 1]).toBe('kvm');
    expect(a[a.indexOf('-cpu') + 1]).toBe('host');
  });
});
