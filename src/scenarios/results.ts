/** What a run of scenarios reports: per scenario its verdict and findings, and the suite's. */
import type { Orphan } from '../agent/api/types.js';
import type { Scenario } from './catalog.js';
import type { ReportRow } from './context.js';

export interface ScenarioResult {
  name: string;
  title: string;
  kind: Scenario['kind'];
  refs: string[];
  status: 'passed' | 'failed';
  durationMs: number;
  /** The first thing that went wrong, if anything. */
  failure: string | null;
  /** Problems found after the scenario: what it did not clean up, kernel warnings. */
  problems: string[];
  steps: string[];
  rows: ReportRow[];
  /**
   * Per compute node, the host-wide view at the end against its snapshot from before the
   * scenario: what appeared and stayed, what existed before and went. Either fails the scenario.
   */
  hostWide: Array<{ node: string; orphans: Orphan[]; collateral: Orphan[] }>;
  evidenceDir: string | null;
}

export interface SuiteReport {
  lab: string;
  /**
   * running: the run is under way (report.json is rewritten as each scenario ends); finished; or
   * interrupted: the run's process ended without finishing (killed), found by the next run on the
   * lab or by `down`. Reports from before this field are finished ones.
   */
  state?: 'running' | 'finished' | 'interrupted';
  /** The process that ran it. */
  pid?: number;
  /** While running, the scenario under way; when interrupted, the one that was. */
  current?: string | null;
  interrupted?: { detectedAt: string; by: string };
  /** What was judged, when not brick-lab's own connectors (brick-lab validate). */
  subject?: string;
  accel: string;
  /** The first compute's kernel. */
  kernel: string;
  /** Each node's guest, kernel and os-brick (absent in reports from before guests). */
  nodes?: NodeVersions[];
  startedAt: string;
  durationMs: number;
  scenarios: ScenarioResult[];
  passed: number;
  failed: number;
}

/** What a node runs, as its agent says: its guest, kernel and os-brick. */
export interface NodeVersions {
  name: string;
  role: string;
  guest: string;
  kernel: string | null;
  osBrick: string | null;
}
