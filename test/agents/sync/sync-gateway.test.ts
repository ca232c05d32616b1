/**
 * End to end: a real gateway (SQLite outbox, admin API on loopback) with a real polled source (the
 * databases source on a real SQLite file) and the sync scheduler, on a manual clock. The poller's
 * wait is the agent's — 10 min on a night it learned (its state file seeded with a clinic week), 30 s
 * at once after a change — and once the agent is stopped the poller waits its configured 20 s again.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import type { createSqlSource } from '../../../adapters/sql/sql-source.ts';
import { emptyState } from '../../../agents/sync/model.ts';
import { STATE_FILE } from '../../../agents/sync/state-file.ts';
import { validateConfig } from '../../../config/load.ts';
import { createManualClock } from '../../../gateway/clock.ts';
import { createGateway, type Gateway } from '../../../gateway/create-gateway.ts';
import { createLogger } from '../../../gateway/logger.ts';
import { waitFor } from '../../support/net.ts';

const H = 3_600_000;
/** Tuesday 3 March 2026, 02:00 UTC: a night. */
const TUESDAY_2AM = Date.UTC(2026, 2, 3, 2);

let gw: Gateway | undefined;
let db: DatabaseSync | undefined;
afterEach(async () => {
  await gw?.stop();
  gw = undefined;
  db?.close();
  db = undefined;
});

describe('sync scheduler on a real gateway and database', () => {
  it('the poller waits what the agent says, and its configured interval again once the agent stops', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ewml-sync-gw-'));
    const file = join(dir, 'pms.db');
    db = new DatabaseSync(file);
    db.exec('CREATE TABLE appt (id INTEGER PRIMARY KEY, tag TEXT NOT NULL)');
    const insert = db.prepare('INSERT INTO appt (tag) VALUES (?)');
    // a clinic week learned before: Mon–Fri 08:00–18:00 busy, every half hour observed twice
    const dataDir = join(dir, 'data');
    const learned = emptyState();
    learned.obs.fill(2);
    for (let d = 0; d < 5; d++) for (let k = 16; k < 36; k++) learned.chg[d * 48 + k] = 2;
    mkdirSync(join(dataDir, 'agents', 'sync'), { recursive: true });
    writeFileSync(join(dataDir, 'agents', 'sync', STATE_FILE), JSON.stringify({ version: 1, sources: { pms: learned }, history: [] }));

    const v = validateConfig({
      gateway: { dataDir, timezone: 'UTC' },
      hl7: { enabled: false },
      admin: { port: 0 },
      databases: [
        {
          id: 'pms',
          engine: 'sqlite',
          file,
          pollIntervalMs: 20_000,
          overlapSeconds: 0,
          streams: [
            {
              name: 'appt',
              table: 'appt',
              key: 'id',
              records: [
                {
                  type: 'patient',
                  patient: { system: 'T', id: 'tag' },
                  fields: { 'identifiers[0].system': { value: 'T' }, 'identifiers[0].value': 'tag' },
                },
              ],
            },
          ],
        },
      ],
      agents: { sync: { enabled: true, minIntervalMs: 30_000, maxIntervalMs: 600_000 } },
    });
    if (!v.ok) throw new Error(JSON.stringify(v.problems));
    const logs: string[] = [];
    const dest = new Writable({
      write(chunk, _enc, cb) {
        logs.push(...String(chunk).split('\n').filter(Boolean));
        cb();
      },
    });
    const clock = createManualClock(TUESDAY_2AM);
    gw = await createGateway({
      config: v.config,
      clock,
      logger: createLogger({ level: 'info', destination: dest as unknown as Parameters<typeof createLogger>[0]['destination'] }),
    });
    const accepted: number[] = [];
    gw.parts.bus.on('intake.accepted', (e) => {
      if (e.adapter === 'pms') accepted.push(clock.now());
    });
    await gw.start();
    const source = gw.parts.adapters.find((a) => a.id === 'pms') as ReturnType<typeof createSqlSource>;
    const lastPoll = () => source.progress().appt?.lastPollAt ?? null;
    const report = async () => {
      const res = await gw!.parts.admin!.app.inject({ url: '/agents/sync', headers: { authorization: `Bearer ${gw!.parts.token}` } });
      expect(res.statusCode).toBe(200);
      return res.json() as {
        state: string;
        sources: Record<string, { intervalMs: number; reason: string; plan: string; cycles: number }>;
        history: Array<{ change: string; sourceId: string; fromMs?: number; toMs: number; reason: string }>;
      };
    };
    /** The poll due in `ms` (from the cycle that just ended): not a millisecond before. */
    const pollsAfter = async (ms: number, what: string) => {
      const before = lastPoll();
      clock.advance(ms - 1);
      // nothing to wait for when the timer did not fire: give a wrongly fired cycle the time to show
      await new Promise((r) => setTimeout(r, 150));
      expect(lastPoll()).toBe(before);
      clock.advance(1);
      await waitFor(() => lastPoll() === clock.now(), 5000, what);
    };

    await waitFor(() => lastPoll() === TUESDAY_2AM, 5000, 'the first poll');
    await waitFor(() => gw!.parts.agents.report('sync')?.sources !== undefined, 5000, 'the agent’s first decision');
    // the seeded state was read, not taken for damaged
    expect(logs.filter((l) => l.includes('learned state read')).length).toBe(1);
    expect(logs.some((l) => l.includes('AGENT_SYNC_STATE_DAMAGED'))).toBe(false);
    let r = await report();
    expect(r.state).toBe('running');
    expect(r.sources.pms).toMatchObject({ intervalMs: 600_000, reason: 'learned', cycles: 1 });

    // a night hour the agent learned as quiet: 10 min, not the configured 20 s
    insert.run('T-1');
    await pollsAfter(600_000, 'the poll after 10 min');
    await waitFor(() => accepted.length === 1, 5000, 'the row committed');
    expect(accepted).toEqual([TUESDAY_2AM + 600_000]);
    // that cycle saw a change: 30 s at once, and the burst is in the history with its reason
    r = await report();
    expect(r.sources.pms).toMatchObject({ intervalMs: 30_000, reason: 'change', cycles: 2 });
    expect(r.history.filter((h) => h.change === 'burst')).toEqual([
      {
        at: new Date(TUESDAY_2AM + 600_000).toISOString(),
        sourceId: 'pms',
        change: 'burst',
        fromMs: 600_000,
        toMs: 30_000,
        reason: '1 change in a half hour learned as quiet; interval 10 min → 30 s, slowing again by ×2 a quiet poll',
      },
    ]);
    expect(logs.some((l) => l.includes('"change":"burst"') && l.includes('schedule: 1 change in a half hour learned as quiet'))).toBe(true);
    // /status lists the agent with its health
    const status = gw.status() as { agents: { agents: Array<{ id: string; state: string; health: { status: string } }> } };
    expect(status.agents.agents.find((a) => a.id === 'sync')).toMatchObject({ state: 'running', health: { status: 'up' } });

    await pollsAfter(30_000, 'the poll 30 s after the change');
    expect((await report()).sources.pms).toMatchObject({ intervalMs: 60_000, reason: 'slowing', cycles: 3 });

    // the agent stops: its policy goes, the next wait is the configured 20 s
    await gw.parts.services.pause('agent:sync');
    await pollsAfter(60_000, 'the poll the agent had set');
    insert.run('T-2');
    await pollsAfter(20_000, 'the poll after the configured 20 s');
    await waitFor(() => accepted.length === 2, 5000, 'the second row committed');
    await pollsAfter(20_000, 'the configured 20 s again');
    expect(accepted).toEqual([TUESDAY_2AM + 600_000, TUESDAY_2AM + 600_000 + 30_000 + 60_000 + 20_000]);
    expect(clock.now()).toBe(TUESDAY_2AM + 600_000 + 30_000 + 60_000 + 40_000);
    expect(clock.now()).toBeLessThan(TUESDAY_2AM + H);
  }, 30_000);
});
