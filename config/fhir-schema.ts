/**
 * The `fhir[]` section: FHIR R4 servers read as polled sources. Each entry names little (`id`,
 * `vendor`, `baseUrl`, `clientId`, `resources`); the vendor profile (adapters/fhir/vendor-profiles.ts)
 * supplies page sizes, scopes, rate limits and the sync strategy per resource, and any field here
 * overrides it.
 */
import { Type } from '@sinclair/typebox';

export const FhirVendor = {
  epic: 'epic',
  cerner: 'cerner',
  athenahealth: 'athenahealth',
  meditech: 'meditech',
  generic: 'generic',
} as const;
export type FhirVendor = (typeof FhirVendor)[keyof typeof FhirVendor];

/** The FHIR resource types a `fhir[]` source can be asked to read (the ones the gateway maps). */
export const FhirResourceName = [
  'Patient',
  'Coverage',
  'Practitioner',
  'PractitionerRole',
  'Organization',
  'Location',
  'Appointment',
  'Schedule',
  'Slot',
  'VisionPrescription',
  'Observation',
  'ChargeItem',
  'Claim',
  'Invoice',
  'DocumentReference',
] as const;
export type FhirResourceName = (typeof FhirResourceName)[number];

/** The resource types a signed `fhir.write` command may create or update (adapters/fhir/write-back.ts). */
export const FhirWriteResourceName = ['Appointment', 'VisionPrescription', 'DocumentReference'] as const;
export type FhirWriteResourceName = (typeof FhirWriteResourceName)[number];

const positive = (description: string, o: { minimum?: number; maximum?: number } = {}) =>
  Type.Optional(Type.Integer({ minimum: o.minimum ?? 1, maximum: o.maximum, description }));

export const fhirSourceSchema = Type.Object(
  {
    id: Type.String({
      minLength: 1,
      pattern: '^(?!\\.+$)[A-Za-z0-9._-]+$',
      description: 'Adapter id (logs, status, cursors, its key pair).',
    }),
    vendor: Type.Union(
      Object.values(FhirVendor).map((v) => Type.Literal(v)),
      {
        default: 'generic',
        description:
          'The vendor profile: `epic`, `cerner` (Oracle Health: the tenant id is part of `baseUrl`), `athenahealth` (the practice id is part of `baseUrl`), `meditech` (Expanse, US Core) or `generic` R4. It supplies every setting below that is not given.',
      },
    ),
    baseUrl: Type.String({
      minLength: 1,
      pattern: '^https?://',
      description: "The FHIR R4 base URL (https; http only to this machine's loopback, for tests).",
    }),
    clientId: Type.String({ minLength: 1, description: "The client id the vendor registered for this gateway's backend app." }),
    resources: Type.Array(Type.Union(FhirResourceName.map((r) => Type.Literal(r))), {
      minItems: 1,
      uniqueItems: true,
      description: 'FHIR resource types to read (each becomes canonical records).',
    }),
    system: Type.String({
      default: '',
      description: '`source.system` of the records (default: the vendor name and id, e.g. `EPIC:main`).',
    }),
    tokenUrl: Type.String({
      default: '',
      description: "The token endpoint, when the server publishes no `.well-known/smart-configuration` (default: discovery's).",
    }),
    scope: Type.String({
      default: '',
      description: "Scopes to ask for (default: the profile's, e.g. `system/Patient.rs system/Appointment.rs`).",
    }),
    keyAlg: Type.Union([Type.Literal('RS384'), Type.Literal('ES384')], {
      default: 'RS384',
      description:
        "The client assertion's algorithm; the key pair is made on this gateway (`eyewear-gateway fhir jwks` prints its public half).",
    }),
    jwksUrl: Type.String({
      default: '',
      description:
        "Where the vendor fetches this gateway's public JWKS (Epic requires a hosted JWKS URL for backend apps): sent as the assertion's `jku`. Serve the file `eyewear-gateway fhir jwks` prints there (the admin API also serves it at `/fhir/{id}/jwks.json`).",
    }),
    pollIntervalMs: Type.Integer({ minimum: 1000, default: 300_000, description: 'How often the resources are read for changes.' }),
    pageSize: positive("Resources per page (`_count`; default: the profile's).", { maximum: 1000 }),
    overlapSeconds: Type.Integer({
      minimum: 0,
      default: 300,
      description:
        "Each incremental read starts this long before the last run began (late commits, the server's clock); unchanged resources write nothing.",
    }),
    dateWindowDays: Type.Integer({
      minimum: 1,
      default: 30,
      description: 'Resources synced by their own date (Epic Appointment `date`): how far back each read looks; the future is read too.',
    }),
    bulk: Type.Object(
      {
        mode: Type.Union([Type.Literal('auto'), Type.Literal('never'), Type.Literal('always')], {
          default: 'auto',
          description:
            '`auto`: Bulk `$export` for the first load and the resources the profile syncs in bulk, where the server offers it; `never`: page through searches; `always`: every resource by `$export` with `_since`.',
        }),
        level: Type.Optional(
          Type.Union([Type.Literal('system'), Type.Literal('group'), Type.Literal('patient')], {
            description:
              "The `$export` level (Bulk Data IG): the whole system, one Group (`groupId`), or all patients (default: the vendor's; Epic, Oracle Health and MEDITECH export by Group).",
          }),
        ),
        groupId: Type.String({ default: '', description: 'The Group exported when `level` is `group`.' }),
        intervalMinutes: Type.Integer({ minimum: 5, default: 1440, description: 'How often a `_since` export runs after the first.' }),
        maxWaitMinutes: Type.Integer({
          minimum: 1,
          default: 360,
          description: 'An export still running after this long is cancelled and tried again later.',
        }),
      },
      { additionalProperties: false, default: {}, description: 'Bulk Data export.' },
    ),
    rateLimit: Type.Object(
      {
        perMinute: positive("Calls per minute at most (default: the profile's; athenahealth publishes one, Epic none)."),
        perDay: positive("Calls per UTC day at most (default: the profile's)."),
      },
      { additionalProperties: false, default: {}, description: 'The gateway keeps under these itself.' },
    ),
    timeoutMs: Type.Integer({ minimum: 1000, default: 60_000, description: 'One request, until its headers arrive.' }),
    writeBack: Type.Object(
      {
        enabled: Type.Boolean({
          default: false,
          description:
            'Carry out signed `fhir.write` cloud commands on this server: creates with `If-None-Exist`, updates with `If-Match`, so a retry never duplicates or overwrites.',
        }),
        resources: Type.Array(Type.Union(FhirWriteResourceName.map((r) => Type.Literal(r))), {
          default: [],
          uniqueItems: true,
          description:
            "The types commands may create or update (`Appointment`, `VisionPrescription`, `DocumentReference`), as far as the vendor permits (docs/return-path.md). The write-back's token asks for their write scopes too (v2 `system/<Type>.cru`, v1 `.read` and `.write`), beside `scope`: register them with the vendor.",
        }),
      },
      { additionalProperties: false, default: {}, restart: true, description: 'Write-back from signed cloud commands (off by default).' },
    ),
  },
  { additionalProperties: false },
);
