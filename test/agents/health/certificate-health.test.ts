/**
 * An enrolled gateway (real mosquitto requiring client certificates from the cloud's device CA, the
 * reference cloud's enrolment endpoint) whose device certificate cannot be renewed: the enrolment
 * endpoint is gone. The health monitor names the renewal failing (a warning, then an error as the
 * end nears) and the certificate expired, and the fleet sees each change on `up/health`, retained,
 * starting from an empty list on connect. Time moves on the manual clock.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHealthAgent } from '../../../agents/health/health-agent.ts';
import { loadConfig } from '../../../config/load.ts';
import { createManualClock } from '../../../gateway/clock.ts';
import { createGateway } from '../../../gateway/create-gateway.ts';
import { readIdentity, renewAtOf } from '../../../gateway/identity/index.ts';
import { createSilentLogger } from '../../../gateway/logger.ts';
import type { HealthDocument } from '../../../gateway/sinks/mqtt-sink.ts';
import { enrolGateway } from '../../../installer/enrol.ts';
import { type EnrolmentWorld, startEnrolmentWorld } from '../../support/enrolment-fixture.ts';
import { waitFor } from '../../support/net.ts';
import { quietHost } from './health-gateway.ts';

const work = mkdtempSync(join(tmpdir(), 'ewml-cert-health-'));
let w: EnrolmentWorld;
let httpsStopped = false;
beforeAll(async () => {
  w = await startEnrolmentWorld(work);
}, 60_000);
afterAll(async () => {
  await w?.receiver.stop();
  await w?.broker.stop();
  if (!httpsStopped) await w?.https.stop();
});

const MIN = 60_000;

describe('health monitor: the device certificate cannot be renewed', () => {
  it('warns while the renewal fails, errs near the end and once expired, and publishes each change on up/health', async () => {
    const gatewayId = 'gw-cert-health';
    w.enrolment.certLifetimeMs = 3_600_000;
    const dir = join(work, 'gw');
    mkdirSync(dir);
    const dataDir = join(dir, 'data');
    const configFile = join(dir, 'gateway.yaml');
    writeFileSync(configFile, `gateway:\n  dataDir: ${dataDir}\n  timezone: UTC\n`);
    await enrolGateway({
      code: w.enrolment.issueCode({ gatewayId, tenantId: 'acme-optical', practiceId: 'clinic-7' }),
      cloudUrl: w.https.url,
      caPem: w.cloudPki.ca,
      dataDir,
      configFile,
    });
    const id = readIdentity(dataDir);
    if (id.state !== 'present') throw new Error(id.state);
    const cert = id.identity.certificate;
    const notAfter = Date.parse(cert.notAfter);
    const renewAt = renewAtOf(cert.notBefore, cert.notAfter);

    const health: HealthDocument[] = [];
    await w.receiver.client.subscribeAsync(`ewml/v1/acme-optical/${gatewayId}/up/health`, { qos: 1 });
    w.receiver.client.on('message', (topic, payload) => {
      if (topic.endsWith(`/${gatewayId}/up/health`)) health.push(JSON.parse(payload.toString('utf8')) as HealthDocument);
    });

    const config = loadConfig({
      file: configFile,
      overrides: {
        hl7: { port: 0 },
        admin: { port: 0 },
        agents: {
          health: {
            enabled: true,
            pollMs: MIN,
            // a one-hour certificate: its days are fractions
            certificate: { warnDays: 1, errorDays: 10 / 1440, overdueMs: 60 * MIN },
          },
        },
      },
    });
    const clock = createManualClock(Date.parse(cert.notBefore));
    // a quiet host: the machine running the tests may be loaded, and this scenario is the certificate's
    const agent = createHealthAgent(config.agents.health, { host: quietHost });
    const gw = await createGateway({ config, logger: createSilentLogger(), clock, agents: [{ kind: 'health', create: () => agent }] });
    await gw.start();
    try {
      await waitFor(() => gw.parts.sink.health().connected, 15_000, 'connected with the device certificate');
      // the first health document: connected, nothing found
      await waitFor(() => health.length >= 1, 10_000, 'up/health on connect');
      expect(health[0]).toMatchObject({ type: 'health', gatewayId, findings: [] });

      // the enrolment endpoint goes away: the renewal due at 2/3 of the lifetime fails
      await w.https.stop();
      httpsStopped = true;
      const step = async () => {
        clock.advance(MIN);
        await agent.settled();
        // the renewal's request is real I/O (refused at once)
        await new Promise((r) => setTimeout(r, 20));
      };
      while (clock.now() < renewAt) await step();
      await step();
      await waitFor(() => Boolean(gw.parts.sink.health().detail?.identityLastRenewalError), 10_000, 'a failed renewal');
      await step();
      const active = () =>
        (gw.status() as { agents: { active: Array<{ code: string; severity: string; summary: string }> } }).agents.active.filter(
          (f) => f.code === 'AGENT_HEALTH_CERT_EXPIRING',
        );
      expect(active().map((f) => f.severity)).toEqual(['warning']);
      // the status keeps the summary it was first published with (a later poll updates only GET /agents/health)
      expect(active()[0].summary).toMatch(
        new RegExp(
          `^the device certificate ${cert.serial} expires in 1[89] min \\(${cert.notAfter}\\) and has not been renewed \\(due since ${new Date(renewAt).toISOString()}; last renewal failed: GW_ENROLMENT_FAILED: .+ \\(ECONNREFUSED\\)\\); it retries every 10 minutes: restore the link to the cloud's enrolment endpoint before it runs out, or re-enrol$`,
        ),
      );
      const report = gw.parts.agents.report('health') as {
        findings: Array<{ code: string; summary: string; evidence: Record<string, unknown> }>;
      };
      const now = report.findings.find((f) => f.code === 'AGENT_HEALTH_CERT_EXPIRING')!;
      expect(now.evidence).toMatchObject({
        serial: cert.serial,
        state: 'valid',
        notAfter: cert.notAfter,
        renewAt: new Date(renewAt).toISOString(),
      });
      expect(String(now.evidence.lastRenewalError)).toMatch(/ECONNREFUSED/);
      await waitFor(() => health.some((h) => h.findings.some((f) => f.code === 'AGENT_HEALTH_CERT_EXPIRING')), 10_000, 'up/health');
      const warned = health.find((h) => h.findings.length > 0)!;
      expect(warned.findings.map((f) => f.code)).toEqual(['AGENT_HEALTH_CERT_EXPIRING']);
      // first seen by the poll after the first failed renewal
      expect(Date.parse(warned.findings[0].since)).toBeGreaterThan(renewAt);
      expect(Date.parse(warned.findings[0].since)).toBeLessThanOrEqual(renewAt + 3 * MIN);
      expect(warned.findings).toEqual([
        {
          agent: 'health',
          code: 'AGENT_HEALTH_CERT_EXPIRING',
          severity: 'warning',
          summary: active()[0].summary,
          subject: 'certificate',
          since: warned.findings[0]?.since,
        },
      ]);

      // ten minutes before the end: an error
      while (clock.now() < notAfter - 10 * MIN) await step();
      await step();
      expect(active().map((f) => f.severity)).toEqual(['error']);
      await waitFor(() => health.at(-1)!.findings[0]?.severity === 'error', 10_000, 'up/health with the error');

      // past the end: expired (the same severity: updated in place, no new alert)
      while (clock.now() < notAfter + MIN) await step();
      await step();
      // updated in GET /agents/health (the status keeps the error as first published)
      const expired = (gw.parts.agents.report('health') as { findings: Array<{ code: string; summary: string }> }).findings.find(
        (f) => f.code === 'AGENT_HEALTH_CERT_EXPIRING',
      )!;
      expect(expired.summary).toBe(
        `the device certificate ${cert.serial} is expired (GW_DEVICE_CERT_EXPIRED): the broker refuses this gateway and records wait in the outbox; what to do: ${String(gw.parts.sink.health().detail!.identityAction)}`,
      );
      const alerts = health.filter((h) => h.findings.length > 0).map((h) => h.findings[0].severity);
      expect(alerts).toEqual(['warning', 'error']);
    } finally {
      await gw.stop();
    }
  }, 120_000);
});
