/**
 * `enrol CODE --cloud URL [--ca FILE] [--force] [--config FILE]`: enrols this gateway with the
 * eyewear-ML cloud using the one-time code from the cloud team (installer/enrol.ts).
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { type CliCommand, EXIT } from '../../cli/command.ts';
import { enrolGateway } from '../enrol.ts';

const HELP = `eyewear-gateway enrol CODE --cloud URL [--ca FILE] [--force] [--config FILE]

Enrols this gateway with the eyewear-ML cloud. CODE is the one-time enrolment code the cloud team
sent (it works once and expires). A key pair is made on this machine (the private key never leaves
it), a certificate request is sent with the code over HTTPS to URL, and the answer — this gateway's
certificate, the broker's CA, the cloud's payload and command keys, the gateway id and tenant — is
stored in <dataDir>/identity/ (files 0600). The gateway then connects to the broker with mutual
TLS, and renews its certificate by itself before it expires.

--cloud URL   the cloud's enrolment endpoint, https://… (from the cloud team)
--ca FILE     the CA that signed the cloud's TLS certificate, when it is a private one
              (the server certificate is always verified)
--force       replace an identity this data folder already has (ask the cloud team to revoke the
              old certificate)
--config FILE the gateway's config: its gateway.id, gateway.tenantId, cloud.publicKey,
              cloud.commandPublicKey, mqtt.url and relay.sink are set to what enrolment got (the
              file is created if it does not exist); without it, the lines to add are printed
Exit 0: enrolled; 1: refused (a wrong, used or expired code; already enrolled; the cloud not
reached), with what to do; 2: usage; 3: config.`;

export const enrolCommand: CliCommand = {
  name: 'enrol',
  synopsis: 'enrol CODE --cloud URL [--ca FILE] [--force]',
  summary: 'Enrol with the eyewear-ML cloud using a one-time code: device key, certificate, cloud keys.',
  help: HELP,
  options: { cloud: { type: 'string' }, ca: { type: 'string' }, force: { type: 'boolean' } },
  run: async ({ positionals, values, configFile }, io) => {
    const [code, extra] = positionals;
    const cloudUrl = values.cloud;
    if (!code || extra !== undefined) {
      io.err('usage: eyewear-gateway enrol CODE --cloud URL [--ca FILE] [--force] [--config FILE]');
      return EXIT.usage;
    }
    if (typeof cloudUrl !== 'string' || cloudUrl === '') {
      io.err('error: --cloud URL is required: the enrolment URL the cloud team sent with the code (https://…)');
      return EXIT.usage;
    }
    let caPem: string | undefined;
    if (typeof values.ca === 'string') {
      try {
        caPem = io.readFile(values.ca);
      } catch (e) {
        io.err(`error: cannot read --ca ${values.ca}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
        return EXIT.usage;
      }
      if (!caPem.includes('-----BEGIN CERTIFICATE-----')) {
        io.err(`error: --ca ${values.ca} is not a PEM certificate (-----BEGIN CERTIFICATE-----)`);
        return EXIT.usage;
      }
    }
    // a config file enrol is to create: the embedded defaults say where the data folder is
    const config = io.loadConfig(configFile && existsSync(configFile) ? configFile : undefined);
    const out = await enrolGateway({
      code,
      cloudUrl,
      dataDir: resolve(config.gateway.dataDir),
      ...(caPem ? { caPem } : {}),
      force: values.force === true,
      ...(configFile ? { configFile } : {}),
    });
    const r = out.record;
    const c = r.certificate;
    io.out(`enrolled: gateway ${r.gatewayId} of tenant ${r.tenantId}${r.practiceId ? ` (practice ${r.practiceId})` : ''}`);
    io.out(`certificate: ${c.serial}, ${c.subject}, valid ${c.notBefore} to ${c.notAfter}; renews from ${out.renewAt}`);
    io.out(`identity: ${out.dir} (the device key was made here and stays here)`);
    if (r.brokerUrl) io.out(`broker: ${r.brokerUrl}`);
    if (configFile)
      io.out(`config: ${configFile}: ${out.configChanges.length ? `set ${out.configChanges.join(', ')}` : 'already up to date'}`);
    else {
      io.out('config: add these lines to the gateway config (or run enrol with --config FILE):');
      for (const l of out.configLines) io.out(`  ${l}`);
      io.out('  relay.sink: mqtt');
    }
    for (const w of out.warnings) io.err(`warning: ${w}`);
    io.out('next: restart the gateway; `eyewear-gateway doctor` checks the certificate and the connection');
    return EXIT.ok;
  },
};
