import { ALL_SCENARIOS } from '../../src/scenarios/runner.js';
import { describeScenarios } from './scenario-suite.js';

// Round trips per protocol and path count, shared targets, live migration: two computes.
describeScenarios('attach', 'e2e-scen-a', ALL_SCENARIOS.filter((s) => s.kind !== 'orphan-pair'), 2);
