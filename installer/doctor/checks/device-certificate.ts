/**
 * The device certificate (issue 16 point 5): enrolled or not, the certificate's dates against this
 * machine's clock, its key matching it, and — when the gateway is running — what the running
 * gateway says of it (a revocation is known only there: the cloud refused its renewal). The
 * verdict is gateway/identity/certificate-check.ts's, so `doctor` and `/status` agree.
 */
import { deviceCertificateCheck, type RuntimeIdentity } from '../../../gateway/identity/certificate-check.ts';
import { needsConfig, type DoctorCheck } from '../check.ts';

export const deviceCertificateDoctorCheck: DoctorCheck = {
  id: 'device certificate',
  async run(ctx) {
    if (!ctx.config || !ctx.paths) return [needsConfig('device certificate', ctx)];
    const g = await ctx.gateway();
    const identity: unknown = g.state === 'answering' ? g.status.identity : undefined;
    const runtime = typeof identity === 'object' && identity !== null ? (identity as RuntimeIdentity) : undefined;
    return [
      deviceCertificateCheck({
        dataDir: ctx.paths.dataDir,
        now: ctx.now(),
        relaySink: ctx.config.relay.sink,
        ...(runtime ? { runtime } : {}),
      }),
    ];
  },
};
