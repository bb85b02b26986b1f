// Owns admission when every backend of a pool is at max_connections_per_backend: the requests
// waiting for a free in-flight slot, per pool, served oldest first as slots free up (in this
// worker, or seen on the tick when another worker freed them).

/** A request waiting for a free in-flight slot. */
export interface Waiter {
  /** Try to pick again; false when still nothing is free (it stays first in the queue). */
  retryPick(): boolean;
  /** False once it was answered or the client left: the queue drops it. */
  readonly waiting: boolean;
}

export class WaitQueues {
  private readonly queues: Waiter[][];
  private queued = 0;

  constructor(pools: number) {
    this.queues = Array.from({ length: pools }, () => []);
  }

  get hasWaiters(): boolean {
    return this.queued > 0;
  }

  enqueue(pool: number, w: Waiter): void {
    this.queues[pool]!.push(w);
    this.queued++;
  }

  /** Hand free slots to waiting requests, oldest first; returns true while any still wait. */
  serve(): boolean {
    if (this.queued === 0) return false;
    for (const q of this.queues) {
      while (q.length > 0) {
        const w = q[0]!;
        if (w.waiting && !w.retryPick()) break;
        q.shift();
        this.queued--;
      }
    }
    return this.queued > 0;
  }
}
