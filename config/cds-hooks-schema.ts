/**
 * The `cdsHooks` section: a CDS Hooks 2.0 service (https://cds-hooks.hl7.org/2.0/) the practice's
 * EHR (Epic, Oracle Health/Cerner) calls from inside the network, answered from the gateway's own
 * read model (gateway/cds-hooks/). Off by default; when on it needs its own TLS certificate, the
 * URL the EHR is configured with, and the EHRs it trusts (issuer and JWK Set URL, CDS Hooks
 * "Trusting CDS Clients").
 */
import { existsSync, readFileSync } from 'node:fs';
import { Type } from '@sinclair/typebox';

const PEM_HINT = 'PEM text (`${file:PATH}`) or the path of a PEM file';

export const cdsHooksSchema = Type.Object(
  {
    enabled: Type.Boolean({ default: false, description: 'Serve CDS Hooks (`GET /cds-services`, `patient-view`, `appointment-book`).' }),
    host: Type.String({
      default: '127.0.0.1',
      description:
        "Address to listen on. The default keeps it on this machine; the EHR calls from inside the network, so set this PC's LAN address (or `0.0.0.0`) and allow the EHR's servers through the firewall.",
    }),
    port: Type.Integer({
      minimum: 0,
      maximum: 65535,
      default: 8443,
      description: 'HTTPS port of the CDS service (its own, not the admin API).',
    }),
    publicUrl: Type.String({
      default: '',
      description:
        "The base URL the EHR is configured with, e.g. `https://optical-gw.practice.local:8443` (with a path only when a proxy serves the service under one). A token's `aud` must be this plus `/cds-services/{id}`.",
    }),
    tls: Type.Object(
      {
        cert: Type.String({ default: '', description: `The server certificate chain: ${PEM_HINT}. Issued for the name in publicUrl.` }),
        key: Type.String({ default: '', secret: true, description: `The certificate's private key: ${PEM_HINT}. Secret.` }),
      },
      {
        additionalProperties: false,
        default: {},
        description: 'TLS of the CDS service (required when enabled; plain HTTP is not offered).',
      },
    ),
    issuers: Type.Array(
      Type.Object(
        {
          iss: Type.String({ minLength: 1, description: "The EHR's `iss` claim, exactly as it signs it." }),
          jku: Type.String({
            minLength: 1,
            description:
              "The EHR's JWK Set URL (https; http only to this machine's loopback, for tests). A token's `jku` header must be this; one without `jku` is checked against the issuer's first entry.",
          }),
          patientSystem: Type.String({
            default: '',
            description:
              "The reference system under which the gateway's records know this EHR's FHIR Patient ids (`context.patientId`); for a `fhir[]` source reading this EHR: `<its system>/Patient`, e.g. `EPIC:main/Patient`. Empty: patients are found by the prefetched Patient's identifiers only.",
          }),
          identifierSystems: Type.Record(
            Type.String({ minLength: 1 }),
            Type.String({ minLength: 1, description: "The reference system of the same identifiers in the gateway's records." }),
            {
              default: {},
              description:
                "A prefetched Patient's `identifier.system` → the system the gateway's records use for it (e.g. the EHR's MRN OID → the PMS's HL7 assigning authority `CLINIC`). Systems not listed are matched as they are.",
            },
          ),
        },
        { additionalProperties: false },
      ),
      { default: [], description: 'The EHRs allowed to call (CDS Hooks JWT: `iss` and `jku` allow-listed; RS256/RS384/ES256/ES384 only).' },
    ),
    rxExpiryWarningDays: Type.Integer({
      minimum: 0,
      maximum: 365,
      default: 30,
      description: 'A prescription expiring within this many days gets a card (an expired one always does).',
    }),
    rxValidityMonths: Type.Object(
      {
        spectacle: Type.Integer({
          minimum: 1,
          maximum: 120,
          default: 24,
          description: 'A spectacle Rx without an expiry date is taken as valid this long from its issue date.',
        }),
        contactLens: Type.Integer({ minimum: 1, maximum: 120, default: 12, description: 'The same for a contact-lens Rx.' }),
      },
      { additionalProperties: false, default: {}, description: 'Validity assumed when a prescription carries no `expiresAt`.' },
    ),
    appointmentDays: Type.Integer({
      minimum: 0,
      maximum: 730,
      default: 90,
      description: 'An upcoming appointment within this many days gets a card (0: none).',
    }),
    maxPatients: Type.Integer({
      minimum: 100,
      default: 200_000,
      description: 'Patients the read model keeps; past this, those updated longest ago are dropped first.',
    }),
  },
  {
    additionalProperties: false,
    default: {},
    restart: true,
    description: 'CDS Hooks 2.0 service for the EHR, answered from a sealed local read model of the records the gateway relays.',
  },
);

/**
 * The PEM a `tls.cert`/`tls.key` value names: the value itself when it is PEM (a `${file:…}`
 * reference the loader already read), else the file at that path. Throws when the file cannot be read.
 */
export function pemOf(value: string): string {
  if (value.includes('-----BEGIN')) return value;
  return readFileSync(value, 'utf8');
}

/** Whether a value is PEM text or names a file that exists (for the rules' messages). */
export function pemSource(value: string): 'pem' | 'file' | 'missing-file' {
  if (value.includes('-----BEGIN')) return 'pem';
  return existsSync(value) ? 'file' : 'missing-file';
}
