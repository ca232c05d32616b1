import { generateKeyPairSync, type KeyObject } from 'node:crypto';

/** A fresh cloud key pair (EC P-256): the public PEM goes in the gateway config, the private key to the receiver. */
export function makeCloudKeys(): { publicPem: string; privateKey: KeyObject } {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(), privateKey };
}
