// Owns the requests of one worker that have a deadline, checked by the worker's coarse tick. A
// list threaded through the requests themselves: watching and unwatching, several times per
// request, only relink two neighbours (no hashing, no allocation), and a finished request is let
// go at once.

export interface Expiring {
  deadline: number;
  onDeadline(): void;
  /** Neighbours in the watch list; both null while not watched. */
  watchPrev: Expiring | null;
  watchNext: Expiring | null;
}

export class Deadlines {
  /** The list's sentinel: its next is the oldest watched, its prev the newest. */
  private readonly head: Expiring = { deadline: Infinity, onDeadline: () => {}, watchPrev: null, watchNext: null };

  constructor() {
    this.head.watchPrev = this.head;
    this.head.watchNext = this.head;
  }

  /** Watch `e` until its `deadline` (already set); a watched one keeps its place. */
  watch(e: Expiring): void {
    if (e.watchPrev !== null) return;
    const last = this.head.watchPrev!;
    e.watchPrev = last;
    e.watchNext = this.head;
    last.watchNext = e;
    this.head.watchPrev = e;
  }

  unwatch(e: Expiring): void {
    const prev = e.watchPrev;
    if (prev === null) return;
    const next = e.watchNext!;
    prev.watchNext = next;
    next.watchPrev = prev;
    e.watchPrev = null;
    e.watchNext = null;
  }

  /** Unwatch every request whose deadline is at or before `now`, and tell it, oldest first. */
  expire(now: number): void {
    const head = this.head;
    let e = head.watchNext!;
    while (e !== head) {
      const next = e.watchNext!;
      if (e.deadline > now) {
        e = next;
        continue;
      }
      this.unwatch(e);
      e.onDeadline();
      // onDeadline may have unwatched the next one too: start over (the rest are not due)
      e = next.watchPrev === null ? head.watchNext! : next;
    }
  }
}
