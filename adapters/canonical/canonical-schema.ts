/**
 * The canonical JSON Schema (draft-07). The cloud and the gateway validate against this same
 * document; `adapters/canonical/canonical.schema.json` is its published copy (a test keeps the two
 * identical; `npm run docs` rewrites it).
 */
import { SCHEMA_VERSION } from './types.ts';

const str = { type: 'string', minLength: 1 } as const;
const date = { type: 'string', pattern: '^\\d{4}(-\\d{2}(-\\d{2})?)?$' } as const;
const instant = { type: 'string', pattern: '^\\d{4}-\\d{2}-\\d{2}(T\\d{2}:\\d{2}(:\\d{2}(\\.\\d+)?)?(Z|[+-]\\d{2}:\\d{2}))?$' } as const;
const ref = {
  type: 'object',
  required: ['system', 'value'],
  additionalProperties: false,
  properties: { system: str, value: str, display: str },
} as const;
const identifier = {
  type: 'object',
  required: ['system', 'value'],
  additionalProperties: false,
  properties: { system: str, value: str, type: str },
} as const;
const coding = {
  type: 'object',
  required: ['code'],
  additionalProperties: false,
  properties: { system: str, code: str, display: str },
} as const;
const quarterDiopter = { type: 'number', minimum: -40, maximum: 40, multipleOf: 0.25 } as const;
const refs = { type: 'array', items: ref } as const;
const codings = { type: 'array', items: coding } as const;
const identifiers = { type: 'array', minItems: 1, items: identifier } as const;
const address = {
  type: 'object',
  additionalProperties: false,
  properties: { use: str, lines: { type: 'array', items: str }, city: str, state: str, postalCode: str, country: str },
} as const;
const phones = {
  type: 'array',
  items: { type: 'object', required: ['value'], additionalProperties: false, properties: { use: str, value: str } },
} as const;
const emails = { type: 'array', items: str } as const;
const money = { type: 'number' } as const;

const eyeRx = {
  type: 'object',
  required: ['sphere'],
  additionalProperties: false,
  properties: {
    sphere: quarterDiopter,
    cylinder: quarterDiopter,
    axis: { type: 'integer', minimum: 1, maximum: 180 },
    add: { type: 'number', minimum: 0, maximum: 6, multipleOf: 0.25 },
    prisms: {
      type: 'array',
      items: {
        type: 'object',
        required: ['amount', 'base'],
        additionalProperties: false,
        properties: { amount: { type: 'number', minimum: 0, maximum: 30 }, base: { enum: ['up', 'down', 'in', 'out'] } },
      },
    },
    pd: { type: 'number', minimum: 10, maximum: 50 },
    baseCurve: { type: 'number', minimum: 5, maximum: 12 },
    diameter: { type: 'number', minimum: 5, maximum: 25 },
    brand: str,
    color: str,
    // how long a lens is worn before it is replaced (FHIR lensSpecification.duration): 1 month, 14 days
    replacement: {
      type: 'object',
      required: ['value', 'unit'],
      additionalProperties: false,
      properties: { value: { type: 'number', exclusiveMinimum: 0 }, unit: str },
    },
  },
} as const;

const rxData = {
  type: 'object',
  required: ['patient', 'issuedAt', 'cylinderConvention', 'right', 'left'],
  properties: {
    patient: ref,
    issuedAt: date,
    expiresAt: date,
    prescriber: ref,
    cylinderConvention: { enum: ['minus', 'plus'] },
    right: eyeRx,
    left: eyeRx,
    binocularPd: { type: 'number', minimum: 20, maximum: 90 },
    status: str,
  },
} as const;

const dataByType: Record<string, object> = {
  patient: {
    type: 'object',
    required: ['identifiers'],
    properties: {
      identifiers,
      name: {
        type: 'object',
        additionalProperties: false,
        properties: { family: str, given: { type: 'array', items: str }, prefix: str, suffix: str },
      },
      birthDate: date,
      sex: { enum: ['female', 'male', 'other', 'unknown'] },
      addresses: { type: 'array', items: address },
      phones,
      emails,
      deceased: { type: 'boolean' },
      mergedFrom: { type: 'array', items: ref },
    },
  },
  coverage: {
    type: 'object',
    required: ['patient', 'payer'],
    properties: {
      patient: ref,
      // organization: the payer's organization record (FHIR payor reference), where the source names one
      payer: { type: 'object', required: ['name'], properties: { id: str, name: str, organization: ref } },
      planName: str,
      memberId: str,
      groupNumber: str,
      subscriberRelationship: str,
      priority: { type: 'integer', minimum: 1 },
      start: date,
      end: date,
      status: str,
      coverageType: coding,
      selfPay: { type: 'boolean' },
    },
  },
  provider: {
    type: 'object',
    required: ['identifiers'],
    properties: {
      identifiers,
      name: { type: 'object', properties: { family: str, given: { type: 'array', items: str }, prefix: str, suffix: str } },
      role: str,
      active: { type: 'boolean' },
      phones,
      emails,
      qualifications: codings,
      // a practitioner's role at one organization (FHIR PractitionerRole): whose, where, as what
      roleCodes: codings,
      specialties: codings,
      practitioner: ref,
      organization: ref,
      locations: refs,
    },
  },
  organization: {
    type: 'object',
    required: ['identifiers'],
    properties: {
      identifiers,
      name: str,
      aliases: { type: 'array', items: str },
      types: codings,
      active: { type: 'boolean' },
      phones,
      emails,
      addresses: { type: 'array', items: address },
      partOf: ref,
    },
  },
  location: {
    type: 'object',
    required: ['identifiers'],
    properties: {
      identifiers,
      name: str,
      aliases: { type: 'array', items: str },
      status: { enum: ['active', 'suspended', 'inactive'] },
      mode: { enum: ['instance', 'kind'] },
      types: codings,
      physicalType: coding,
      phones,
      emails,
      address,
      managingOrganization: ref,
      partOf: ref,
    },
  },
  appointment: {
    type: 'object',
    required: ['patient', 'status', 'start', 'visitType'],
    properties: {
      appointmentId: identifier,
      patient: ref,
      status: { enum: ['booked', 'arrived', 'fulfilled', 'cancelled', 'noshow', 'pending'] },
      start: instant,
      end: instant,
      durationMinutes: { type: 'number', minimum: 0 },
      visitType: coding,
      provider: ref,
      location: coding,
      reason: str,
    },
  },
  schedule: {
    type: 'object',
    required: ['identifiers'],
    properties: {
      identifiers,
      active: { type: 'boolean' },
      serviceCategories: codings,
      serviceTypes: codings,
      specialties: codings,
      providers: refs,
      locations: refs,
      planningStart: instant,
      planningEnd: instant,
    },
  },
  // a bookable (or booked) interval of a schedule; who and where are the schedule's (provider/location when the source says)
  slot: {
    type: 'object',
    required: ['schedule', 'status', 'start', 'end'],
    properties: {
      schedule: ref,
      status: { enum: ['busy', 'free', 'busy-unavailable', 'busy-tentative', 'entered-in-error'] },
      start: instant,
      end: instant,
      serviceCategories: codings,
      serviceTypes: codings,
      specialties: codings,
      appointmentType: coding,
      overbooked: { type: 'boolean' },
      provider: ref,
      location: ref,
    },
  },
  'spectacle-rx': rxData,
  'contact-lens-rx': rxData,
  'eye-exam-observation': {
    type: 'object',
    required: ['patient', 'code', 'eye', 'value', 'observedAt'],
    properties: {
      patient: ref,
      code: coding,
      eye: { enum: ['right', 'left', 'both'] },
      value: { type: ['number', 'string'] },
      unit: str,
      observedAt: instant,
      status: str,
      method: coding,
    },
  },
  charge: {
    type: 'object',
    required: ['patient', 'code'],
    properties: {
      patient: ref,
      code: coding,
      transactionType: str,
      amount: { type: 'number' },
      currency: str,
      quantity: { type: 'number' },
      serviceDate: date,
      status: str,
      provider: ref,
      enteredAt: instant,
    },
  },
  payment: {
    type: 'object',
    required: ['patient', 'amount'],
    properties: { patient: ref, amount: { type: 'number' }, currency: str, method: str, receivedAt: instant },
  },
  claim: {
    type: 'object',
    required: ['patient', 'status'],
    properties: {
      patient: ref,
      status: str,
      total: money,
      payer: str,
      identifiers,
      use: str,
      claimType: coding,
      createdAt: date,
      currency: str,
      insurer: ref,
      provider: ref,
      coverage: ref,
      priority: str,
      itemCount: { type: 'integer', minimum: 1 },
    },
  },
  // a bill: its totals and the charges it bills (charges are records of their own)
  invoice: {
    type: 'object',
    required: ['status'],
    properties: {
      patient: ref,
      status: str,
      identifiers,
      issuedAt: instant,
      totalNet: money,
      totalGross: money,
      currency: str,
      issuer: ref,
      account: ref,
      lineItemCount: { type: 'integer', minimum: 1 },
      chargeItems: refs,
    },
  },
  'clinical-document': {
    type: 'object',
    required: ['patient', 'documentId', 'documentType'],
    properties: {
      patient: ref,
      documentId: identifier,
      documentType: coding,
      status: str,
      availability: str,
      confidentiality: str,
      authoredAt: instant,
      author: ref,
      parentDocumentId: identifier,
      contentType: str,
      contentEncoding: str,
      content: { type: 'string' },
    },
  },
  'inventory-item': {
    type: 'object',
    required: ['sku', 'kind'],
    properties: {
      sku: str,
      kind: { enum: ['frame', 'lens', 'contact-lens', 'accessory'] },
      upc: str,
      manufacturer: str,
      model: str,
      quantity: { type: 'number' },
      price: { type: 'number' },
    },
  },
};

/** One schema for every record: the envelope plus `data` chosen by `type`. */
export const canonicalRecordSchema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: `https://schemas.eyewear-ml.example/canonical-record/${SCHEMA_VERSION}`,
  title: 'eyewear-ML canonical record',
  type: 'object',
  required: ['id', 'type', 'schemaVersion', 'op', 'tenantId', 'practiceId', 'gatewayId', 'source', 'occurredAt', 'observedAt', 'data'],
  additionalProperties: false,
  properties: {
    id: { type: 'string', pattern: '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' },
    type: { enum: Object.keys(dataByType) },
    schemaVersion: { const: SCHEMA_VERSION },
    op: { enum: ['upsert', 'delete', 'merge'] },
    tenantId: str,
    practiceId: str,
    gatewayId: str,
    source: {
      type: 'object',
      required: ['system', 'adapter', 'sourceId'],
      additionalProperties: false,
      properties: { system: str, adapter: str, sourceId: str, messageId: str },
    },
    occurredAt: instant,
    observedAt: instant,
    data: { type: 'object' },
  },
  // a delete names its record by type, source.system and source.sourceId; its data may be empty
  allOf: Object.entries(dataByType).map(([type, data]) => ({
    if: { properties: { type: { const: type }, op: { enum: ['upsert', 'merge'] } } },
    then: { properties: { data } },
  })),
} as const;
