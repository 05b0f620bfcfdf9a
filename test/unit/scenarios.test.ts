import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadTopology, parseTopology, renderTopology, type NodeSpec, type Topology } from '../../src/lab/topology.js';
import { listScenarios } from '../../src/scenarios/run.js';
import { sharedNetworks, volumeName } from '../../src/scenarios/context.js';
import { renderJunit, renderMarkdown, renderTable, writeReport } from '../../src/scenarios/report.js';
import { ALL_SCENARIOS, checkNeeds, SCENARIO_SETS_FILE, scenarioSets, selectScenarios, type ScenarioResult, type SuiteReport } from '../../src/scenarios/runner.js';
import { FC_PAIRS } from '../../src/scenarios/fc-pairs.js';
import { FIELD_PAIRS } from '../../src/scenarios/field-pairs.js';
import { ORPHAN_PAIRS } from '../../src/scenarios/orphan-pairs.js';
import type { BrickError } from '../../src/system/errors.js';
import { PROJECT_ROOT } from '../../src/system/paths.js';
import { rejection } from './refusal.js';

// Made before the tests run (not while they are collected) and removed after them.
let tmp = '';
let FIXTURE_SETS = '';
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'brick-lab-scenarios-'));
  // Sets listed against suite order, so that the order of the result is the selector's doing.
  FIXTURE_SETS = setsFile(
    'sets.yaml',
    `sets:
  backwards:
    - orphan-no-udev
    - live-migration-nvme
    - round-trip-local
    - round-trip-iscsi-1path
  overlap:
    - round-trip-local
    - shared-target-nvme
`,
  );
});
afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** The BrickError a synchronous call throws, checked for its code (fails the test when it returns). */
async function refused(fn: () => unknown, code: string): Promise<BrickError> {
  const err = await rejection((async () => fn())());
  expect(err.code).toBe(code);
  return err;
}

function setsFile(name: string, yaml: string): string {
  const file = join(tmp, name);
  writeFileSync(file, yaml);
  return file;
}

const names = (xs: Array<{ name: string }>): string[] => xs.map((s) => s.name);
const ALL_NAMES = names(ALL_SCENARIOS);
const byName = (...ns: string[]) => ns.map((n) => ALL_SCENARIOS.find((s) => s.name === n)!);


describe('the scenarios', () => {
  it('have distinct names', () => {
    expect(new Set(ALL_NAMES).size).toBe(ALL_NAMES.length);
  });
});

describe('selectScenarios', () => {
  it('expands a set in suite order, not in the order the set lists it', () => {
    const got = names(selectScenarios(['backwards'], FIXTURE_SETS));
    expect(got).toEqual(['round-trip-iscsi-1path', 'round-trip-local', 'live-migration-nvme', 'orphan-no-udev']);
    expect(got).toEqual(ALL_NAMES.filter((n) => got.includes(n)));
  });

  it('puts single names in suite order too', () => {
    expect(names(selectScenarios(['orphan-lun-reuse', 'round-trip-nvme-2path'], FIXTURE_SETS))).toEqual(['round-trip-nvme-2path', 'orphan-lun-reuse']);
  });

  it('gives a scenario named twice, or by a set and by name, or by two sets, once', () => {
    const got = names(selectScenarios(['round-trip-local', 'backwards', 'round-trip-local', 'overlap', 'orphan-no-udev'], FIXTURE_SETS));
    expect(got).toEqual(['round-trip-iscsi-1path', 'round-trip-local', 'shared-target-nvme', 'live-migration-nvme', 'orphan-no-udev']);
  });

  it('splits comma-separated lists, trimming blanks and skipping empty pieces', () => {
    const got = names(selectScenarios(['orphan-lun-reuse, round-trip-nvme-2path,,', ' overlap ,shared-target-iscsi'], FIXTURE_SETS));
    expect(got).toEqual(['round-trip-nvme-2path', 'round-trip-local', 'shared-target-iscsi', 'shared-target-nvme', 'orphan-lun-reuse']);
  });

  it('selects nothing for nothing', () => {
    expect(selectScenarios([], FIXTURE_SETS)).toEqual([]);
    expect(selectScenarios([' , '], FIXTURE_SETS)).toEqual([]);
  });

  it('returns the catalog entries themselves', () => {
    const [s] = selectScenarios(['round-trip-local'], FIXTURE_SETS);
    expect(s).toBe(byName('round-trip-local')[0]);
  });

  it('refuses an unknown name, quoting it, with the sets and scenarios in the hint', async () => {
    const err = await refused(() => selectScenarios(['round-trip-local,round-trip-carrier-pigeon'], FIXTURE_SETS), 'UNKNOWN_SCENARIO');
    expect(err.message).toContain('"round-trip-carrier-pigeon"');
    expect(err.hint).toBeDefined();
    expect(err.hint).toMatch(/sets: backwards, overlap;/);
    for (const n of ALL_NAMES) expect(err.hint).toContain(n);
  });

  it('refuses a name that is a property of every object, as any unknown name', async () => {
    for (const n of ['constructor', 'toString', '__proto__']) {
      const err = await refused(() => selectScenarios([n], FIXTURE_SETS), 'UNKNOWN_SCENARIO');
      expect(err.message).toContain(JSON.stringify(n));
    }
  });

  it('reads lab/scenarios.yaml by default', () => {
    expect(SCENARIO_SETS_FILE).toBe(join(PROJECT_ROOT, 'lab', 'scenarios.yaml'));
    expect(names(selectScenarios(['standard']))).toEqual(ALL_NAMES);
  });
});

describe('scenarioSets', () => {
  it('refuses a set naming no scenario, with the file and the set', async () => {
    const file = setsFile('broken.yaml', 'sets:\n  fine:\n    - round-trip-local\n  broken:\n    - round-trip-local\n    - round-trip-carrier-pigeon\n');
    const err = await refused(() => scenarioSets(file), 'UNKNOWN_SCENARIO');
    expect(err.message).toContain(file);
    expect(err.message).toContain('set broken');
    expect(err.message).toContain('round-trip-carrier-pigeon');
    // Selecting even a good name from that file refuses the same way.
    const again = await refused(() => selectScenarios(['round-trip-local'], file), 'UNKNOWN_SCENARIO');
    expect(again.message).toBe(err.message);
  });

  it.each([
    ['a set written as one string', 'sets:\n  quick: round-trip-local\n', 'set quick must be a non-empty list'],
    ['an empty set', 'sets:\n  quick:\n', 'set quick must be a non-empty list'],
    ['a list of sets', 'sets:\n  - round-trip-local\n', '"sets" must be a mapping'],
  ])('refuses %s', async (_what, text, message) => {
    const err = await refused(() => scenarioSets(setsFile('shape.yaml', text)), 'BAD_SCENARIO_SETS');
    expect(err.message).toContain(message);
  });

  it('reads a file without sets as no sets', () => {
    expect(scenarioSets(setsFile('empty.yaml', '# nothing\n'))).toEqual({});
  });

  describe('on lab/scenarios.yaml', () => {
    const sets = scenarioSets();

    it('has the standard, quick, orphans, field and fc sets', () => {
      expect(Object.keys(sets).sort()).toEqual(['fc', 'field', 'orphans', 'quick', 'standard']);
    });

    it('has every scenario in the standard set, each once', () => {
      expect([...sets.standard!].sort()).toEqual([...ALL_NAMES].sort());
    });

    it('names only scenarios that exist', () => {
      for (const [set, ns] of Object.entries(sets)) {
        for (const n of ns) expect(ALL_NAMES, `set ${set}`).toContain(n);
      }
    });

    it('has one round trip per protocol in quick', () => {
      const quick = selectScenarios(['quick']);
      expect(quick.map((s) => s.kind)).toEqual(['round-trip', 'round-trip', 'round-trip', 'round-trip']);
      const protocols = quick.map((s) => /^round-trip-(iscsi|nvme|fc|local)(?:-|$)/.exec(s.name)?.[1]);
      expect(protocols.sort()).toEqual(['fc', 'iscsi', 'local', 'nvme']);
    });

    it("has domain.md's orphan pairs in orphans and the field's in field: every pair in one of the two", () => {
      // domain.md's sequences over iSCSI and NVMe, and their FC counterparts.
      expect(names(selectScenarios(['orphans']))).toEqual(names([...ORPHAN_PAIRS, ...FC_PAIRS]));
      expect(names(selectScenarios(['field']))).toEqual(names(FIELD_PAIRS));
      expect(names(selectScenarios(['orphans', 'field']))).toEqual(names(ALL_SCENARIOS.filter((s) => s.kind === 'orphan-pair')));
      expect(FIELD_PAIRS.every((s) => s.name.startsWith('field-') && s.refs.some((r) => /^https:\/\//.test(r)))).toBe(true);
    });
  });
});

type NodeDoc = Partial<NodeSpec> & { name: string; role: NodeSpec['role'] };
const PATH_A = { name: 'path-a', subnet: '10.10.1.0/24' };
const PATH_B = { name: 'path-b', subnet: '10.10.2.0/24' };

function topology(nodes: NodeDoc[], networks = [PATH_A, PATH_B]): Topology {
  return parseTopology(renderTopology({ name: 'needs', networks, nodes }), 'needs.yaml');
}

const TARGET: NodeDoc = { name: 'target-1', role: 'target' };
const C1: NodeDoc = { name: 'compute-1', role: 'compute' };
const C2: NodeDoc = { name: 'compute-2', role: 'compute' };

/** The problem lines of a TOPOLOGY_LACKS refusal (after its first line). */
async function lacks(topo: Topology, scenarios = ALL_SCENARIOS): Promise<string[]> {
  const err = await refused(() => checkNeeds(topo, scenarios), 'TOPOLOGY_LACKS');
  const [first, ...rest] = err.message.split('\n');
  expect(first).toBe('the topology cannot run the chosen scenarios:');
  for (const l of rest) expect(l.startsWith('  ')).toBe(true);
  return rest.map((l) => l.trim());
}

const twoNets = (n: string): string => `${n} needs 2 data networks shared by the target and the computes; the topology has 1`;
const twoComputes = (n: string): string => `${n} needs 2 compute nodes; the topology has 1`;
const TWO_PATH = ['round-trip-iscsi-2path', 'round-trip-nvme-2path', 'round-trip-fc-2path', 'orphan-nvme-namespace-gone', 'orphan-multipath-path-fails', 'field-primary-portal-only', 'field-held-open', 'field-left-suspended', 'field-partition-maps'];
const MIGRATION = ['live-migration-iscsi', 'live-migration-nvme', 'live-migration-fc'];

describe('checkNeeds', () => {
  it('the scenarios needing two networks or two computes are the ones these tests expect', () => {
    expect(names(ALL_SCENARIOS.filter((s) => s.needs.dataNetworks > 1))).toEqual(TWO_PATH);
    expect(names(ALL_SCENARIOS.filter((s) => s.needs.computes > 1))).toEqual(MIGRATION);
  });

  it('accepts every scenario on lab/default.yaml', async () => {
    const topo = await loadTopology(join(PROJECT_ROOT, 'lab', 'default.yaml'));
    expect(() => checkNeeds(topo, ALL_SCENARIOS)).not.toThrow();
  });

  it('refuses live migration on one compute node, and nothing else', async () => {
    const topo = topology([TARGET, C1]);
    expect(await lacks(topo)).toEqual(MIGRATION.map(twoComputes));
    expect(() => checkNeeds(topo, ALL_SCENARIOS.filter((s) => !MIGRATION.includes(s.name)))).not.toThrow();
  });

  it('refuses the two-path scenarios on one data network, and nothing else', async () => {
    const topo = topology([TARGET, C1, C2], [PATH_A]);
    expect(await lacks(topo)).toEqual(TWO_PATH.map(twoNets));
    expect(() => checkNeeds(topo, ALL_SCENARIOS.filter((s) => !TWO_PATH.includes(s.name)))).not.toThrow();
  });

  it('counts only the networks the compute shares with the target', async () => {
    const computeOnA = topology([TARGET, { ...C1, networks: ['path-a'] }, C2]);
    expect(computeOnA.nodes[0]!.networks).toEqual(['path-a', 'path-b']);
    expect(await lacks(computeOnA, byName(...TWO_PATH))).toEqual(TWO_PATH.map(twoNets));

    const targetOnB = topology([{ ...TARGET, networks: ['path-b'] }, C1, C2]);
    expect(await lacks(targetOnB, byName('round-trip-nvme-2path'))).toEqual([twoNets('round-trip-nvme-2path')]);
  });

  it('counts for a two-compute scenario only the networks both computes share with the target', async () => {
    const split = topology([TARGET, { ...C1, networks: ['path-a'] }, { ...C2, networks: ['path-b'] }]);
    const zero = (n: string): string => `${n} needs 1 data network shared by the target and the computes; the topology has 0`;
    expect(await lacks(split, byName(...MIGRATION))).toEqual(MIGRATION.map(zero));
    // A one-compute scenario runs on the first compute, which is on path-a.
    expect(() => checkNeeds(split, byName('round-trip-iscsi-1path', 'live-migration-iscsi').slice(0, 1))).not.toThrow();
  });

  it('lists every problem in one error, with a hint', async () => {
    const topo = topology([TARGET, C1], [PATH_A]);
    const err = await refused(() => checkNeeds(topo, ALL_SCENARIOS), 'TOPOLOGY_LACKS');
    expect(err.hint).toContain('lab/default.yaml');
    expect((await lacks(topo)).sort()).toEqual([...TWO_PATH.map(twoNets), ...MIGRATION.map(twoComputes)].sort());
  });

  it('refuses a topology without a target', async () => {
    const topo = topology([C1, C2]);
    expect(await lacks(topo, byName('round-trip-local'))).toContain('every scenario needs a target node, and the topology has none');
  });

  it('has nothing to refuse when no scenario is chosen', () => {
    expect(() => checkNeeds(topology([C1]), [])).not.toThrow();
  });
});

// A suite report built by hand: one clean round trip, one orphan pair whose faulty half left two
// orphans (with text that needs escaping in XML and Markdown) and whose correct half was clean.
const EVIDENCE_SCSI = '/sys/class/scsi_device/2:0:0:0 (LUN 0 of iqn.2003-01.org.linux-iscsi:<t1>, vendor "LIO-ORG" & model \'vol\')';
const EVIDENCE_BLOCK = '/sys/block/sdb (held by dm-0 <mpatha> & "stale")';
const FAILURE = 'faulty half: the oracle named 2 orphans <scsi-device, block-device> & expected "1"\nsecond line of the failure';
const PROBLEM = 'compute-1 not clean after the scenario: multipath map mpatha | by-path link ip-10.10.1.10:3260-iscsi-x-lun-0';

const PASSED: ScenarioResult = {
  name: 'round-trip-iscsi-1path',
  title: 'iSCSI over 1 path: attach, paths, signature, detach, nothing left',
  kind: 'round-trip',
  refs: ['design.md: What "no orphans" means'],
  status: 'passed',
  durationMs: 12_345,
  failure: null,
  problems: [],
  steps: ['create vol', 'connect vol on compute-1'],
  rows: [
    {
      node: 'compute-1',
      volume: 'vol',
      protocol: 'iscsi',
      phase: 'run',
      device: '/dev/sda',
      paths: ['/dev/disk/by-path/ip-10.10.1.10:3260-iscsi-iqn.2003-01.org.linux-iscsi:vol-lun-0'],
      left: [],
      kept: [],
      hostWide: null,
      expected: 'clean',
    },
  ],
  hostWide: [{ node: 'compute-1', orphans: [], collateral: [] }],
  evidenceDir: null,
};

const FAILED: ScenarioResult = {
  name: 'orphan-flush-failure',
  title: 'A flush that fails during detach',
  kind: 'orphan-pair',
  refs: ['domain.md'],
  status: 'failed',
  durationMs: 45_600,
  failure: FAILURE,
  problems: [PROBLEM],
  steps: ['faulty: detach without flush', 'bell \u0007 in a step'],
  rows: [
    {
      node: 'compute-1',
      volume: 'faulty',
      protocol: 'iscsi',
      phase: 'faulty',
      device: '/dev/sdb',
      paths: ['/dev/disk/by-path/ip-10.10.1.10:3260-iscsi-iqn.2003-01.org.x:faulty-lun-0'],
      left: [
        { kind: 'scsi-device', id: '2:0:0:0', evidence: EVIDENCE_SCSI },
        { kind: 'block-device', id: 'sdb', evidence: EVIDENCE_BLOCK },
      ],
      kept: [],
      hostWide: null,
      // Not what context.ts writes (kinds joined by ", "), but a '|' to escape in a Markdown cell.
      expected: 'scsi-device | block-device',
    },
    { node: 'compute-1', volume: 'correct', protocol: 'iscsi', phase: 'correct', device: '/dev/sdc', paths: [], left: [], kept: [], hostWide: null, expected: 'clean' },
  ],
  hostWide: [],
  evidenceDir: '/results/run/evidence/orphan-flush-failure',
};

const REPORT: SuiteReport = {
  lab: 'unit',
  accel: 'kvm',
  kernel: '6.8.0-test',
  startedAt: '2024-05-01T10:00:00.000Z',
  durationMs: 61_000,
  scenarios: [PASSED, FAILED],
  passed: 1,
  failed: 1,
};

const ALL_PASSED: SuiteReport = { ...REPORT, scenarios: [PASSED], passed: 1, failed: 0, durationMs: 13_000 };

describe('renderTable', () => {
  const text = renderTable(REPORT);
  const lines = text.split('\n');

  it('opens with the lab, accelerator, kernel and scenario count', () => {
    expect(lines[0]).toBe('lab unit (KVM, kernel 6.8.0-test): 2 scenarios in 61.0 s');
  });

  it('names each node\'s guest, kernel and os-brick when the report has them (table and summary)', () => {
    const nodes = [
      { name: 'target-1', role: 'target', guest: 'trixie', kernel: '6.12.117+deb13-amd64', osBrick: '6.11.0-2' },
      { name: 'compute-1', role: 'compute', guest: 'bookworm', kernel: '6.1.0-56-amd64', osBrick: null },
    ];
    const mixed = renderTable({ ...REPORT, nodes }).split('\n');
    expect(mixed[1]).toBe('nodes: target-1 trixie 6.12.117+deb13-amd64 os-brick 6.11.0-2, compute-1 bookworm 6.1.0-56-amd64 os-brick ?');
    expect(renderMarkdown({ ...REPORT, nodes })).toContain('Nodes: target-1 trixie 6.12.117+deb13-amd64 os-brick 6.11.0-2, compute-1 bookworm 6.1.0-56-amd64 os-brick ?.');
    expect(lines[1]).not.toMatch(/^nodes:/);
  });

  it('gives each scenario a PASS or FAIL line with its time', () => {
    expect(lines).toContain('PASS  round-trip-iscsi-1path  (12.3 s)');
    expect(lines).toContain('FAIL  orphan-flush-failure  (45.6 s)');
    expect(lines.filter((l) => /^(PASS|FAIL) /.test(l))).toHaveLength(2);
  });

  it('has the column header above each scenario\'s rows', () => {
    const heads = lines.filter((l) => /^ +NODE +VOLUME +PHASE +DEVICE +PATHS +LEFT +EXPECTED$/.test(l));
    expect(heads).toHaveLength(2);
  });

  it('shows per row the device, the path names, what was left and what was expected', () => {
    const faulty = lines.find((l) => /^ +compute-1 +faulty /.test(l));
    expect(faulty).toMatch(/ \/dev\/sdb +ip-10\.10\.1\.10:3260-iscsi-iqn\.2003-01\.org\.x:faulty-lun-0 +scsi-device, block-device +scsi-device \| block-device$/);
    const correct = lines.find((l) => /^ +compute-1 +correct /.test(l));
    expect(correct).toMatch(/ \/dev\/sdc +- +nothing +clean$/);
  });

  it('cuts a cell longer than 60 characters with an ellipsis', () => {
    const run = lines.find((l) => /^ +compute-1 +vol /.test(l));
    expect(run).toMatch(/ \/dev\/sda +ip-10\.10\.1\.10:3260-iscsi-iqn\.2003-01\.org\.linux-iscsi:vol-lu… +nothing +clean$/);
  });

  it('counts orphans of one kind in LEFT', () => {
    const row = { ...FAILED.rows[0]!, left: [...FAILED.rows[0]!.left, { kind: 'scsi-device' as const, id: '3:0:0:0', evidence: '/sys/class/scsi_device/3:0:0:0' }] };
    const t = renderTable({ ...REPORT, scenarios: [{ ...FAILED, rows: [row] }] }).split('\n');
    expect(t.find((l) => /^ +compute-1 +faulty /.test(l))).toMatch(/ 2 scsi-device, block-device +scsi-device \| block-device$/);
    expect(t.filter((l) => l.includes('evidence ('))).toHaveLength(3);
  });

  it('prints what was kept, the host-wide findings and the collateral of a verdict, and the host-wide view at the end', () => {
    const o = (kind: 'iscsi-session' | 'holder' | 'block-device', id: string, evidence: string) => ({ kind, id, evidence });
    const row = {
      ...FAILED.rows[0]!,
      kept: [o('iscsi-session', 'session3', '/sys/class/iscsi_session/session3 (...): kept: it carries LUN 1 (WWID 3600140511, sdc), which no volume named as attached')],
      hostWide: { baselineTakenAt: 't0', orphans: [o('holder', 'brick-lin', 'stale reference: dm-2 (name brick-lin)')], collateral: [o('block-device', 'sdc', 'existed at the baseline of t0, was no detached volume\'s, and is gone: /sys/block/sdc (8:32)')] },
    };
    const end = [{ node: 'compute-2', orphans: [], collateral: [o('block-device', 'sdd', 'gone')] }];
    const t = renderTable({ ...REPORT, scenarios: [{ ...FAILED, rows: [row], hostWide: end }] }).split('\n');
    expect(t).toContain('      kept (compute-1, faulty): iscsi-session session3: /sys/class/iscsi_session/session3 (...): kept: it carries LUN 1 (WWID 3600140511, sdc), which no volume named as attached');
    expect(t).toContain('      host-wide (compute-1, faulty): holder brick-lin: stale reference: dm-2 (name brick-lin)');
    expect(t).toContain("      collateral (compute-1, faulty): block-device sdc: existed at the baseline of t0, was no detached volume's, and is gone: /sys/block/sdc (8:32)");
    expect(t).toContain('      collateral (compute-2, end of scenario): block-device sdd: gone');
    const md = renderMarkdown({ ...REPORT, scenarios: [{ ...FAILED, rows: [row], hostWide: end }] });
    expect(md).toContain('host-wide: 1 new, 1 collateral');
    expect(md).toContain('compute-2 at the end, host-wide: nothing new; collateral: block-device');
  });

  it('has one evidence line per orphan', () => {
    const ev = lines.filter((l) => l.includes('evidence ('));
    expect(ev).toEqual([`      evidence (compute-1, faulty): scsi-device 2:0:0:0: ${EVIDENCE_SCSI}`, `      evidence (compute-1, faulty): block-device sdb: ${EVIDENCE_BLOCK}`]);
  });

  it('shows the failure, the problems and where the node evidence is', () => {
    expect(text).toContain(`      failure: ${FAILURE}\n`);
    expect(lines).toContain(`      problem: ${PROBLEM}`);
    expect(lines).toContain('      node evidence: /results/run/evidence/orphan-flush-failure');
    expect(lines.filter((l) => /^ +(failure|problem|node evidence):/.test(l))).toHaveLength(3);
  });

  it('ends with the count', () => {
    expect(text.endsWith('\n1 passed, 1 failed\n')).toBe(true);
  });
});

interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  text: string;
  parent: XmlElement | null;
}

const ENTITIES: Record<string, string> = { lt: '<', gt: '>', amp: '&', apos: "'", quot: '"' };
const unescape = (s: string): string => s.replace(/&(lt|gt|amp|apos|quot);/g, (_, e: string) => ENTITIES[e]!);
const ESCAPED = '(?:[^<>&"]|&(?:lt|gt|amp|apos|quot);)*';

/**
 * A small XML reader, strict enough for what renderJunit writes: the declaration, then elements
 * with double-quoted attributes, text with only the five entities, no comments or CDATA. Throws
 * on anything not well-formed; returns the elements in document order.
 */
function readXml(doc: string): XmlElement[] {
  const decl = '<?xml version="1.0" encoding="UTF-8"?>\n';
  if (!doc.startsWith(decl)) throw new Error('no XML declaration');
  const tag = new RegExp(`<(/?)([A-Za-z_][\\w.-]*)((?:\\s+[A-Za-z_][\\w.:-]*="${ESCAPED}")*)\\s*(/?)>`, 'y');
  const text = new RegExp(`${ESCAPED.replace('"', '')}`, 'y');
  const out: XmlElement[] = [];
  const stack: XmlElement[] = [];
  let roots = 0;
  let pos = decl.length;
  while (pos < doc.length) {
    if (doc[pos] === '<') {
      tag.lastIndex = pos;
      const m = tag.exec(doc);
      if (!m) throw new Error(`not well-formed at ${pos}: ${doc.slice(pos, pos + 40)}`);
      pos = tag.lastIndex;
      const [, closing, name, attrText, selfClosing] = m;
      if (closing) {
        if (attrText || selfClosing) throw new Error(`bad closing tag ${m[0]}`);
        const open = stack.pop();
        if (open?.name !== name) throw new Error(`</${name}> closes ${open ? `<${open.name}>` : 'nothing'}`);
        continue;
      }
      const attrs: Record<string, string> = {};
      for (const a of attrText!.matchAll(/([\w.:-]+)="([^"]*)"/g)) {
        if (a[1]! in attrs) throw new Error(`attribute ${a[1]} twice`);
        attrs[a[1]!] = unescape(a[2]!);
      }
      const parent = stack.at(-1) ?? null;
      if (!parent && roots++ > 0) throw new Error('more than one root element');
      const el: XmlElement = { name: name!, attrs, text: '', parent };
      out.push(el);
      if (!selfClosing) stack.push(el);
    } else {
      text.lastIndex = pos;
      const m = text.exec(doc)!;
      if (text.lastIndex === pos) throw new Error(`not well-formed at ${pos}: ${doc.slice(pos, pos + 40)}`);
      pos = text.lastIndex;
      const top = stack.at(-1);
      if (top) top.text += unescape(m[0]);
      else if (m[0].trim()) throw new Error('text outside the root element');
    }
  }
  if (stack.length > 0) throw new Error(`<${stack.at(-1)!.name}> not closed`);
  return out;
}

describe('readXml (the test\'s own checker)', () => {
  it('refuses what is not well-formed', () => {
    const d = '<?xml version="1.0" encoding="UTF-8"?>\n';
    expect(() => readXml(`${d}<a><b></a></b>`)).toThrow();
    expect(() => readXml(`${d}<a x="1 < 2"></a>`)).toThrow();
    expect(() => readXml(`${d}<a>1 < 2</a>`)).toThrow();
    expect(() => readXml(`${d}<a>R&D</a>`)).toThrow();
    expect(() => readXml(`${d}<a>`)).toThrow();
    expect(() => readXml(`${d}<a/><b/>`)).toThrow();
    expect(readXml(`${d}<a x="&lt;&quot;"><b/>1 &amp; 2</a>`).map((e) => [e.name, e.attrs, e.text])).toEqual([
      ['a', { x: '<"' }, '1 & 2'],
      ['b', {}, ''],
    ]);
  });
});

describe('renderJunit', () => {
  const doc = renderJunit(REPORT);
  // Read in each test (not while collecting), so that XML that is not well-formed fails tests.
  const read = () => {
    const els = readXml(doc);
    return { els, suite: els[0]!, cases: els.filter((e) => e.name === 'testcase'), failures: els.filter((e) => e.name === 'failure') };
  };

  it('is well-formed', () => {
    expect(() => readXml(doc)).not.toThrow();
  });

  it('is one testsuite with the counts', () => {
    const { suite } = read();
    expect(suite.name).toBe('testsuite');
    expect(suite.parent).toBeNull();
    expect(suite.attrs).toMatchObject({ name: 'brick-lab scenarios (unit)', tests: '2', failures: '1', errors: '0', time: '61.000', timestamp: REPORT.startedAt });
  });

  it('has a testcase per scenario, named and classed by kind', () => {
    const { suite, cases } = read();
    expect(cases.map((c) => [c.parent, c.attrs])).toEqual([
      [suite, { classname: 'brick-lab.round-trip', name: 'round-trip-iscsi-1path', time: '12.345' }],
      [suite, { classname: 'brick-lab.orphan-pair', name: 'orphan-flush-failure', time: '45.600' }],
    ]);
  });

  it('has exactly one failure, in the failed scenario, with the first line as its message', () => {
    const { cases, failures } = read();
    expect(failures).toHaveLength(1);
    expect(failures[0]!.parent).toBe(cases[1]);
    expect(failures[0]!.attrs).toEqual({ message: FAILURE.split('\n')[0] });
    expect(failures[0]!.text).toBe(`${FAILURE}\n${PROBLEM}`);
  });

  it('puts the steps and the orphans with their evidence in system-out', () => {
    const { els, cases } = read();
    const outs = els.filter((e) => e.name === 'system-out');
    expect(outs.map((o) => o.parent)).toEqual(cases);
    expect(outs[0]!.text).toBe('create vol\nconnect vol on compute-1');
    expect(outs[1]!.text).toBe(
      ['faulty: detach without flush', 'bell  in a step', `evidence (compute-1, faulty): scsi-device 2:0:0:0: ${EVIDENCE_SCSI}`, `evidence (compute-1, faulty): block-device sdb: ${EVIDENCE_BLOCK}`].join('\n'),
    );
  });

  it('escapes <, >, &, quotes and drops control characters', () => {
    expect(doc).toContain('iqn.2003-01.org.linux-iscsi:&lt;t1&gt;, vendor &quot;LIO-ORG&quot; &amp; model &apos;vol&apos;');
    expect(doc).toContain('message="faulty half: the oracle named 2 orphans &lt;scsi-device, block-device&gt; &amp; expected &quot;1&quot;"');
    expect(doc).not.toContain('<t1>');
    expect(doc).not.toContain('<mpatha>');
    expect(doc).not.toMatch(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/);
  });

  it('writes a passing suite without failure elements', () => {
    const ok = readXml(renderJunit(ALL_PASSED));
    expect(ok[0]!.attrs).toMatchObject({ tests: '1', failures: '0' });
    expect(ok.filter((e) => e.name === 'failure')).toEqual([]);
  });
});

describe('renderMarkdown', () => {
  const text = renderMarkdown(REPORT);
  const lines = text.split('\n');
  const rows = lines.filter((l) => /^\| (✅|❌) \|/.test(l));

  it('heads a failing run with the count of failed scenarios, a passing one with "no orphans"', () => {
    expect(text.startsWith('## brick-lab: 1 scenario failed\n')).toBe(true);
    expect(renderMarkdown({ ...REPORT, scenarios: [FAILED, { ...FAILED, name: 'orphan-no-udev' }], passed: 0, failed: 2 }).startsWith('## brick-lab: 2 scenarios failed\n')).toBe(true);
    expect(renderMarkdown(ALL_PASSED).startsWith('## brick-lab: no orphans\n')).toBe(true);
  });

  it('says where and how long', () => {
    expect(lines).toContain('Lab `unit`, KVM, guest kernel 6.8.0-test; 1 passed, 1 failed in 61.0 s.');
  });

  it('has a table row per scenario with its mark', () => {
    expect(lines).toContain('|---|---|---|---|');
    expect(rows).toHaveLength(2);
    expect(rows[0]).toBe('| ✅ | `round-trip-iscsi-1path` | 12.3 s | compute-1 vol (run): clean |');
    expect(rows[1]!.startsWith('| ❌ | `orphan-flush-failure` | 45.6 s | ')).toBe(true);
  });

  it("escapes '|' in cell text, so that every row keeps four cells", () => {
    expect(rows[1]).toBe('| ❌ | `orphan-flush-failure` | 45.6 s | compute-1 faulty (faulty): scsi-device, block-device (expected scsi-device \\| block-device)<br>compute-1 correct (correct): clean |');
    for (const r of rows) expect(r.split(/(?<!\\)\|/)).toHaveLength(6);
  });

  it('lists the failures with their problems under "### Failures", on one line each', () => {
    const at = lines.indexOf('### Failures');
    expect(at).toBeGreaterThan(lines.indexOf(rows[1]!));
    expect(lines.slice(at + 1).filter(Boolean)).toEqual([
      // Markdown cells and lines escape <, > and & (GitHub would swallow them as HTML) and |.
      `**orphan-flush-failure**: ${FAILURE.replace('\n', ' ').replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')}`,
      `- ${PROBLEM.replace('|', '\\|')}`,
      '- node evidence in `/results/run/evidence/orphan-flush-failure`',
    ]);
    expect(renderMarkdown(ALL_PASSED)).not.toContain('### Failures');
  });
});

describe('writeReport', () => {
  it('writes report.json, junit.xml and summary.md, creating the directory', async () => {
    const dir = join(tmp, 'results', 'run');
    const files = await writeReport(REPORT, dir);
    expect(files).toEqual(['report.json', 'junit.xml', 'summary.md'].map((f) => join(dir, f)));
    expect(JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8'))).toEqual(REPORT);
    expect(readFileSync(join(dir, 'junit.xml'), 'utf8')).toBe(renderJunit(REPORT));
    expect(readFileSync(join(dir, 'summary.md'), 'utf8')).toBe(renderMarkdown(REPORT));
  });
});

describe('volumeName and sharedNetworks', () => {
  it('keeps scenario volume names within the target\'s 40 characters, readable', () => {
    expect(volumeName('round-trip-local', 'vol')).toBe('round-trip-local-vol');
    const long = volumeName('orphan-rescan-during-detach', 'correct-third');
    expect(long).toBe('orp-res-dur-det-correct-third');
    for (const s of ALL_SCENARIOS) for (const suffix of ['correct-anchor', 'faulty-gone', 'vol']) expect(volumeName(s.name, suffix).length).toBeLessThanOrEqual(40);
  });

  it('lists the networks the target and the first N computes share, in topology order', async () => {
    const topo = await loadTopology(join(PROJECT_ROOT, 'lab', 'default.yaml'));
    expect(sharedNetworks(topo, 2)).toEqual(['path-a', 'path-b']);
    const split = parseTopology(renderTopology({ name: 'split', nodes: [{ name: 't', role: 'target' }, { name: 'c1', role: 'compute', networks: ['path-b'] }, { name: 'c2', role: 'compute', networks: ['path-a'] }] }), 'split');
    expect(sharedNetworks(split, 1)).toEqual(['path-b']);
    expect(sharedNetworks(split, 2)).toEqual([]);
  });
});

describe('listScenarios', () => {
  const text = listScenarios();
  const lines = text.split('\n');

  it('names every scenario once, at the start of a line, with its kind and needs, its title below', () => {
    for (const s of ALL_SCENARIOS) {
      const at = lines.flatMap((l, i) => (l.split(/\s+/)[0] === s.name ? [i] : []));
      expect(at, s.name).toHaveLength(1);
      const alone = s.needs.wholeLab ? ', runs alone with --jobs' : s.needs.computes > 1 ? `, runs alone with --jobs on a lab of ${s.needs.computes} computes` : '';
      expect(lines[at[0]!]!.split(/\s+/).slice(1).join(' ')).toBe(`${s.kind} computes ${s.needs.computes}, data networks ${s.needs.dataNetworks}${alone}`);
      expect(lines[at[0]! + 1]!.trim()).toBe(s.title);
      if (s.refs.length > 0) expect(lines[at[0]! + 2]!.trim()).toBe(`see: ${s.refs.join('; ')}`);
    }
  });

  it('says which run alone beside others: the target offline, iscsid logging in by itself; two computes only where the lab has no third', () => {
    const first = (l: string): string => l.split(/\s+/)[0]!;
    expect(lines.filter((l) => l.endsWith(', runs alone with --jobs')).map(first).sort()).toEqual(['field-host-cut-off', 'field-nvme-target-offline', 'field-reboot-autologin']);
    expect(lines.filter((l) => l.endsWith(', runs alone with --jobs on a lab of 2 computes')).map(first).sort()).toEqual(['live-migration-fc', 'live-migration-iscsi', 'live-migration-nvme']);
  });

  it('has nothing else', () => {
    expect(lines.filter((l) => l !== '' && !l.startsWith(' '))).toHaveLength(ALL_SCENARIOS.length);
    expect(lines.filter(Boolean)).toHaveLength(ALL_SCENARIOS.reduce((n, s) => n + (s.refs.length > 0 ? 3 : 2), 0));
  });
});
