import { cli, upTargetAndCompute } from './helpers.js';

/**
 * One lab of a target and a compute for the target cases (targets-cases.ts) and the connector
 * and oracle cases (connectors-cases.ts): storage.test.ts brings it up once for both and takes it
 * down after, instead of a lab boot per file. Each case cleans up what it made, so the next one
 * starts from an empty target and a compute that holds nothing.
 */
export const STORAGE_LAB = 'e2e-storage';

type Handles = Awaited<ReturnType<typeof upTargetAndCompute>>;
let handles: Handles | null = null;

export async function bringUpStorageLab(): Promise<void> {
  handles = await upTargetAndCompute(STORAGE_LAB);
}

/** The lab's clients, for a case file's beforeAll. */
export function storageLab(): Handles {
  if (!handles) throw new Error(`lab ${STORAGE_LAB} is not up: run the cases through storage.test.ts`);
  return handles;
}

export async function takeDownStorageLab(): Promise<void> {
  handles = null;
  await cli(['down', '--name', STORAGE_LAB]);
}
