/**
 * The world an enrolling gateway meets, for one test file: the reference cloud's HTTPS endpoint
 * (TLS from a test CA, the enrolment routes mounted) and a real mosquitto that requires client
 * certificates from the cloud's device CA, with the cloud's receiver reading `up/records` as a
 * certificate-holding client of its own.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createEnrolmentCloud, type EnrolmentCloud } from '../reference-cloud/enrolment.ts';
import {
  type HttpReferenceCloud,
  type MqttReferenceCloud,
  startHttpReferenceCloud,
  startMqttReferenceCloud,
} from '../reference-cloud/reference-cloud.ts';
import { makeCloudKeys } from './cloud-keys.ts';
import { makeBrokerPki, type MtlsBroker, startMtlsMosquitto } from './mosquitto-tls.ts';
import { makeTestPki, type TestPki } from './tls.ts';

export interface EnrolmentWorld {
  payloadKeys: { publicPem: string; privateKey: KeyObject };
  commandKeyPem: string;
  cloudPki: TestPki;
  /** The cloud's TLS CA as a file, for `enrol --ca FILE`. */
  caFile: string;
  enrolment: EnrolmentCloud;
  https: HttpReferenceCloud;
  broker: MtlsBroker;
  receiver: MqttReferenceCloud;
  stop(): Promise<void>;
}

/** `caFile`: where the cloud's TLS CA is written (default `<workDir>/cloud-ca.pem`); `port`: the enrolment endpoint's (default any). */
export async function startEnrolmentWorld(workDir: string, o: { caFile?: string; port?: number } = {}): Promise<EnrolmentWorld> {
  const payloadKeys = makeCloudKeys();
  const commandKeyPem = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const cloudPki = makeTestPki();
  const caFile = o.caFile ?? join(workDir, 'cloud-ca.pem');
  mkdirSync(dirname(caFile), { recursive: true });
  writeFileSync(caFile, cloudPki.ca);
  const brokerPki = makeBrokerPki();
  const enrolment = await createEnrolmentCloud({ brokerCaPem: brokerPki.ca, payloadKeyPem: payloadKeys.publicPem, commandKeyPem });
  const broker = await startMtlsMosquitto({ pki: brokerPki, deviceCaPem: enrolment.deviceCaPem, crlPem: await enrolment.crlPem() });
  // enrolment answers carry the broker URL, known only now
  enrolment.brokerUrl = broker.url;
  const svc = await enrolment.issueServiceCertificate('ewml-cloud-receiver');
  const receiver = await startMqttReferenceCloud({
    url: broker.url,
    privateKey: payloadKeys.privateKey,
    ca: broker.brokerCaPem,
    cert: svc.certPem,
    key: svc.keyPem,
  });
  let https: Awaited<ReturnType<typeof startHttpReferenceCloud>>;
  try {
    https = await startHttpReferenceCloud({
      privateKey: payloadKeys.privateKey,
      tls: { cert: cloudPki.cert, key: cloudPki.key },
      enrolment,
      ...(o.port !== undefined ? { port: o.port } : {}),
    });
  } catch (e) {
    await receiver.stop();
    await broker.stop();
    throw e;
  }
  return {
    payloadKeys,
    commandKeyPem,
    cloudPki,
    caFile,
    enrolment,
    https,
    broker,
    receiver,
    async stop() {
      await receiver.stop();
      await broker.stop();
      await https.stop();
    },
  };
}
