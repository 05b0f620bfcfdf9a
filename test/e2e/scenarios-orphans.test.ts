import { ALL_SCENARIOS } from '../../src/scenarios/runner.js';
import { describeScenarios } from './scenario-suite.js';

// domain.md's orphan-leaving sequences, each as a red/green pair: one compute is enough.
describeScenarios('orphans', 'e2e-scen-o', ALL_SCENARIOS.filter((s) => s.kind === 'orphan-pair'), 1);
