/**
 * Canonical eyewear-ML records (ARCHITECTURE.md "Canonical records"). The fixed fields are the
 * cloud's contract; the JSON Schema in canonical-schema.ts is the runtime truth both sides validate.
 */

export const RecordType = {
  patient: 'patient',
  coverage: 'coverage',
  spectacleRx: 'spectacle-rx',
  contactLensRx: 'contact-lens-rx',
  eyeExamObservation: 'eye-exam-observation',
  appointment: 'appointment',
  provider: 'provider',
  charge: 'charge',
  payment: 'payment',
  claim: 'claim',
  inventoryItem: 'inventory-item',
  clinicalDocument: 'clinical-document',
  organization: 'organization',
  location: 'location',
  schedule: 'schedule',
  slot: 'slot',
  invoice: 'invoice',
} as const;
export type RecordType = (typeof RecordType)[keyof typeof RecordType];

export const RecordOp = { upsert: 'upsert', delete: 'delete', merge: 'merge' } as const;
export type RecordOp = (typeof RecordOp)[keyof typeof RecordOp];

export const SCHEMA_VERSION = '1.0';

export interface Identifier {
  system: string;
  value: string;
  type?: string;
}
export interface Reference {
  system: string;
  value: string;
}

export interface RecordSource {
  /** The sending system, e.g. `EPIC^HOSP` from MSH-3/MSH-4. */
  system: string;
  /** The adapter kind: `hl7v2`, `fhir`, `sql`, `file`. */
  adapter: string;
  /** The record's id in the source (MRN, appointment id, …). */
  sourceId: string;
  /** The source message's id (MSH-10) where there is one. */
  messageId?: string;
}

export interface CanonicalRecord<D = Record<string, unknown>> {
  id: string;
  type: RecordType;
  schemaVersion: string;
  op: RecordOp;
  tenantId: string;
  practiceId: string;
  gatewayId: string;
  source: RecordSource;
  occurredAt: string;
  observedAt: string;
  data: D;
}

export interface PatientData {
  identifiers: Identifier[];
  name?: { family?: string; given?: string[]; prefix?: string; suffix?: string };
  birthDate?: string;
  sex?: 'female' | 'male' | 'other' | 'unknown';
  addresses?: Array<{ use?: string; lines?: string[]; city?: string; state?: string; postalCode?: string; country?: string }>;
  phones?: Array<{ use?: string; value: string }>;
  emails?: string[];
  deceased?: boolean;
  /** For `merge` records: the retired identifiers folded into this patient. */
  mergedFrom?: Reference[];
}

export interface AppointmentData {
  appointmentId: Identifier;
  patient: Reference;
  status: 'booked' | 'arrived' | 'fulfilled' | 'cancelled' | 'noshow' | 'pending';
  start: string;
  end?: string;
  durationMinutes?: number;
  visitType: { code: string; display?: string };
  provider?: Reference & { display?: string };
  location?: { code: string; display?: string };
  reason?: string;
}
