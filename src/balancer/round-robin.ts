// Owns `round-robin`: smooth weighted round-robin (nginx's interleaving), global across workers.
// The primary writes each pool's interleaved schedule once (schedule.ts); every worker advances
// one shared cursor over it with Atomics.add, so over any whole cycle the counts match the
// weights exactly.
// A backend in slow start takes only the share of its turns that its effective weight allows
// (the others fall to the next positions), so its traffic ramps with the weight the primary sets.

import { BackendState, type SharedState } from '../shared/layout.js';
import { RandomStream } from './random-stream.js';
import { Schedule, SCHEDULE_ONLY } from './schedule.js';
import { NONE, type AlgorithmSpec, type Balancer, type BackendIndex, type PickContext } from './types.js';

export const roundRobin: AlgorithmSpec<'round-robin'> = {
  ...SCHEDULE_ONLY,
  name: 'round-robin',
  create: (state, pool, opts) => new RoundRobin(state, pool, opts.seed),
};

export class RoundRobin implements Balancer {
  private readonly state: SharedState;
  private readonly schedule: Schedule;
  /** Per-worker stream for slow-start thinning, so workers do not thin turns in lock-step. */
  private readonly random: RandomStream;

  constructor(state: SharedState, pool: number, seed: number) {
    this.state = state;
    this.schedule = new Schedule(state, pool);
    this.random = new RandomStream(seed);
  }

  pick(ctx: PickContext): BackendIndex {
    const { state, schedule } = this;
    const length = schedule.length;
    // Each try consumes a position, so a down or full backend's turns are spread over the
    // others in weight order instead of all falling on its successor.
    let fallback = NONE; // the backend to avoid, taken only when nothing else is
    let thinned = NONE; // a slow-starting backend that lost its turn, better than nothing
    for (let tries = 0; tries < length; tries++) {
      const i = schedule.at(schedule.nextCursor() % length);
      const s = state.state(i);
      if (s !== BackendState.Up && s !== BackendState.SlowStart) continue;
      if (i === ctx.avoid) {
        fallback = i;
        continue;
      }
      if (s === BackendState.SlowStart && !this.random.keepsSlowStartTurn(state, i)) {
        thinned = i;
        continue;
      }
      if (state.tryAcquireInflight(i, ctx.maxInflight)) return i;
    }
    if (thinned !== NONE && state.tryAcquireInflight(thinned, ctx.maxInflight)) return thinned;
    if (fallback !== NONE && state.tryAcquireInflight(fallback, ctx.maxInflight)) return fallback;
    return NONE;
  }

  observe(): void {
    // not latency-aware
  }
}
