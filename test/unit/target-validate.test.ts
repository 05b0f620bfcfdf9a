import { describe, expect, it } from 'vitest';
import { expectRefused } from './refusal.js';
import { checkInt, checkIqn, checkNqn, checkSize, checkUuid, checkVolumeName, MAX_SIZE_MIB } from '../../src/volume/fields.js';


/** A name of exactly `length` characters: the prefix, then 'a's. */
function ofLength(prefix: string, length: number): string {
  return prefix + 'a'.repeat(length - prefix.length);
}

describe('checkIqn', () => {
  it.each([
    'iqn.2026-11.io.brick-lab:lab.vol1',
    'iqn.2003-01.org.linux-iscsi.host.x8664:sn.abcdef',
    'iqn.1994-05.com.redhat:abc',
    'iqn.1993-08.org.debian:01:5e3c1a2b9f',
    'iqn.2026-11.io.brick-lab',
  ])('accepts %s and returns it unchanged', (iqn) => {
    expect(checkIqn(iqn)).toBe(iqn);
  });

  it('accepts exactly 223 characters and refuses 224', () => {
    const max = ofLength('iqn.2026-11.io.brick-lab:', 223);
    expect(max).toHaveLength(223);
    expect(checkIqn(max)).toBe(max);
    expectRefused(() => checkIqn(ofLength('iqn.2026-11.io.brick-lab:', 224)), 'BAD_IQN', 'iqn');
  });

  it.each([
    ['no dot in the naming authority (rtslib-fb refuses it)', 'iqn.2026-11.lab:target1'],
    ['month 13', 'iqn.2026-13.io.brick-lab:lab.vol1'],
    ['month 00', 'iqn.2026-00.io.brick-lab:lab.vol1'],
    ['uppercase in the unique part', 'iqn.2026-11.io.brick-lab:Lab.vol1'],
    ['uppercase in the domain', 'iqn.2026-11.IO.brick-lab:lab.vol1'],
    ['uppercase prefix', 'IQN.2026-11.io.brick-lab:lab.vol1'],
    ['a space', 'iqn.2026-11.io.brick-lab:lab vol1'],
    ['a leading space', ' iqn.2026-11.io.brick-lab:lab.vol1'],
    ['empty', ''],
    ['a two-digit year', 'iqn.26-11.io.brick-lab:lab.vol1'],
    ['no date', 'iqn.io.brick-lab:lab.vol1'],
    ['a slash', 'iqn.2026-11.io.brick-lab:lab/vol1'],
    ['an nqn', 'nqn.2026-11.io.brick-lab:lab.vol1'],
    ['an empty unique part', 'iqn.2026-11.io.brick-lab:'],
  ])('refuses %s with BAD_IQN', (_why, iqn) => {
    const err = expectRefused(() => checkIqn(iqn), 'BAD_IQN', 'iqn');
    expect(err.message).toContain(JSON.stringify(iqn));
  });

  it.each([[undefined], [null], [42], [{}], [['iqn.2026-11.io.brick-lab:lab.vol1']], [true]])('refuses the non-string %j with BAD_IQN', (v) => {
    expectRefused(() => checkIqn(v), 'BAD_IQN', 'iqn');
  });

  it('names the field it was given', () => {
    expectRefused(() => checkIqn('iqn.2026-11.lab:target1', 'initiators[0]'), 'BAD_IQN', 'initiators[0]');
    expectRefused(() => checkIqn(7, 'initiator'), 'BAD_IQN', 'initiator');
  });
});

describe('checkNqn', () => {
  const uuidNqn = 'nqn.2014-08.org.nvmexpress:uuid:3f2c6a4e-9b1d-4c7e-8a55-0d1e2f3a4b5c';

  it.each(['nqn.2026-11.io.brick-lab:lab.vol', uuidNqn, 'nqn.2014-08.org.nvmexpress.discovery:x'])('accepts %s', (nqn) => {
    expect(checkNqn(nqn)).toBe(nqn);
  });

  it.each([
    ["Cinder's nvmet driver form (no date)", 'nqn.nvme-subsystem-1-9a0d35d0-175a-11e4-8c21-0800200c9a66'],
    ['no :unique part', 'nqn.2026-11.io.brick-lab'],
  ])('accepts %s, as the kernel does', (_why, nqn) => {
    expect(checkNqn(nqn)).toBe(nqn);
  });

  it('accepts exactly 223 characters and refuses 224', () => {
    const max = ofLength('nqn.2026-11.io.brick-lab:', 223);
    expect(checkNqn(max)).toBe(max);
    expectRefused(() => checkNqn(ofLength('nqn.2026-11.io.brick-lab:', 224)), 'BAD_NQN', 'nqn');
  });

  it.each([
    ["a '/' (it would become a configfs directory)", 'nqn.2026-11.io.brick-lab:lab/vol'],
    ["a '/' that climbs out", 'nqn.2026-11.io.brick-lab:../../x'],
    ['a space', 'nqn.2026-11.io.brick-lab:lab vol'],
    ['empty', ''],
    ['nothing after the prefix', 'nqn.'],
    ['an iqn', 'iqn.2026-11.io.brick-lab:lab.vol'],
  ])('refuses %s with BAD_NQN', (_why, nqn) => {
    expectRefused(() => checkNqn(nqn), 'BAD_NQN', 'nqn');
  });

  it('refuses non-strings and names the field it was given', () => {
    expectRefused(() => checkNqn(undefined), 'BAD_NQN', 'nqn');
    expectRefused(() => checkNqn(12, 'hostNqn'), 'BAD_NQN', 'hostNqn');
  });
});

describe('checkVolumeName', () => {
  it.each(['vol-1', '0abc', 'a', 'x'.repeat(40)])('accepts %s', (name) => {
    expect(checkVolumeName(name)).toBe(name);
  });

  it.each([['..'], ['a/b'], ['../x'], [''], ['A'], ['x'.repeat(41)], ['-x'], ['vol.1'], ['vol 1'], [undefined], [3]])(
    'refuses %j with a 400 naming the field',
    (name) => {
      const err = expectRefused(() => checkVolumeName(name), 'BAD_REQUEST', 'name');
      expect(err.message).toContain('is not a volume name');
    },
  );

  it('names the field it was given', () => {
    expectRefused(() => checkVolumeName('a/b', 'volume'), 'BAD_REQUEST', 'volume');
  });
});

describe('checkSize', () => {
  it('accepts 1 and the maximum, 4096 MiB', () => {
    expect(MAX_SIZE_MIB).toBe(4096);
    expect(checkSize(1)).toBe(1);
    expect(checkSize(4096)).toBe(4096);
  });

  it.each([[0], [-1], [1.5], [4097], ['8'], [NaN], [Infinity], [null], [undefined]])('refuses %j', (size) => {
    expectRefused(() => checkSize(size), 'BAD_REQUEST', 'sizeMiB');
  });
});

describe('checkInt', () => {
  it('accepts whole numbers within the bounds, both ends included', () => {
    expect(checkInt(0, 'lun', 0, 255)).toBe(0);
    expect(checkInt(255, 'lun', 0, 255)).toBe(255);
  });

  it.each([[-1], [256], [2.5], ['3'], [NaN], [undefined]])('refuses %j naming the field', (v) => {
    const err = expectRefused(() => checkInt(v, 'lun', 0, 255), 'BAD_REQUEST', 'lun');
    expect(err.message).toContain('from 0 to 255');
  });
});

describe('checkUuid', () => {
  it('accepts a lowercase UUID', () => {
    expect(checkUuid('5fb85f75-2f1e-4ccf-a928-783dd267bfa2', 'uuid')).toBe('5fb85f75-2f1e-4ccf-a928-783dd267bfa2');
  });

  it.each([['5FB85F75-2F1E-4CCF-A928-783DD267BFA2'], ['5fb85f752f1e4ccfa928783dd267bfa2'], ['5fb85f75-2f1e-4ccf-a928-783dd267bfa'], [''], [42]])(
    'refuses %j naming the field',
    (v) => {
      expectRefused(() => checkUuid(v, 'uuid'), 'BAD_REQUEST', 'uuid');
    },
  );
});
