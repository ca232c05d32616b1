/**
 * A real mosquitto that requires a client certificate (`require_certificate true`), as the cloud's
 * broker does for enrolled gateways: its server certificate is from a throwaway broker CA (the one
 * enrolment hands the gateway to trust), and it admits only client certificates the cloud's device
 * CA signed (`cafile`). `foreign` is a client certificate from another CA, which it must refuse.
 */
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeTestPki, type TestPki } from './tls.ts';
import { startMosquitto, type Broker } from './mosquitto.ts';

/** The broker's own PKI: made first, because the enrolment cloud hands out its CA. */
export function makeBrokerPki(): TestPki {
  return makeTestPki();
}

export interface MtlsBroker extends Broker {
  /** The CA of the broker's server certificate (what enrolment gives the gateway as brokerCa). */
  brokerCaPem: string;
  /** A valid client certificate that is not from the device CA. */
  foreign: { cert: string; key: string };
  /** Replaces the broker's CRL (when started with one) and restarts it, as a broker does to take a revocation. */
  applyCrl(pem: string): Promise<void>;
}

/** `crlPem`: the device CA's CRL; the broker then refuses the client certificates it lists. */
export async function startMtlsMosquitto(o: { pki: TestPki; deviceCaPem: string; crlPem?: string }): Promise<MtlsBroker> {
  let crlFile: string | undefined;
  if (o.crlPem) {
    const dir = mkdtempSync(join(tmpdir(), 'ewml-crl-'));
    chmodSync(dir, 0o755); // mosquitto started as root reads it as its own user
    crlFile = join(dir, 'crl.pem');
    writeFileSync(crlFile, o.crlPem, { mode: 0o644 });
  }
  const broker = await startMosquitto({
    tls: { ca: o.deviceCaPem, cert: o.pki.cert, key: o.pki.key, requireClientCert: true, ...(crlFile ? { crlFile } : {}) },
  });
  return Object.assign(broker, {
    brokerCaPem: o.pki.ca,
    foreign: { cert: o.pki.clientCert, key: o.pki.clientKey },
    async applyCrl(pem: string) {
      if (!crlFile) throw new Error('this broker was started without a CRL');
      writeFileSync(crlFile, pem, { mode: 0o644 });
      await broker.restart();
    },
  });
}
