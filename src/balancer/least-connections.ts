// Owns `least-connections`: the backend with the fewest in-flight requests across all workers,
// relative to its weight (inflight / weight). Ties are broken by weighted round-robin, as nginx's
// least_conn does: the scan starts at the backend the pool's weighted schedule names next.

import type { SharedState } from '../shared/layout.js';
import { Schedule, SCHEDULE_ONLY } from './schedule.js';
import { NONE, type AlgorithmSpec, type Balancer, type BackendIndex, type PickContext } from './types.js';

export const leastConnections: AlgorithmSpec<'least-connections'> = {
  ...SCHEDULE_ONLY,
  name: 'least-connections',
  create: (state, pool) => new LeastConnections(state, pool),
};

export class LeastConnections implements Balancer {
  private readonly state: SharedState;
  private readonly schedule: Schedule;
  private readonly first: number;
  private readonly count: number;

  constructor(state: SharedState, pool: number) {
    this.state = state;
    this.schedule = new Schedule(state, pool);
    this.first = state.poolFirstBackend(pool);
    this.count = state.poolBackendCount(pool);
  }

  pick(ctx: PickContext): BackendIndex {
    const { state, schedule, first, count } = this;
    // Another worker may take the chosen backend's last slot between the scan and the acquire:
    // then scan again, a bounded number of times.
    for (let attempt = 0; attempt < 4; attempt++) {
      const start = schedule.at(schedule.nextCursor() % schedule.length) - first;
      let best = NONE;
      let bestLoad = 0;
      let bestWeight = 1;
      for (let k = 0; k < count; k++) {
        const i = first + ((start + k) % count);
        if (!state.available(i) || i === ctx.avoid) continue;
        const load = state.inflight(i);
        if (ctx.maxInflight > 0 && load >= ctx.maxInflight) continue;
        const weight = state.effectiveWeight(i);
        // load / weight < bestLoad / bestWeight, without division
        if (best === NONE || load * bestWeight < bestLoad * weight) {
          best = i;
          bestLoad = load;
          bestWeight = weight;
        }
      }
      if (best === NONE) {
        if (ctx.avoid !== NONE && state.available(ctx.avoid) && state.tryAcquireInflight(ctx.avoid, ctx.maxInflight)) {
          return ctx.avoid;
        }
        return NONE;
      }
      if (state.tryAcquireInflight(best, ctx.maxInflight)) return best;
    }
    return NONE;
  }

  observe(): void {
    // not latency-aware
  }
}
