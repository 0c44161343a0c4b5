/**
 * One unref'd timer for the earliest of a set of deadlines (the ledger's, the pool waits'), whose
 * check runs two loop turns after the timer fires rather than in it.
 *
 * A loop turn runs its timers before its I/O. When the loop was blocked past a deadline (a long
 * synchronous stretch, a starved CPU, a paused process), what arrived meanwhile (a client's abort,
 * a query's reply, a release that serves a waiting checkout) has not been heard yet, and a check run
 * from the timer would judge a state that is already gone: a response stalled that had moved on or
 * closed, a pool exhausted whose waiters were served. The first immediate runs after this turn's
 * I/O; the second after what that I/O set off and finishes a turn later (a socket the client closed
 * is torn down, and closes its response, after this turn's check phase). The immediates are not
 * unref'd: the poll phase of a loop whose only immediates are unref'd blocks until some I/O comes,
 * and an idle process would be checked only then. Two turns keep no process alive for longer.
 *
 * The timer is armed for the earliest deadline only, so checks are rare and the two turns cost
 * nothing per request.
 */
export class DeadlineTimer {
  private timer: NodeJS.Timeout | null = null;
  private turn: NodeJS.Immediate | null = null;
  /** When the armed timer, or the check it put off, is due; Infinity when neither is. */
  private dueAt = Infinity;

  constructor(
    private readonly clock: () => number,
    /** Runs the check at `now`; it must not throw, and re-arms for what stays due later. */
    private readonly check: (now: number) => void,
  ) {}

  /** The check runs at `dueAt` at the latest (nothing changes when it is armed as early or earlier). */
  arm(dueAt: number): void {
    if (dueAt >= this.dueAt) return; // Infinity included
    if (this.timer !== null) clearTimeout(this.timer);
    this.dueAt = dueAt;
    this.timer = setTimeout(this.onTimer, Math.max(0, dueAt - this.clock()) + 1);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    if (this.turn !== null) clearImmediate(this.turn);
    this.timer = null;
    this.turn = null;
    this.dueAt = Infinity;
  }

  private readonly onTimer = (): void => {
    this.timer = null;
    this.turn = setImmediate(this.onTurn);
  };

  private readonly onTurn = (): void => {
    this.turn = setImmediate(this.onDue);
  };

  private readonly onDue = (): void => {
    this.turn = null;
    this.dueAt = Infinity;
    this.check(this.clock());
  };
}
