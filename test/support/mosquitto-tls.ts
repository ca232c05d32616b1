/**
 * A real mosquitto that requires a client certificate (`require_certificate true`), as the cloud's
 * broker does for enrolled gateways: its server certificate is from a throwaway broker CA (the one
 * enrolment hands the gateway to trust), and it admits only client certificates the cloud's device
 * CA signed (`cafile`). `foreign` is a client certificate from another CA, which it must refuse.
 */
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
}

export async function startMtlsMosquitto(o: { pki: TestPki; deviceCaPem: string }): Promise<MtlsBroker> {
  const broker = await startMosquitto({ tls: { ca: o.deviceCaPem, cert: o.pki.cert, key: o.pki.key, requireClientCert: true } });
  return Object.assign(broker, { brokerCaPem: o.pki.ca, foreign: { cert: o.pki.clientCert, key: o.pki.clientKey } });
}
