/**
 * The silence rule learns the feed's hours: a real MLLP feed that sends every 10 minutes from
 * 08:00 to 18:00 on weekdays. The first evening (no earlier day known) raises one silence; from the
 * second day on, the quiet of the evening and the night is its habit and raises nothing, while a
 * stop at 10:00 on the third day — an hour it sent in on the days before — is named at once.
 * Time on the manual clock, five minutes a poll.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { connectMllp, type MllpClient } from '../../../adapters/hl7v2/mllp-client.ts';
import type { MllpListener } from '../../../adapters/hl7v2/mllp-listener.ts';
import { adtA04 } from '../../support/hl7-fixtures.ts';
import { START, startHealthRig, type HealthRig } from './health-gateway.ts';

const MIN = 60_000;
const POLL = 5 * MIN;
const HOUR = 60 * MIN;
let rig: HealthRig | undefined;
afterEach(async () => {
  await rig?.stop();
  rig = undefined;
});

async function delivered(r: HealthRig): Promise<void> {
  for (let i = 0; i < 500; i++) {
    const st = r.gw.parts.outbox.stats();
    if (st.pending + st.inFlight + st.waitingRetry === 0) return;
    r.clock.advance(100);
    await new Promise((x) => setTimeout(x, 5));
  }
  throw new Error('the relay did not deliver within 500 turns');
}

/** Steps the clock to `t` (polls on the way). */
async function stepTo(r: HealthRig, t: number): Promise<void> {
  while (r.clock.now() < t) await r.step(Math.min(POLL, t - r.clock.now()));
}

/**
 * From 08:00 (or `firstAt`) to 18:00: a message every `gapMin` minutes (until `stopAt`); then the
 * clock runs to 08:00 next day.
 */
async function clinicDay(
  r: HealthRig,
  c: MllpClient,
  dayStart: number,
  stopAt?: number,
  o: { gapMin?: number; firstAt?: number } = {},
): Promise<void> {
  const gap = (o.gapMin ?? 10) * MIN;
  for (let at = o.firstAt ?? dayStart; at < dayStart + 10 * HOUR; at += gap) {
    if (stopAt !== undefined && at >= stopAt) return;
    await stepTo(r, at);
    expect(await c.send(adtA04())).toContain('MSA|AA|');
    // the relay delivers it (its timers on the manual clock, its I/O real) before the clock moves on
    await delivered(r);
  }
  await stepTo(r, dayStart + 24 * HOUR);
}

describe('health monitor: silence against the hours the feed keeps', () => {
  it('raises nothing for the evenings once one day is known, and names a stop in clinic hours', async () => {
    // START is Monday 2026-03-02 08:00 UTC; the gateway's zone is UTC
    rig = await startHealthRig({ agents: { health: { pollMs: POLL } } });
    const port = (rig.gw.parts.adapters.find((a) => a.id === 'hl7v2') as MllpListener).address()!.port;
    const c = await connectMllp('127.0.0.1', port);
    await clinicDay(rig, c, START);
    // Monday evening: nothing known of earlier days, so the median rule alone named the quiet once
    const silent = () => rig!.findings.filter((f) => f.code === 'AGENT_HEALTH_SOURCE_SILENT');
    expect(silent()).toHaveLength(1);
    expect(Date.parse(silent()[0].summary.match(/since (\S+) /)![1])).toBe(START + 10 * HOUR - 10 * MIN);
    // Tuesday: the first message clears it; Tuesday evening and night are Monday's habit: nothing
    await clinicDay(rig, c, START + 24 * HOUR);
    expect(rig.cleared.map((x) => x.code)).toEqual(['AGENT_HEALTH_SOURCE_SILENT']);
    expect(silent()).toHaveLength(1);
    // Wednesday: the feed stops at 10:00, an hour it sent in on Monday and Tuesday
    const wednesday = START + 48 * HOUR;
    await clinicDay(rig, c, wednesday, wednesday + 2 * HOUR);
    for (let i = 0; i < 12; i++) await rig.step(POLL);
    expect(silent()).toHaveLength(2);
    expect(silent()[1].summary).toMatch(
      /^source hl7v2 has sent nothing since 2026-03-04T09:50:00\.000Z \(\d+ min; it usually sends every 600 s, the median of \d+ gaps, and at this time on earlier days\); 1 connection\(s\) still open: /,
    );
    await c.close();
  }, 60_000);

  it('raises nothing when the first message of the morning comes a little late, nor at the close of a busy feed', async () => {
    rig = await startHealthRig({ agents: { health: { pollMs: POLL } } });
    const port = (rig.gw.parts.adapters.find((a) => a.id === 'hl7v2') as MllpListener).address()!.port;
    const c = await connectMllp('127.0.0.1', port);
    const silent = () => rig!.findings.filter((f) => f.code === 'AGENT_HEALTH_SOURCE_SILENT');
    // a message every 5 minutes, 08:00–17:55, Monday and Tuesday (the quiet limit: 4 × 5 = 20 min)
    await clinicDay(rig, c, START, undefined, { gapMin: 5 });
    expect(silent()).toHaveLength(1); // Monday's first evening, before any earlier day is known
    await clinicDay(rig, c, START + 24 * HOUR, undefined, { gapMin: 5 });
    // Tuesday's close at 17:55 and night: 18:00 is not in its hours (Monday's last half hour was 17:30)
    expect(silent()).toHaveLength(1);
    // Wednesday: the first message at 08:15, a quarter of an hour into its hours; polls at 08:00–08:10 saw 14 h of quiet
    const wednesday = START + 48 * HOUR;
    await clinicDay(rig, c, wednesday, wednesday + HOUR, { gapMin: 5, firstAt: wednesday + 15 * MIN });
    expect(silent()).toHaveLength(1);
    await c.close();
  }, 60_000);
});
