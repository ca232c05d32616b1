/**
 * A remedy's budget: at most `perHour` uses in any sliding hour, and after a use that did not help
 * a wait of `backoffInitialMs`, doubled each time up to `backoffMaxMs`. A use that helped (the cause
 * cleared) resets the back-off, so a fault that comes back days later is healed at once again.
 */
const HOUR = 3_600_000;

export interface BudgetOptions {
  perHour: number;
  backoffInitialMs: number;
  backoffMaxMs: number;
}

export interface RemedyBudget {
  /** Whether a use is allowed at `now`; when not, why (`budget` spent this hour, or `backoff` until a time). */
  check(now: number): { ok: true } | { ok: false; why: 'budget' | 'backoff'; until: number };
  /** A use at `now`: counted, and the back-off armed for the next. */
  use(now: number): void;
  /** The cause is gone: the back-off starts again from its first step (the hour's uses still count). */
  reset(): void;
  /** Uses in the hour before `now`. */
  usedInHour(now: number): number;
}

export function createBudget(o: BudgetOptions): RemedyBudget {
  const uses: number[] = [];
  let streak = 0;
  let nextAt = 0;
  const prune = (now: number) => {
    while (uses.length > 0 && uses[0] <= now - HOUR) uses.shift();
  };
  return {
    check(now) {
      prune(now);
      if (uses.length >= o.perHour) return { ok: false, why: 'budget', until: (uses[0] ?? now) + HOUR };
      if (now < nextAt) return { ok: false, why: 'backoff', until: nextAt };
      return { ok: true };
    },
    use(now) {
      prune(now);
      uses.push(now);
      nextAt = now + Math.min(o.backoffMaxMs, o.backoffInitialMs * 2 ** Math.min(streak, 30));
      streak++;
    },
    reset() {
      streak = 0;
      nextAt = 0;
    },
    usedInHour(now) {
      prune(now);
      return uses.length;
    },
  };
}
