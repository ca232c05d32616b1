/**
 * DrChrono's REST API (v4 "Hunt Valley"), as data.
 *
 * Shaped by these published documents (as the `search` tool's stored copies hold them):
 * - DrChrono's own OpenAPI description (app.drchrono.com/openapi-schema, republished in
 *   APIs-guru/openapi-directory `APIs/drchrono.com/v4 (Hunt Valley)/openapi.yaml` and in
 *   api-evangelist/drchrono `openapi/_original/drchrono-rest-api-openapi.yml`):
 *   - OAuth 2.0 authorization code: the code is exchanged once for an access token and a refresh
 *     token; access tokens "only last 48 hours" (`expires_in`); a new one comes from
 *     `grant_type=refresh_token` with `client_id` and `client_secret` in the form, at
 *     `https://drchrono.com/o/token/` (the OpenAPI's security scheme names
 *     `https://app.drchrono.com/o/token/`). The answer carries a refresh token, kept sealed when it
 *     differs from the one sent.
 *   - Every list answers `{ "data": [...], "next": <url>, "previous": <url> }`, paged by `cursor`
 *     and `page_size`; the gateway follows `next`.
 *   - `since` ("the datetime to query by") on patients, appointments, line items and line item
 *     deletions; appointments refuse a read without one of `since`, `occurred_since`, `date` or
 *     `date_range`, and list deleted ones (`deleted_flag`) with `show_archived=true`.
 *   - `/api/line_item_deletions` logs each deleted billing line item (`billing_line_item_id`).
 *   - Field names of Patient, Appointment (`scheduled_time`, `duration`, `status`, `profile`,
 *     `appt_is_break`, `deleted_flag`), BillingLineItem, Doctor and Office.
 * - The rate limits (500 calls an hour per application, reset at the top of the hour; 10 or more in
 *   one second throttled), as api-evangelist/drchrono `rate-limits/drchrono-rate-limits.yml` records
 *   them from DrChrono's tutorial (app.drchrono.com/api-docs/tutorial/). The gateway keeps 9 a
 *   second and 500 in any hour (a sliding hour never overruns DrChrono's fixed one).
 *
 * GUESSES, marked so they can be checked against a live practice:
 * - `since` is written as a practice-local `YYYY-MM-DDTHH:mm:ss` (DrChrono's times, e.g.
 *   `scheduled_time`, carry no offset); the overlap window absorbs small clock differences.
 * - `page_size` 100 is served in one page (DrChrono documents no maximum in the OpenAPI).
 * - A blank appointment status is a booked appointment; `Rescheduled` is the old slot, cancelled.
 * - An appointment without an appointment profile has visit type `unspecified`.
 * Deletes: appointments (`deleted_flag`) and billing line items (the deletions log) are read as
 * deletes; patients, doctors and offices have no delete signal in the API (a patient is made
 * inactive, `patient_status`, which is kept as data), so none are read for them.
 */
import type { RecordMapping } from '../../canonical/field-mapping.ts';
import type { ApiProfile } from '../api-types.ts';

const PATIENT = { system: 'DRCHRONO', id: 'patient' };
const next = { kind: 'next' as const, field: 'next', sizeParam: 'page_size' };
const since = { param: 'since', format: 'datetime' as const, timezone: 'practice' as const };

const patient: RecordMapping = {
  type: 'patient',
  patient: { system: 'DRCHRONO', id: 'id' },
  fields: {
    'identifiers[0].system': { value: 'DRCHRONO' },
    'identifiers[0].value': { column: 'id', transform: 'string' },
    'identifiers[0].type': { value: 'PI' },
    'identifiers[1].system': { value: 'DRCHRONO-CHART' },
    'identifiers[1].value': 'chart_id',
    'identifiers[1].type': { value: 'MR' },
    'name.family': 'last_name',
    'name.given[0]': 'first_name',
    'name.given[1]': 'middle_name',
    birthDate: { column: 'date_of_birth', transform: 'date' },
    sex: {
      column: 'gender',
      codes: { Male: 'male', Female: 'female', Other: 'other', UNK: 'unknown', ASKU: 'unknown' },
      default: 'unknown',
    },
    'addresses[0].use': { value: 'home' },
    'addresses[0].lines[0]': 'address',
    'addresses[0].city': 'city',
    'addresses[0].state': 'state',
    'addresses[0].postalCode': 'zip_code',
    'phones[0].use': { value: 'home' },
    'phones[0].value': 'home_phone',
    'phones[1].use': { value: 'mobile' },
    'phones[1].value': 'cell_phone',
    'phones[2].use': { value: 'work' },
    'phones[2].value': 'office_phone',
    'emails[0]': 'email',
    deceased: { column: 'patient_status', codes: { D: true, A: false, I: false } },
  },
};

const appointment: RecordMapping = {
  type: 'appointment',
  patient: PATIENT,
  // breaks are appointments without a patient
  when: { column: 'appt_is_break', in: [false] },
  fields: {
    'appointmentId.system': { value: 'DRCHRONO-APPT' },
    'appointmentId.value': { column: 'id', transform: 'string' },
    status: {
      column: 'status',
      codes: {
        Confirmed: 'booked',
        'Not Confirmed': 'booked',
        Arrived: 'arrived',
        'Checked In': 'arrived',
        'Checked In Online': 'arrived',
        'In Room': 'arrived',
        'In Session': 'arrived',
        Complete: 'fulfilled',
        Cancelled: 'cancelled',
        Rescheduled: 'cancelled',
        'No Show': 'noshow',
      },
      default: 'booked',
    },
    start: { column: 'scheduled_time', transform: 'datetime' },
    durationMinutes: { column: 'duration', transform: 'number' },
    'visitType.system': { value: 'DRCHRONO-PROFILE' },
    'visitType.code': { column: 'profile', transform: 'string', default: 'unspecified' },
    reason: 'reason',
    'provider.system': { value: 'DRCHRONO-DOCTOR' },
    'provider.value': { column: 'doctor', transform: 'string' },
    'location.system': { value: 'DRCHRONO-OFFICE' },
    'location.code': { column: 'office', transform: 'string' },
  },
};

const charge: RecordMapping = {
  type: 'charge',
  patient: PATIENT,
  fields: {
    'code.system': { value: 'DRCHRONO-PROC' },
    'code.code': 'code',
    'code.display': 'description',
    transactionType: { value: 'charge' },
    amount: { column: 'billed', transform: 'number' },
    currency: { value: 'USD' },
    quantity: { column: 'quantity', transform: 'number' },
    serviceDate: { column: 'service_date', transform: 'date' },
    status: 'billing_status',
    'provider.system': { value: 'DRCHRONO-DOCTOR' },
    'provider.value': { column: 'doctor', transform: 'string' },
  },
};

export const drchronoProfile: ApiProfile = {
  label: 'DrChrono',
  system: 'DRCHRONO',
  baseUrl: 'https://app.drchrono.com',
  auth: { kind: 'refresh-token', tokenUrl: 'https://drchrono.com/o/token/', clientAuth: 'body' },
  rateLimit: { perSecond: 9, perHour: 500 },
  pageSize: 100,
  variables: [],
  notes: [
    'Authorize the gateway once as the practice (the authorization-code flow) and put the refresh token in auth.refreshToken; the gateway keeps the rotated one sealed from then on.',
    'Access tokens last 48 hours; 500 calls an hour per application: doctors and offices are read once a day.',
  ],
  entities: [
    {
      name: 'doctors',
      path: '/api/doctors',
      rows: 'data',
      key: 'id',
      paging: next,
      intervalMinutes: 1440,
      records: [
        {
          type: 'provider',
          fields: {
            'identifiers[0].system': { value: 'DRCHRONO-DOCTOR' },
            'identifiers[0].value': { column: 'id', transform: 'string' },
            'identifiers[1].system': { value: 'NPI' },
            'identifiers[1].value': 'npi_number',
            'name.family': 'last_name',
            'name.given[0]': 'first_name',
            'name.suffix': 'suffix',
            role: 'specialty',
            active: { column: 'is_account_suspended', codes: { true: false, false: true } },
            'emails[0]': 'email',
          },
        },
      ],
    },
    {
      name: 'offices',
      path: '/api/offices',
      rows: 'data',
      key: 'id',
      paging: next,
      intervalMinutes: 1440,
      records: [
        {
          type: 'location',
          fields: {
            'identifiers[0].system': { value: 'DRCHRONO-OFFICE' },
            'identifiers[0].value': { column: 'id', transform: 'string' },
            name: 'name',
            status: { column: 'archived', codes: { true: 'inactive', false: 'active' } },
            'address.lines[0]': 'address',
            'address.city': 'city',
            'address.state': 'state',
            'address.postalCode': 'zip_code',
            'phones[0].use': { value: 'work' },
            'phones[0].value': 'phone_number',
          },
        },
      ],
    },
    { name: 'patients', path: '/api/patients', rows: 'data', key: 'id', modifiedSince: since, paging: next, records: [patient] },
    {
      name: 'appointments',
      path: '/api/appointments',
      query: { show_archived: 'true' },
      rows: 'data',
      key: 'id',
      modifiedSince: { ...since, initial: '2000-01-01T00:00:00Z' },
      paging: next,
      deletes: { kind: 'field', field: 'deleted_flag', in: [true] },
      records: [appointment],
    },
    { name: 'line_items', path: '/api/line_items', rows: 'data', key: 'id', modifiedSince: since, paging: next, records: [charge] },
    {
      name: 'line_item_deletions',
      path: '/api/line_item_deletions',
      rows: 'data',
      key: 'billing_line_item_id',
      modifiedSince: since,
      paging: next,
      deletes: { kind: 'tombstone', target: 'line_items', key: 'billing_line_item_id' },
      records: [],
    },
  ],
};
