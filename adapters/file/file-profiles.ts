/**
 * File export profiles, as data. A profile has kinds of file; a file is read by the kinds whose
 * `match` (a regular expression on the file name) fits, each kind giving the format details and
 * the record mappings (adapters/canonical/field-mapping.ts). HL7 v2 files go through the HL7
 * mappers and FHIR files through adapters/fhir/map-fhir.ts whatever the profile.
 *
 * The column and element names below are this gateway's published export layouts (README "File
 * sources"): the vendors' own documents were not available here, so a site whose export differs
 * overrides them in config (`files[].kinds`), and `preview` shows the result on a sample first.
 */
import type { FieldSpec, RecordMapping } from '../canonical/field-mapping.ts';
import type { CsvOptions, FileFormat } from './file-formats.ts';

export interface FileKind {
  name: string;
  /** Case-insensitive regular expression on the file name. */
  match: string;
  format?: FileFormat;
  csv?: Partial<CsvOptions>;
  /** JSON/XML: the dotted path of one row (e.g. `EWExport.EWSpecRx`). */
  rowPath?: string;
  /** The row's identity in the PMS: a column, or a template of columns (`{patient_id}-{rx_date}`). Records' source ids are `<kind>/<key>`; without it, the row's position. */
  key?: string;
  records: RecordMapping[];
}

export interface FileProfile {
  name: string;
  system: string;
  kinds: FileKind[];
}

const date = (column: string, dateFormat?: string): FieldSpec => ({ column, transform: 'date', ...(dateFormat ? { dateFormat } : {}) });
const num = (column: string): FieldSpec => ({ column, transform: 'number' });
const diopter = (column: string): FieldSpec => ({ column, transform: 'diopter' });
const SEX: FieldSpec = {
  column: 'sex',
  codes: { M: 'male', F: 'female', MALE: 'male', FEMALE: 'female', O: 'other', U: 'unknown' },
  default: 'unknown',
};

function eyes(cols: (side: 'OD' | 'OS') => Record<string, string>, contact: boolean): Record<string, FieldSpec> {
  const out: Record<string, FieldSpec> = {};
  for (const [side, eye] of [
    ['OD', 'right'],
    ['OS', 'left'],
  ] as const) {
    const c = cols(side);
    out[`${eye}.sphere`] = diopter(c.sphere);
    out[`${eye}.cylinder`] = diopter(c.cylinder);
    out[`${eye}.axis`] = { column: c.axis, transform: 'integer' };
    out[`${eye}.add`] = diopter(c.add);
    if (contact) {
      out[`${eye}.baseCurve`] = num(c.baseCurve);
      out[`${eye}.diameter`] = num(c.diameter);
      out[`${eye}.brand`] = c.brand;
    } else {
      out[`${eye}.prisms[0].amount`] = num(c.prism);
      out[`${eye}.prisms[0].base`] = {
        column: c.prismBase,
        codes: { BU: 'up', BD: 'down', BI: 'in', BO: 'out', UP: 'up', DOWN: 'down', IN: 'in', OUT: 'out' },
      };
      out[`${eye}.pd`] = num(c.pd);
    }
  }
  return out;
}

/** A typical optical PMS's CSV export: one file per kind, header row, UTF-8 or Windows-1252. */
const OPTICAL_CSV: FileProfile = {
  name: 'optical-csv',
  system: 'OPTICAL-PMS',
  kinds: [
    {
      name: 'patients',
      match: '^patients?[^/]*\\.csv$',
      format: 'csv',
      key: 'patient_id',
      records: [
        {
          type: 'patient',
          patient: { system: 'OPTICAL-PMS', id: 'patient_id' },
          fields: {
            'identifiers[0].system': { value: 'OPTICAL-PMS' },
            'identifiers[0].value': 'patient_id',
            'identifiers[0].type': { value: 'MR' },
            'name.family': 'last_name',
            'name.given[0]': 'first_name',
            birthDate: date('birth_date', 'MM/DD/YYYY'),
            sex: SEX,
            'addresses[0].lines[0]': 'address',
            'addresses[0].city': 'city',
            'addresses[0].state': 'state',
            'addresses[0].postalCode': 'zip',
            'phones[0].value': 'phone',
            'emails[0]': 'email',
          },
        },
      ],
    },
    {
      name: 'spectacle-rx',
      match: '^(spectacle|glasses)_?rx[^/]*\\.csv$',
      format: 'csv',
      key: '{patient_id}-{rx_date}',
      records: [
        {
          type: 'spectacle-rx',
          patient: { system: 'OPTICAL-PMS', id: 'patient_id' },
          occurredAt: date('rx_date', 'MM/DD/YYYY'),
          fields: {
            issuedAt: date('rx_date', 'MM/DD/YYYY'),
            expiresAt: date('expires', 'MM/DD/YYYY'),
            'prescriber.system': { value: 'NPI' },
            'prescriber.value': 'doctor_npi',
            ...eyes(
              (s) => ({
                sphere: `${s}_sph`,
                cylinder: `${s}_cyl`,
                axis: `${s}_axis`,
                add: `${s}_add`,
                prism: `${s}_prism`,
                prismBase: `${s}_base`,
                pd: `${s}_pd`,
                baseCurve: '',
                diameter: '',
                brand: '',
              }),
              false,
            ),
          },
        },
      ],
    },
    {
      name: 'contact-lens-rx',
      match: '^(contact|cl)_?rx[^/]*\\.csv$',
      format: 'csv',
      key: '{patient_id}-{rx_date}',
      records: [
        {
          type: 'contact-lens-rx',
          patient: { system: 'OPTICAL-PMS', id: 'patient_id' },
          occurredAt: date('rx_date', 'MM/DD/YYYY'),
          fields: {
            issuedAt: date('rx_date', 'MM/DD/YYYY'),
            expiresAt: date('expires', 'MM/DD/YYYY'),
            'prescriber.system': { value: 'NPI' },
            'prescriber.value': 'doctor_npi',
            ...eyes(
              (s) => ({
                sphere: `${s}_sph`,
                cylinder: `${s}_cyl`,
                axis: `${s}_axis`,
                add: `${s}_add`,
                baseCurve: `${s}_bc`,
                diameter: `${s}_dia`,
                brand: `${s}_brand`,
                prism: '',
                prismBase: '',
                pd: '',
              }),
              true,
            ),
          },
        },
      ],
    },
    {
      name: 'appointments',
      match: '^appointments?[^/]*\\.csv$',
      format: 'csv',
      key: 'appointment_id',
      records: [
        {
          type: 'appointment',
          patient: { system: 'OPTICAL-PMS', id: 'patient_id' },
          fields: {
            'appointmentId.system': { value: 'OPTICAL-PMS' },
            'appointmentId.value': 'appointment_id',
            status: {
              column: 'status',
              codes: {
                SCHEDULED: 'booked',
                CONFIRMED: 'booked',
                'CHECKED IN': 'arrived',
                ARRIVED: 'arrived',
                COMPLETED: 'fulfilled',
                CANCELLED: 'cancelled',
                CANCELED: 'cancelled',
                'NO SHOW': 'noshow',
                NOSHOW: 'noshow',
              },
              default: 'booked',
            },
            start: { template: '{date} {time}', transform: 'datetime' },
            durationMinutes: num('minutes'),
            'visitType.code': 'type',
            'visitType.display': 'type_description',
            'provider.system': { value: 'NPI' },
            'provider.value': 'doctor_npi',
          },
        },
      ],
    },
    {
      name: 'frames',
      match: '^frames?[^/]*\\.csv$',
      format: 'csv',
      key: 'upc',
      records: [
        {
          type: 'inventory-item',
          fields: {
            sku: { template: 'FRAME-{upc}' },
            kind: { value: 'frame' },
            upc: 'upc',
            manufacturer: 'manufacturer',
            collection: 'collection',
            model: 'model',
            color: 'colour',
            eyeSize: num('eye_size'),
            bridge: num('bridge'),
            temple: num('temple'),
            quantity: num('quantity'),
            price: num('price'),
          },
        },
      ],
    },
    {
      name: 'lenses',
      match: '^lens(es)?[^/]*\\.csv$',
      format: 'csv',
      key: 'sku',
      records: [
        {
          type: 'inventory-item',
          fields: {
            sku: 'sku',
            kind: { value: 'lens' },
            upc: 'upc',
            manufacturer: 'manufacturer',
            model: 'style',
            material: 'material',
            quantity: num('quantity'),
            price: num('price'),
          },
        },
      ],
    },
  ],
};

/** OfficeMate/ExamWRITER XML export: spectacle Rx (`EWSpecRx`, by Rx type) and frame/lens orders (`FrameLensRx`). */
const OFFICEMATE_XML: FileProfile = {
  name: 'officemate-xml',
  system: 'OFFICEMATE',
  kinds: [
    {
      name: 'EWSpecRx',
      match: '\\.xml$',
      format: 'xml',
      rowPath: 'EWExport.EWSpecRx',
      key: '@RxID',
      records: [
        {
          type: 'spectacle-rx',
          patient: { system: 'OFFICEMATE', id: 'PatientID' },
          occurredAt: date('RxDate'),
          // only final prescriptions are prescriptions; presenting/trial Rx types are measurements
          when: { column: '@RxType', in: ['Final', 'FINAL', 'final'] },
          fields: {
            issuedAt: date('RxDate'),
            expiresAt: date('ExpirationDate'),
            'prescriber.system': { value: 'OFFICEMATE-PROVIDER' },
            'prescriber.value': 'ProviderID',
            ...eyes(
              (s) => ({
                sphere: `${s}.Sphere`,
                cylinder: `${s}.Cylinder`,
                axis: `${s}.Axis`,
                add: `${s}.Add`,
                prism: `${s}.HPrism`,
                prismBase: `${s}.HPrismBase`,
                pd: `${s}.FarPD`,
                baseCurve: '',
                diameter: '',
                brand: '',
              }),
              false,
            ),
          },
        },
      ],
    },
    {
      name: 'FrameLensRx',
      match: '\\.xml$',
      format: 'xml',
      rowPath: 'EWExport.FrameLensRx',
      key: 'OrderNumber',
      records: [
        {
          type: 'inventory-item',
          fields: {
            sku: { template: 'ORDER-{OrderNumber}-FRAME' },
            kind: { value: 'frame' },
            upc: 'Frame.UPC',
            manufacturer: 'Frame.Manufacturer',
            collection: 'Frame.Collection',
            model: 'Frame.Model',
            color: 'Frame.Color',
            eyeSize: num('Frame.EyeSize'),
            bridge: num('Frame.Bridge'),
            temple: num('Frame.Temple'),
            quantity: { value: 1 },
            lensStyle: 'Lens.Style',
            lensMaterial: 'Lens.Material',
            orderNumber: 'OrderNumber',
            patientId: 'PatientID',
          },
        },
      ],
    },
  ],
};

/** Allscripts legacy demographics export: pipe-delimited, no header, fixed column order. */
const ALLSCRIPTS: FileProfile = {
  name: 'allscripts-legacy',
  system: 'ALLSCRIPTS',
  kinds: [
    {
      name: 'demographics',
      match: '\\.(txt|dat|psv)$',
      format: 'csv',
      key: 'mrn',
      csv: {
        delimiter: '|',
        header: ['mrn', 'last', 'first', 'middle', 'dob', 'sex', 'address1', 'address2', 'city', 'state', 'zip', 'phone'],
      },
      records: [
        {
          type: 'patient',
          patient: { system: 'ALLSCRIPTS', id: 'mrn' },
          fields: {
            'identifiers[0].system': { value: 'ALLSCRIPTS' },
            'identifiers[0].value': 'mrn',
            'identifiers[0].type': { value: 'MR' },
            'name.family': 'last',
            'name.given[0]': 'first',
            'name.given[1]': 'middle',
            birthDate: date('dob', 'YYYYMMDD'),
            sex: SEX,
            'addresses[0].lines[0]': 'address1',
            'addresses[0].lines[1]': 'address2',
            'addresses[0].city': 'city',
            'addresses[0].state': 'state',
            'addresses[0].postalCode': 'zip',
            'phones[0].value': 'phone',
          },
        },
      ],
    },
  ],
};

/** eClinicalWorks P2P/SFTP export: CSV with eCW's column names, patients and appointments. */
const ECLINICALWORKS: FileProfile = {
  name: 'eclinicalworks',
  system: 'ECW',
  kinds: [
    {
      name: 'patients',
      match: 'pat[^/]*\\.csv$',
      format: 'csv',
      key: 'PatientID',
      records: [
        {
          type: 'patient',
          patient: { system: 'ECW', id: 'PatientID' },
          fields: {
            'identifiers[0].system': { value: 'ECW' },
            'identifiers[0].value': 'PatientID',
            'identifiers[1].system': { value: 'ECW-ACCOUNT' },
            'identifiers[1].value': 'AccountNo',
            'name.family': 'LastName',
            'name.given[0]': 'FirstName',
            birthDate: date('DOB', 'MM/DD/YYYY'),
            sex: { column: 'Sex', codes: { male: 'male', female: 'female', MALE: 'male', FEMALE: 'female' }, default: 'unknown' },
            'phones[0].value': 'HomePhone',
            'emails[0]': 'Email',
            'addresses[0].lines[0]': 'Address1',
            'addresses[0].city': 'City',
            'addresses[0].state': 'State',
            'addresses[0].postalCode': 'Zip',
          },
        },
      ],
    },
    {
      name: 'appointments',
      match: 'appt[^/]*\\.csv$',
      format: 'csv',
      key: 'EncounterID',
      records: [
        {
          type: 'appointment',
          patient: { system: 'ECW', id: 'PatientID' },
          fields: {
            'appointmentId.system': { value: 'ECW' },
            'appointmentId.value': 'EncounterID',
            start: { template: '{ApptDate} {ApptStartTime}', transform: 'datetime', dateFormat: 'MM/DD/YYYY' },
            status: {
              column: 'Status',
              codes: { PEN: 'pending', CHK: 'arrived', ARR: 'arrived', CHKOUT: 'fulfilled', CANC: 'cancelled', N_S: 'noshow' },
              default: 'booked',
            },
            'visitType.code': 'VisitType',
            reason: 'Reason',
            'provider.system': { value: 'ECW-PROVIDER' },
            'provider.value': 'DoctorID',
          },
        },
      ],
    },
  ],
};

export const FILE_PROFILES: Record<string, FileProfile> = {
  [OPTICAL_CSV.name]: OPTICAL_CSV,
  [OFFICEMATE_XML.name]: OFFICEMATE_XML,
  [ALLSCRIPTS.name]: ALLSCRIPTS,
  [ECLINICALWORKS.name]: ECLINICALWORKS,
};
export const FILE_PROFILE_NAMES = [
  'optical-csv',
  'officemate-xml',
  'allscripts-legacy',
  'eclinicalworks',
  'fhir-r4',
  'hl7v2',
  'generic',
] as const;
