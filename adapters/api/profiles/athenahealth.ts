/**
 * athenahealth's athenaOne REST API (v1), as data.
 *
 * Shaped by these published documents (as the `search` tool's stored copies hold them):
 * - docs.athenahealth.com/api/guides/changed-data-subscriptions — changed-data feeds: POST
 *   `/{feed}/changed/subscription` once, then GET `/{feed}/changed`; a subscription takes up to five
 *   minutes to apply in production.
 * - docs.athenahealth.com/api/resources/best-practices-and-troubleshooting — `limit` and `offset`
 *   paging, "certain APIs have built-in default limits", and athenahealth "will not accept
 *   integrations that necessitate the import of bulk data" (so this profile reads change feeds and
 *   directories, not a history).
 * - docs.athenahealth.com/api/guides/best-practices — a daily API quota that resets at midnight GMT,
 *   per-minute OAuth throttling, and caching the token for its life.
 * - The athenaOne OpenAPI description republished in api-evangelist/athenahealth
 *   (`openapi/_original/athenahealth-athenaone-rest-api-openapi.yml`): base
 *   `https://api.platform.athenahealth.com/v1/{practiceid}` (preview: `api.preview.platform…`),
 *   and the field names of Patient (`patientid`, `firstname`, `lastname`, `dob`, `sex`,
 *   `address1`, `city`, `state`, `zip`, `homephone`, `mobilephone`, `email`) and Appointment
 *   (`appointmentid`, `date`, `starttime`, `duration`, `patientid`, `providerid`, `departmentid`,
 *   `appointmenttype`, `appointmentstatus`).
 * - The token endpoint (`/oauth2/v1/token`, client credentials with HTTP Basic client auth, scope
 *   `athena/service/Athenanet.MDP.*`), list envelopes named after the entity with a `next` link
 *   (`{ "appointments": [...], "next": "/v1/<practice>/…" }`), `MM/DD/YYYY` dates and
 *   `MM/DD/YYYY HH:mm:ss` times, and `showprocessedstartdatetime` on changed feeds: as athenahealth's
 *   own discovery document (`/.well-known/smart-configuration`, republished in the same repository)
 *   and a public production integration (metriport/metriport's athenahealth client) use them.
 *
 * GUESSES, marked so they can be checked against a live practice:
 * - `totalcount` beside each list (used for progress and to end offset paging; without it the
 *   first short page ends it).
 * - The rate limits: athenahealth discloses an app's limits to its developer only; 10 calls a
 *   second and 50,000 a day stay under the figures third-party summaries report (and match the
 *   FHIR profile's daily budget). Override with `rateLimit` to the app's real figures.
 * - Changed-feed semantics: a read marks messages processed, and `showprocessedstartdatetime`
 *   returns those processed since then too. The gateway always sends it (the last run's start less
 *   the overlap), so a crash after a read but before the commit reads the same messages again.
 * - Times in changed feeds are the practice's local time (`timezone: practice`).
 * - Department fields beyond `departmentid` and `name` (`address`, `city`, `state`, `zip`, `phone`),
 *   provider fields (`providerid`, `firstname`, `lastname`, `npi`, `providertype`), and the
 *   appointment status codes (`f` future, `2` checked in, `3` checked out, `4` charge entered,
 *   `x` cancelled, `o` an open slot — not an appointment, so not read as one).
 * Deletes: athenahealth's REST API exposes none for these entities (a cancelled appointment is a
 * status, not a delete); none are read.
 */
import type { RecordMapping } from '../../canonical/field-mapping.ts';
import type { ApiProfile } from '../api-types.ts';

const PATIENT = { system: 'ATHENA', id: 'patientid' };
const offset = { kind: 'offset' as const, param: 'offset', sizeParam: 'limit', totalField: 'totalcount' };
// sent on the first read too (from long ago): a read without it would mark what it returns
// processed and shift the offsets of the pages after it
const changedSince = {
  param: 'showprocessedstartdatetime',
  format: 'MM/DD/YYYY HH:mm:ss' as const,
  timezone: 'practice' as const,
  initial: '2000-01-01T05:00:00Z',
};

const patient: RecordMapping = {
  type: 'patient',
  patient: PATIENT,
  fields: {
    'identifiers[0].system': { value: 'ATHENA' },
    'identifiers[0].value': { column: 'patientid', transform: 'string' },
    'identifiers[0].type': { value: 'PI' },
    'name.family': 'lastname',
    'name.given[0]': 'firstname',
    'name.given[1]': 'middlename',
    birthDate: { column: 'dob', transform: 'date', dateFormat: 'MM/DD/YYYY' },
    sex: { column: 'sex', codes: { M: 'male', F: 'female', U: 'unknown' }, default: 'unknown' },
    'addresses[0].use': { value: 'home' },
    'addresses[0].lines[0]': 'address1',
    'addresses[0].lines[1]': 'address2',
    'addresses[0].city': 'city',
    'addresses[0].state': 'state',
    'addresses[0].postalCode': 'zip',
    'phones[0].use': { value: 'home' },
    'phones[0].value': 'homephone',
    'phones[1].use': { value: 'mobile' },
    'phones[1].value': 'mobilephone',
    'emails[0]': 'email',
  },
};

const appointment: RecordMapping = {
  type: 'appointment',
  patient: PATIENT,
  when: { column: 'appointmentstatus', in: ['f', '2', '3', '4', 'x'] },
  fields: {
    'appointmentId.system': { value: 'ATHENA-APPT' },
    'appointmentId.value': { column: 'appointmentid', transform: 'string' },
    status: { column: 'appointmentstatus', codes: { f: 'booked', '2': 'arrived', '3': 'fulfilled', '4': 'fulfilled', x: 'cancelled' } },
    start: { template: '{date} {starttime}', transform: 'datetime', dateFormat: 'MM/DD/YYYY' },
    durationMinutes: { column: 'duration', transform: 'number' },
    'visitType.system': { value: 'ATHENA-APPTTYPE' },
    'visitType.code': { column: 'appointmenttypeid', transform: 'string' },
    'visitType.display': 'appointmenttype',
    'provider.system': { value: 'ATHENA-PROVIDER' },
    'provider.value': { column: 'providerid', transform: 'string' },
    'location.system': { value: 'ATHENA-DEPT' },
    'location.code': { column: 'departmentid', transform: 'string' },
  },
};

export const athenahealthProfile: ApiProfile = {
  label: 'athenahealth (athenaOne REST)',
  system: 'ATHENAHEALTH',
  baseUrl: 'https://api.platform.athenahealth.com',
  auth: { kind: 'client-credentials', tokenUrl: '/oauth2/v1/token', clientAuth: 'basic', scope: 'athena/service/Athenanet.MDP.*' },
  rateLimit: { perSecond: 10, perDay: 50_000 },
  pageSize: 100,
  variables: ['practiceId'],
  notes: [
    'The practice id is in every path: set variables.practiceId.',
    'Patients and appointments come from changed-data feeds (subscribed on first read; a new subscription can take five minutes): changes from then on, no history — athenahealth refuses bulk backfills; the FHIR source (fhir[] with vendor athenahealth) reads the existing data.',
    "Rate limits are the app's own (athenahealth discloses them to its developer): set rateLimit to them.",
  ],
  entities: [
    {
      name: 'departments',
      path: '/v1/{practiceId}/departments',
      rows: 'departments',
      key: 'departmentid',
      paging: offset,
      intervalMinutes: 1440,
      records: [
        {
          type: 'location',
          fields: {
            'identifiers[0].system': { value: 'ATHENA-DEPT' },
            'identifiers[0].value': { column: 'departmentid', transform: 'string' },
            name: 'name',
            'address.lines[0]': 'address',
            'address.lines[1]': 'address2',
            'address.city': 'city',
            'address.state': 'state',
            'address.postalCode': 'zip',
            'phones[0].use': { value: 'work' },
            'phones[0].value': 'phone',
          },
        },
      ],
    },
    {
      name: 'providers',
      path: '/v1/{practiceId}/providers',
      rows: 'providers',
      key: 'providerid',
      paging: offset,
      intervalMinutes: 1440,
      records: [
        {
          type: 'provider',
          fields: {
            'identifiers[0].system': { value: 'ATHENA-PROVIDER' },
            'identifiers[0].value': { column: 'providerid', transform: 'string' },
            'identifiers[1].system': { value: 'NPI' },
            'identifiers[1].value': { column: 'npi', transform: 'string' },
            'name.family': 'lastname',
            'name.given[0]': 'firstname',
            role: 'providertype',
          },
        },
      ],
    },
    {
      name: 'patients',
      path: '/v1/{practiceId}/patients/changed',
      subscribe: '/v1/{practiceId}/patients/changed/subscription',
      rows: 'patients',
      key: 'patientid',
      modifiedSince: changedSince,
      paging: offset,
      records: [patient],
    },
    {
      name: 'appointments',
      path: '/v1/{practiceId}/appointments/changed',
      subscribe: '/v1/{practiceId}/appointments/changed/subscription',
      rows: 'appointments',
      key: 'appointmentid',
      modifiedSince: changedSince,
      paging: offset,
      records: [appointment],
    },
  ],
};
