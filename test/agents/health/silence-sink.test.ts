/**
 * Recorded faults on a real gateway: the MLLP sender stops mid-morning (AGENT_HEALTH_SOURCE_SILENT
 * against the rhythm it kept), and the cloud link is down (AGENT_HEALTH_SINK_DOWN with the sink's
 * own error code). Time moves on the manual clock; the feed is a real MLLP client on loopback.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { connectMllp } from '../../../adapters/hl7v2/mllp-client.ts';
import type { MllpListener } from '../../../adapters/hl7v2/mllp-listener.ts';
import { adtA04 } from '../../support/hl7-fixtures.ts';
import { makeCloudKeys } from '../../support/cloud-keys.ts';
import { freePort } from '../../support/net.ts';
import { POLL_MS, START, startHealthRig, type HealthRig } from './health-gateway.ts';

const MIN = 60_000;
let rig: HealthRig | undefined;
afterEach(async () => {
  await rig?.stop();
  rig = undefined;
});

describe('health monitor: the MLLP feed goes silent', () => {
  it('learns a 3-minute rhythm, names the silence once, and clears with the next message', async () => {
    rig = await startHealthRig();
    const port = (rig.gw.parts.adapters.find((a) => a.id === 'hl7v2') as MllpListener).address()!.port;
    const client = await connectMllp('127.0.0.1', port);
    // one message every 3 minutes for an hour: 20 messages, 19 gaps of 180 s
    for (let i = 0; i < 20; i++) {
      if (i > 0) for (let s = 0; s < 3; s++) await rig.step(POLL_MS);
      expect(await client.send(adtA04())).toContain('MSA|AA|');
    }
    const lastAt = rig.clock.now();
    // quiet: 4 × 180 s = 12 min < 15 min minimum, so nothing until 15 min have passed
    for (let m = 1; m <= 15; m++) await rig.step(POLL_MS);
    expect(rig.findings.filter((f) => f.code === 'AGENT_HEALTH_SOURCE_SILENT')).toEqual([]);
    await rig.step(POLL_MS);
    // and quiet for another hour: still one finding, not one a minute
    for (let m = 0; m < 60; m++) await rig.step(POLL_MS);
    const silent = rig.findings.filter((f) => f.code === 'AGENT_HEALTH_SOURCE_SILENT');
    expect(silent).toEqual([
      {
        agent: 'health',
        code: 'AGENT_HEALTH_SOURCE_SILENT',
        severity: 'warning',
        subject: 'hl7v2',
        summary: `source hl7v2 has sent nothing since ${new Date(lastAt).toISOString()} (16 min; it usually sends every 180 s, the median of 19 gaps); 1 connection(s) still open: check the sending system (the PMS's interface engine and its outbound queue)`,
      },
    ]);
    const report = rig.gw.parts.agents.report('health') as {
      findings: Array<{ code: string; firstSeen: string; evidence: Record<string, unknown> }>;
    };
    expect(report.findings.map((f) => [f.code, f.firstSeen, f.evidence])).toEqual([
      [
        'AGENT_HEALTH_SOURCE_SILENT',
        new Date(lastAt + 16 * MIN).toISOString(),
        {
          source: 'hl7v2',
          lastMessageAt: new Date(lastAt).toISOString(),
          silentForMinutes: 76,
          medianGapSeconds: 180,
          gaps: 19,
          // the first day: no earlier day's hours known yet
          hoursLearned: false,
          openConnections: 1,
        },
      ],
    ]);
    // /status lists it as active, with its first-seen time
    const st = rig.gw.status() as { agents: { active: Array<{ code: string; subject?: string; since: number }> } };
    expect(st.agents.active.map((f) => [f.code, f.subject, f.since])).toEqual([['AGENT_HEALTH_SOURCE_SILENT', 'hl7v2', lastAt + 16 * MIN]]);

    // the sender resumes: the finding clears at once, without waiting for a poll
    expect(await client.send(adtA04())).toContain('MSA|AA|');
    expect(rig.cleared).toEqual([{ agent: 'health', code: 'AGENT_HEALTH_SOURCE_SILENT', subject: 'hl7v2' }]);
    await rig.step(POLL_MS);
    expect((rig.gw.status() as { agents: { active: unknown[] } }).agents.active).toEqual([]);
    expect(rig.findings.filter((f) => f.code === 'AGENT_HEALTH_SOURCE_SILENT')).toHaveLength(1);
    await client.close();
    expect(rig.clock.now()).toBeGreaterThan(START);
  });

  it('watches only the sources listed in silence.sources', async () => {
    rig = await startHealthRig({ agents: { health: { silence: { sources: [] } } } });
    const port = (rig.gw.parts.adapters.find((a) => a.id === 'hl7v2') as MllpListener).address()!.port;
    const client = await connectMllp('127.0.0.1', port);
    for (let i = 0; i < 10; i++) {
      if (i > 0) await rig.step(POLL_MS);
      expect(await client.send(adtA04())).toContain('MSA|AA|');
    }
    for (let m = 0; m < 120; m++) await rig.step(POLL_MS);
    expect(rig.findings).toEqual([]);
    // its rhythm is still learned and shown
    expect((rig.gw.parts.agents.report('health') as { sources: unknown[] }).sources).toEqual([
      { id: 'hl7v2', lastMessageAt: new Date(START + 9 * MIN).toISOString(), gaps: 9, medianGapSeconds: 60, restartsInHour: 0 },
    ]);
    await client.close();
  });

  it('claims no rhythm from fewer gaps than minGaps', async () => {
    rig = await startHealthRig();
    const port = (rig.gw.parts.adapters.find((a) => a.id === 'hl7v2') as MllpListener).address()!.port;
    const client = await connectMllp('127.0.0.1', port);
    for (let i = 0; i < 5; i++) {
      if (i > 0) await rig.step(POLL_MS);
      expect(await client.send(adtA04())).toContain('MSA|AA|');
    }
    // 4 gaps (minGaps 5): hours of quiet say nothing
    for (let m = 0; m < 180; m++) await rig.step(POLL_MS);
    expect(rig.findings).toEqual([]);
    await client.close();
  });
});

describe('health monitor: the cloud link is down', () => {
  it('names the MQTT sink down after downAfterMs with its error code and what to do, once', async () => {
    const closed = await freePort();
    rig = await startHealthRig({
      relay: { sink: 'mqtt' },
      cloud: { publicKey: makeCloudKeys().publicPem },
      mqtt: { url: `mqtt://127.0.0.1:${closed}` },
    });
    const sinkHealth = () => rig!.gw.parts.sink.health();
    // the sink's own reconnects run on real time: wait until it has tried once
    for (let i = 0; i < 400 && sinkHealth().detail?.lastError === undefined; i++) await new Promise((r) => setTimeout(r, 10));
    expect(sinkHealth()).toMatchObject({ connected: false, detail: { lastError: 'ECONNREFUSED' } });
    // down since the first poll that saw the failure: the one at start if the refusal came first, else the next
    const sawAtStart = (rig.gw.parts.agents.report('health') as { sinkDownSince: string | null }).sinkDownSince !== null;
    const downSince = new Date(START + (sawAtStart ? 0 : POLL_MS)).toISOString();
    await rig.step(POLL_MS);
    expect((rig.gw.parts.agents.report('health') as { sinkDownSince: string | null }).sinkDownSince).toBe(downSince);
    // 10 min later it is a finding
    for (let m = 2; m < 10; m++) await rig.step(POLL_MS);
    expect(rig.findings).toEqual([]);
    for (let m = 0; m < 30; m++) await rig.step(POLL_MS);
    expect(rig.findings).toEqual([
      {
        agent: 'health',
        code: 'AGENT_HEALTH_SINK_DOWN',
        severity: 'error',
        subject: 'mqtt',
        summary: `the mqtt sink has been disconnected since ${downSince} (ECONNREFUSED); 0 record(s) wait in the outbox, nothing is lost; what to do: nothing listens at the configured broker/server URL: check \`mqtt.url\` (or \`https.url\`) and that the service is up`,
      },
    ]);
    // the admin API serves the report
    const res = await fetch(`http://127.0.0.1:${rig.gw.parts.admin!.address()!.port}/agents/health`, {
      headers: { authorization: `Bearer ${rig.gw.parts.token}` },
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      id: string;
      state: string;
      active: Array<{ code: string }>;
      findings: Array<{ code: string; evidence: Record<string, unknown> }>;
      polls: number;
    };
    expect([body.id, body.state, body.active.map((f) => f.code)]).toEqual(['health', 'running', ['AGENT_HEALTH_SINK_DOWN']]);
    expect(body.findings[0].evidence).toEqual({
      sink: 'mqtt',
      lastError: 'ECONNREFUSED',
      downSince,
      undelivered: 0,
      oldestAgeSeconds: 0,
    });
    expect(body.polls).toBe(40);
    const missing = await fetch(`http://127.0.0.1:${rig.gw.parts.admin!.address()!.port}/agents/nope`, {
      headers: { authorization: `Bearer ${rig.gw.parts.token}` },
    });
    expect(missing.status).toBe(404);
  });

  it('an HTTPS sink with nothing to deliver is not down; one that cannot reach the cloud is, with its code', async () => {
    const closed = await freePort();
    rig = await startHealthRig({
      relay: { sink: 'https' },
      https: { url: `http://127.0.0.1:${closed}` },
      cloud: { publicKey: makeCloudKeys().publicPem },
    });
    // idle: "not connected" only because nothing was sent yet
    expect(rig.gw.parts.sink.health().connected).toBe(false);
    for (let m = 0; m < 30; m++) await rig.step(POLL_MS);
    expect(rig.findings).toEqual([]);
    // a record to deliver: the POST is refused, the relay retries, and the monitor names it after downAfterMs
    const port = (rig.gw.parts.adapters.find((a) => a.id === 'hl7v2') as MllpListener).address()!.port;
    const client = await connectMllp('127.0.0.1', port);
    expect(await client.send(adtA04())).toContain('MSA|AA|');
    await client.close();
    for (let i = 0; i < 400 && rig.gw.parts.sink.health().detail?.lastError === undefined; i++) {
      if (i % 20 === 0) await rig.step(1000);
      else await new Promise((r) => setTimeout(r, 5));
    }
    expect(rig.gw.parts.sink.health().detail).toEqual({ lastError: 'ECONNREFUSED' });
    for (let m = 0; m < 12; m++) await rig.step(POLL_MS);
    expect(rig.findings.map((f) => [f.code, f.subject, f.severity])).toEqual([['AGENT_HEALTH_SINK_DOWN', 'https', 'error']]);
    // how many of the message's records it counts depends on where the relay's retry is when the poll looks
    const m = /\(ECONNREFUSED\); (\d+) record\(s\) wait in the outbox, nothing is lost; what to do: nothing listens/.exec(
      rig.findings[0].summary,
    );
    const counts = (rig.gw.status() as { counts: { enqueuedRecords: number; delivered: number } }).counts;
    expect(counts.delivered).toBe(0);
    expect(Number(m?.[1])).toBeGreaterThan(0);
    expect(Number(m?.[1])).toBeLessThanOrEqual(counts.enqueuedRecords);
  });
});
