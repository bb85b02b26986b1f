// Owns the answers of the admin health endpoints, for probes that need no token (they reveal
// nothing but "up" and the names of pools without a backend): /healthz, the process answers;
// /readyz, the data plane serves and every pool has a backend it may pick now.

import type { AdminActions } from './actions.js';

export interface Readiness {
  readonly ready: boolean;
  /** False while the workers are not all serving (starting, stopping, or one has died). */
  readonly serving: boolean;
  /** Pools without a backend that is up or ramping up (every one down, draining or ejected). */
  readonly poolsWithoutBackend: readonly string[];
}

export function readiness(proxy: AdminActions): Readiness {
  const serving = proxy.serving;
  const poolsWithoutBackend = proxy.config.pools.filter((_, k) => !proxy.poolHasAvailable(k)).map((p) => p.name);
  return { ready: serving && poolsWithoutBackend.length === 0, serving, poolsWithoutBackend };
}

/** The plain-text body of a /readyz answer: `ready`, or what is missing, one reason a line. */
export function readinessText(r: Readiness): string {
  if (r.ready) return 'ready\n';
  const why: string[] = [];
  if (!r.serving) why.push('not ready: the data plane is not serving');
  for (const p of r.poolsWithoutBackend) why.push(`not ready: pool ${p} has no available backend`);
  return why.join('\n') + '\n';
}
