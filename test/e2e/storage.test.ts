import { afterAll, beforeAll } from 'vitest';
import { bringUpStorageLab, takeDownStorageLab } from './storage-lab.js';
// The target side first (it starts from an empty target), then the connectors and the oracle.
import './targets-cases.js';
import './connectors-cases.js';

/** The target and connector cases on one lab (storage-lab.ts): one boot for both. */
beforeAll(bringUpStorageLab);
afterAll(takeDownStorageLab);
