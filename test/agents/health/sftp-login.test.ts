/**
 * A recorded fault on a real OpenSSH sshd: the practice changes the SFTP login (here the client's
 * key is no longer authorised; a changed password gives the sshd the same refusal). The source's
 * listings fail with ERR_SSH_AUTH while the host key is still the pinned one; the monitor names
 * AGENT_HEALTH_SOURCE_FAILING with "the password or key was probably changed", does not restart it (the
 * same login cannot succeed, and repeated ones can lock the account), and the finding clears by itself
 * once the login works again.
 * The listing runs on its cron schedule in real time; the monitor on the manual clock.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RemedyRecord } from '../../../agents/health/health-agent.ts';
import { waitFor } from '../../support/net.ts';
import { startSshd, type SshServer } from '../../support/sshd.ts';
import { POLL_MS, startHealthRig, type HealthRig } from './health-gateway.ts';

let sshd: SshServer;
let rig: HealthRig | undefined;
beforeAll(async () => {
  sshd = await startSshd();
}, 30_000);
afterAll(async () => {
  await rig?.stop();
  await sshd?.stop();
});

describe('health monitor: the SFTP login is changed on the server', () => {
  it('names the refused login with the advice, does not restart for it, and clears once the login works', async () => {
    const exportDir = sshd.mkdir('export-health');
    rig = await startHealthRig({
      hl7: { enabled: false },
      files: [
        {
          id: 'ecw',
          source: 'sftp',
          dir: exportDir,
          profile: 'eclinicalworks',
          stableMs: 0,
          sftp: {
            host: '127.0.0.1',
            port: sshd.port,
            username: sshd.user,
            privateKey: sshd.clientKey,
            hostKeySha256: sshd.hostKeySha256,
            schedule: '* * * * * *',
          },
        },
      ],
    });
    const detail = () => rig!.gw.status() as { adapters: Record<string, { status: string; detail?: Record<string, unknown> }> };
    await waitFor(() => detail().adapters.ecw?.detail?.lastListAt !== undefined, 15_000, 'a first listing');
    expect(detail().adapters.ecw.status).toBe('up');

    sshd.setClientKeyAuthorised(false);
    await waitFor(() => detail().adapters.ecw.detail?.error === 'ERR_SSH_AUTH', 15_000, 'a refused listing');
    expect(detail().adapters.ecw.status).toBe('down');
    // failing for 2 minutes of the monitor's time: named, and a restart tried
    for (let m = 0; m < 3; m++) await rig.step(POLL_MS);
    const failing = rig.findings.filter((f) => f.code === 'AGENT_HEALTH_SOURCE_FAILING');
    expect(failing).toHaveLength(1);
    expect(failing[0].subject).toBe('ecw');
    expect(failing[0].severity).toBe('error');
    expect(failing[0].summary).toMatch(
      /^source ecw is failing \(ERR_SSH_AUTH\) since .+; not restarted: the same login cannot succeed by trying again, and repeated attempts can lock the account; what to do: the SFTP server refused the login, and its host key is still the pinned one \(the same server\): the password or key was probably changed on it; update sftp.password or sftp.privateKey in the config$/,
    );
    // a refused login is not retried by the monitor: no restart, and no extra login beyond the schedule
    for (let m = 0; m < 30; m++) await rig.step(POLL_MS);
    const remedies = (rig.gw.parts.agents.report('health') as { remedies: RemedyRecord[] }).remedies;
    expect(remedies).toEqual([]);
    expect(rig.controls.filter((x) => x.by === 'agent:health')).toEqual([]);
    expect(rig.logs.some((l) => l.includes(sshd.clientKey.slice(40, 80)))).toBe(false);

    // the practice puts the login back: the next listing works and the finding clears
    sshd.setClientKeyAuthorised(true);
    await waitFor(() => detail().adapters.ecw.status === 'up', 15_000, 'a listing that works again');
    await rig.step(POLL_MS);
    expect(rig.cleared).toEqual([{ agent: 'health', code: 'AGENT_HEALTH_SOURCE_FAILING', subject: 'ecw' }]);
    expect(rig.findings.filter((f) => f.code === 'AGENT_HEALTH_SOURCE_FAILING')).toHaveLength(1);
  }, 90_000);
});
