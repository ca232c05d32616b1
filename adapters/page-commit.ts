/**
 * A polled source's page committed with its cursor (ARCHITECTURE rule 1), waiting while the outbox
 * cannot take it: the page is offered again with back-off (1 s doubling to 30 s), the cursor stays
 * where it was, and the source's state says why it paused. Shared by the FHIR and API sources.
 */
import { sleepUnlessAborted, type Clock } from '../gateway/clock.ts';
import type { IntakeContext, RawPage } from './contracts.ts';

/** What a paused source shows in `/status` for the code the commit was refused with. */
export function pauseState(code: string): string {
  return code === 'GW_OUTBOX_FULL' ? 'paused: outbox full' : code === 'GW_DISK_LOW' ? 'paused: disk low' : 'paused: outbox write failed';
}

/** Resolves true once committed (`onCommitted` hears the rows written or dead-lettered, unchanged ones and first-load pages not), false when `signal` aborts first (the source is stopping). */
export async function commitPage(
  ctx: IntakeContext,
  page: RawPage,
  o: { clock: Clock; signal: AbortSignal; onState(state: string): void; onCommitted?(changed: number): void },
): Promise<boolean> {
  for (let attempt = 0; !o.signal.aborted; attempt++) {
    const r = await ctx.intakePage(page);
    if (r.status === 'accepted') {
      if (!page.firstLoad) o.onCommitted?.(r.written + r.deadLettered);
      if (attempt > 0) o.onState('reading');
      return true;
    }
    o.onState(pauseState(r.code));
    ctx.logger.warn({ code: r.code, stream: page.stream }, 'page not committed; reads paused, the page will be retried');
    if (!(await sleepUnlessAborted(o.clock, Math.min(30_000, 1000 * 2 ** Math.min(attempt, 5)), o.signal))) return false;
  }
  return false;
}
