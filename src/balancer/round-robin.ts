// Owns `round-robin`: smooth weighted round-robin (nginx's interleaving), global across workers.
// The primary writes each pool's interleaved table once; every worker advances one shared
// cursor over it with Atomics.add, so over any whole cycle the counts match the weights exactly.

import type { SharedState } from '../shared/layout.js';
import { NONE, type Balancer, type BackendIndex, type PickContext } from './types.js';

export class RoundRobin implements Balancer {
  private readonly state: SharedState;
  private readonly pool: number;
  private readonly length: number;

  constructor(state: SharedState, pool: number) {
    this.state = state;
    this.pool = pool;
    this.length = state.scheduleLength(pool);
  }

  pick(ctx: PickContext): BackendIndex {
    const { state, pool, length } = this;
    // Each try consumes a position, so a down or full backend's turns are spread over the
    // others in weight order instead of all falling on its successor.
    let fallback = NONE;
    for (let tries = 0; tries < length; tries++) {
      const i = state.scheduleAt(pool, state.nextCursor(pool) % length);
      if (!state.available(i)) continue;
      if (i === ctx.avoid) {
        fallback = i;
        continue;
      }
      if (state.tryAcquireInflight(i, ctx.maxInflight)) return i;
    }
    if (fallback !== NONE && state.tryAcquireInflight(fallback, ctx.maxInflight)) return fallback;
    return NONE;
  }
}
