/**
 * Practice Studio's database, mapped as data. Its schema (one per practice database, `ps` by
 * default) keeps every table with an `updated_at` time maintained by Practice Studio and an
 * increasing integer key, and logs deletions in `deletions` (table name, row id, time) from its
 * own audit triggers. The DDL lives in test/support/practice-studio-db.ts, the test database.
 */
import type { RecordMapping } from '../../canonical/field-mapping.ts';
import type { SqlStreamConfig } from '../sql-source.ts';

export const PRACTICE_STUDIO_SYSTEM = 'PRACTICE-STUDIO';
const PATIENT = { system: 'PS', id: 'patient_id' };
const ts = (column: string) => ({ column, transform: 'datetime' as const });
const date = (column: string) => ({ column, transform: 'date' as const });
const num = (column: string) => ({ column, transform: 'number' as const });
const diopter = (column: string) => ({ column, transform: 'diopter' as const });
const cents = (column: string) => ({ column, transform: 'number' as const, scale: 0.01 });

function eye(prefix: 'od' | 'os', contact: boolean): Record<string, RecordMapping['fields'][string]> {
  const side = prefix === 'od' ? 'right' : 'left';
  const f: Record<string, RecordMapping['fields'][string]> = {
    [`${side}.sphere`]: diopter(`${prefix}_sphere`),
    [`${side}.cylinder`]: diopter(`${prefix}_cylinder`),
    [`${side}.axis`]: { column: `${prefix}_axis`, transform: 'integer' },
    [`${side}.add`]: diopter(`${prefix}_add`),
  };
  if (contact) {
    f[`${side}.baseCurve`] = num(`${prefix}_base_curve`);
    f[`${side}.diameter`] = num(`${prefix}_diameter`);
    f[`${side}.brand`] = `${prefix}_brand`;
  } else {
    f[`${side}.prisms[0].amount`] = num(`${prefix}_prism`);
    f[`${side}.prisms[0].base`] = { column: `${prefix}_prism_base`, codes: { BU: 'up', BD: 'down', BI: 'in', BO: 'out' } };
    f[`${side}.pd`] = num(`${prefix}_pd`);
  }
  return f;
}

/** The streams of a Practice Studio database whose tables live in `schema`. */
export function practiceStudioStreams(schema: string): SqlStreamConfig[] {
  const t = (name: string) => `${schema}.${name}`;
  const wm = { column: 'updated_at', kind: 'timestamp' as const };
  return [
    {
      name: 'patients',
      table: t('patients'),
      key: 'patient_id',
      watermark: wm,
      records: [
        {
          type: 'patient',
          patient: PATIENT,
          fields: {
            'identifiers[0].system': { value: 'PS' },
            'identifiers[0].value': 'patient_id',
            'identifiers[0].type': { value: 'PI' },
            'identifiers[1].system': { value: 'PS-CHART' },
            'identifiers[1].value': 'chart_no',
            'identifiers[1].type': { value: 'MR' },
            'name.family': 'last_name',
            'name.given[0]': 'first_name',
            'name.given[1]': 'middle_name',
            birthDate: date('dob'),
            sex: { column: 'gender', codes: { M: 'male', F: 'female', O: 'other', U: 'unknown' }, default: 'unknown' },
            'addresses[0].use': { value: 'home' },
            'addresses[0].lines[0]': 'address1',
            'addresses[0].lines[1]': 'address2',
            'addresses[0].city': 'city',
            'addresses[0].state': 'state',
            'addresses[0].postalCode': 'zip',
            'phones[0].use': { value: 'home' },
            'phones[0].value': 'phone_home',
            'phones[1].use': { value: 'mobile' },
            'phones[1].value': 'phone_mobile',
            'emails[0]': 'email',
            deceased: { column: 'deceased', transform: 'boolean' },
          },
        },
      ],
    },
    {
      name: 'insurance',
      table: t('insurance'),
      key: 'insurance_id',
      watermark: wm,
      records: [
        {
          type: 'coverage',
          patient: PATIENT,
          fields: {
            'payer.id': 'payer_code',
            'payer.name': 'payer_name',
            planName: 'plan_name',
            memberId: 'member_id',
            groupNumber: 'group_no',
            subscriberRelationship: { column: 'relationship', transform: 'lower' },
            priority: { column: 'priority', transform: 'integer' },
            start: date('effective'),
            end: date('expires'),
          },
        },
      ],
    },
    {
      name: 'spectacle_rx',
      table: t('spectacle_rx'),
      key: 'rx_id',
      watermark: wm,
      records: [
        {
          type: 'spectacle-rx',
          patient: PATIENT,
          occurredAt: 'exam_date',
          fields: {
            issuedAt: date('exam_date'),
            expiresAt: date('expires'),
            'prescriber.system': { value: 'NPI' },
            'prescriber.value': 'prescriber_npi',
            ...eye('od', false),
            ...eye('os', false),
            binocularPd: num('binocular_pd'),
          },
        },
      ],
    },
    {
      name: 'contact_lens_rx',
      table: t('contact_lens_rx'),
      key: 'rx_id',
      watermark: wm,
      records: [
        {
          type: 'contact-lens-rx',
          patient: PATIENT,
          occurredAt: 'issued',
          fields: {
            issuedAt: date('issued'),
            expiresAt: date('expires'),
            'prescriber.system': { value: 'NPI' },
            'prescriber.value': 'prescriber_npi',
            ...eye('od', true),
            ...eye('os', true),
          },
        },
      ],
    },
    {
      name: 'exams',
      table: t('exams'),
      key: 'exam_id',
      watermark: wm,
      records: [
        {
          type: 'eye-exam-observation',
          patient: PATIENT,
          occurredAt: 'exam_at',
          fields: {
            'code.system': { value: 'PS-EXAM' },
            'code.code': 'code',
            'code.display': 'description',
            eye: { column: 'eye', codes: { OD: 'right', OS: 'left', OU: 'both' } },
            value: 'value',
            unit: 'unit',
            observedAt: ts('exam_at'),
          },
        },
      ],
    },
    {
      name: 'appointments',
      table: t('appointments'),
      key: 'appt_id',
      watermark: wm,
      records: [
        {
          type: 'appointment',
          patient: PATIENT,
          fields: {
            'appointmentId.system': { value: 'PS' },
            'appointmentId.value': { column: 'appt_id', transform: 'string' },
            status: {
              column: 'status',
              codes: {
                SCHEDULED: 'booked',
                CONFIRMED: 'booked',
                ARRIVED: 'arrived',
                COMPLETED: 'fulfilled',
                CANCELLED: 'cancelled',
                NOSHOW: 'noshow',
                PENDING: 'pending',
              },
            },
            start: ts('starts_at'),
            durationMinutes: num('duration_min'),
            'visitType.code': 'visit_code',
            'visitType.display': 'visit_desc',
            'provider.system': { value: 'NPI' },
            'provider.value': 'provider_npi',
            'location.code': 'location_code',
          },
        },
      ],
    },
    {
      name: 'charges',
      table: t('charges'),
      key: 'charge_id',
      watermark: wm,
      records: [
        {
          type: 'charge',
          patient: PATIENT,
          occurredAt: 'service_date',
          fields: {
            'code.system': { value: 'CPT' },
            'code.code': 'cpt_code',
            'code.display': 'description',
            transactionType: { value: 'CG' },
            amount: cents('amount_cents'),
            currency: { value: 'USD' },
            quantity: num('quantity'),
            serviceDate: date('service_date'),
          },
        },
      ],
    },
    {
      name: 'payments',
      table: t('payments'),
      key: 'payment_id',
      watermark: wm,
      records: [
        {
          type: 'payment',
          patient: PATIENT,
          occurredAt: 'received_at',
          fields: {
            amount: cents('amount_cents'),
            currency: { value: 'USD' },
            method: { column: 'method', transform: 'lower' },
            receivedAt: ts('received_at'),
          },
        },
      ],
    },
    {
      name: 'frames',
      table: t('frames'),
      key: 'frame_id',
      watermark: wm,
      records: [
        {
          type: 'inventory-item',
          fields: {
            sku: { template: 'FRAME-{frame_id}' },
            kind: { value: 'frame' },
            upc: 'upc',
            manufacturer: 'manufacturer',
            collection: 'collection',
            model: 'model',
            color: 'color',
            eyeSize: num('eye_size'),
            bridge: num('bridge'),
            temple: num('temple'),
            quantity: num('quantity'),
            price: cents('price_cents'),
          },
        },
      ],
    },
    {
      name: 'lenses',
      table: t('lenses'),
      key: 'lens_id',
      watermark: wm,
      records: [
        {
          type: 'inventory-item',
          fields: {
            sku: 'sku',
            kind: { value: 'lens' },
            manufacturer: 'manufacturer',
            model: 'design',
            material: 'material',
            index: num('lens_index'),
            quantity: num('quantity'),
            price: cents('price_cents'),
          },
        },
      ],
    },
    {
      name: 'deletions',
      table: t('deletions'),
      key: 'deletion_id',
      watermark: { column: 'deletion_id', kind: 'key' },
      records: [],
      tombstone: {
        keyColumn: 'row_id',
        tableColumn: 'table_name',
        targets: {
          patients: 'patients',
          insurance: 'insurance',
          spectacle_rx: 'spectacle_rx',
          contact_lens_rx: 'contact_lens_rx',
          exams: 'exams',
          appointments: 'appointments',
          charges: 'charges',
          payments: 'payments',
          frames: 'frames',
          lenses: 'lenses',
        },
      },
    },
  ];
}
