/**
 * Cloud commands are JWS compact objects signed with the cloud's Ed25519 command key, which the
 * gateway pins in its config (ARCHITECTURE.md "Cloud contract"). A command is refused — and the
 * refusal audited — when it is unsigned, wrongly signed, signed with another algorithm, expired,
 * not yet valid, addressed to another gateway, or lacks an id. Replays (an id seen before) are
 * refused by the command processor, which remembers ids durably.
 *
 * Payload: { id, type, gatewayId, iat, exp, ...type-specific fields } (iat/exp in seconds, as JWT).
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { GatewayError } from '../errors.ts';

export interface CloudCommand {
  id: string;
  type: string;
  gatewayId: string;
  iat: number;
  exp: number;
  [field: string]: unknown;
}

export interface CommandVerifier {
  verify(jws: string): Promise<CloudCommand>;
}

const MAX_LIFETIME_S = 24 * 3600;
export const SKEW_S = 300;

export function createCommandVerifier(o: { publicKeyPem: string; gatewayId: string; now: () => number }): CommandVerifier {
  const key: KeyObject = createPublicKey(o.publicKeyPem);
  if (key.asymmetricKeyType !== 'ed25519')
    throw new GatewayError('GW_CONFIG_INVALID', 'cloud.commandPublicKey must be an Ed25519 public key');
  const refuse = (why: string, cause?: unknown) => new GatewayError('GW_COMMAND_REFUSED', why, cause === undefined ? undefined : { cause });
  return {
    async verify(jws) {
      let payload: Uint8Array;
      try {
        // imported with the first command, not at the top: a gateway that takes no commands never loads jose
        const { compactVerify } = await import('jose');
        const r = await compactVerify(jws.trim(), key, { algorithms: ['EdDSA', 'Ed25519'] });
        payload = r.payload;
      } catch (e) {
        throw refuse('signature does not verify with the pinned command key', e);
      }
      let cmd: CloudCommand;
      try {
        cmd = JSON.parse(Buffer.from(payload).toString('utf8')) as CloudCommand;
      } catch (e) {
        throw refuse('payload is not JSON', e);
      }
      if (typeof cmd.id !== 'string' || !cmd.id) throw refuse('command has no id');
      if (typeof cmd.type !== 'string' || !cmd.type) throw refuse('command has no type');
      if (cmd.gatewayId !== o.gatewayId) throw refuse('command is addressed to another gateway');
      const now = Math.floor(o.now() / 1000);
      if (typeof cmd.exp !== 'number' || typeof cmd.iat !== 'number') throw refuse('command has no iat/exp');
      if (cmd.exp < now - SKEW_S) throw refuse('command has expired');
      if (cmd.iat > now + SKEW_S) throw refuse('command is not valid yet');
      if (cmd.exp - cmd.iat > MAX_LIFETIME_S) throw refuse('command lives longer than 24 h');
      return cmd;
    },
  };
}
