// One teardown for tests that start loads, corelb, backend processes and in-process origins: each
// is SIGKILLed or stopped, whatever a failed test left behind.
import { stopAllCorelb } from './corelb.js';
import { stopAllLoads } from './load.js';
import { stopAllOriginProcesses } from './origin-process.js';
import { closeAllOrigins } from './origins.js';

export async function stopEverything(): Promise<void> {
  stopAllLoads();
  await stopAllCorelb();
  await stopAllOriginProcesses();
  await closeAllOrigins();
}
