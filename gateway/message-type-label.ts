/**
 * The message type as a metric label. A type comes from input (MSH-9, a FHIR resourceType), so a
 * sender can make any number of them; each distinct label value is a new Prometheus series that
 * is never forgotten, so a flood of invented types grows `/metrics` without bound. Only
 * types the gateway knows are named — the HL7 v2 message codes and trigger events of the standard
 * (tables 0076 and 0003) for the families it maps or commonly sees, the fixed texts its mappers
 * use, and the FHIR R4 resource types — and every other type is counted under `other`.
 */

const range = (prefix: string, from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => `${prefix}${String(from + i).padStart(2, '0')}`);

/** Standard trigger events (table 0003) per message code (table 0076). */
const HL7_EVENTS: Record<string, readonly string[]> = {
  ADT: range('A', 1, 62),
  SIU: range('S', 12, 26),
  SRM: range('S', 1, 11),
  SRR: range('S', 1, 11),
  ORU: ['R01', 'R30', 'R31', 'R32', 'R40', 'R41', 'W01'],
  ORM: ['O01'],
  ORR: ['O02'],
  OML: ['O21', 'O33', 'O35', 'O39'],
  ORL: ['O22', 'O34', 'O36', 'O40'],
  OMG: ['O19'],
  ORG: ['O20'],
  MDM: range('T', 1, 11),
  DFT: ['P03', 'P11'],
  BAR: ['P01', 'P02', 'P05', 'P06', 'P10', 'P12'],
  ACK: [],
  QRY: ['A19', 'Q01', 'Q02'],
  QBP: ['Q11', 'Q21', 'Q22', 'Q23'],
  RSP: ['K11', 'K21', 'K22', 'K23'],
  MFN: ['M01', 'M02', 'M03', 'M04', 'M05', 'M08'],
  VXU: ['V04'],
  RDE: ['O11'],
  RAS: ['O17'],
  PPR: ['PC1', 'PC2', 'PC3'],
  REF: ['I12', 'I13', 'I14'],
  RRI: ['I12'],
};

/** FHIR R4 resource types a practice system may send. */
const FHIR_TYPES = [
  'Patient',
  'Appointment',
  'VisionPrescription',
  'Practitioner',
  'PractitionerRole',
  'Organization',
  'Location',
  'Encounter',
  'Observation',
  'Condition',
  'Procedure',
  'Coverage',
  'Claim',
  'ClaimResponse',
  'ExplanationOfBenefit',
  'Invoice',
  'ChargeItem',
  'Account',
  'Schedule',
  'Slot',
  'DocumentReference',
  'DiagnosticReport',
  'ServiceRequest',
  'MedicationRequest',
  'AllergyIntolerance',
  'Immunization',
  'CarePlan',
  'Device',
  'RelatedPerson',
  'Person',
  'Bundle',
  'OperationOutcome',
  'Provenance',
  'AuditEvent',
  'Consent',
  'Communication',
  'Task',
  'Questionnaire',
  'QuestionnaireResponse',
];

/** Fixed texts the mappers give as the unmapped kind. */
const MAPPER_TEXTS = ['ORU^R01 (no eye-exam results)', 'unknown'];

const KNOWN: ReadonlySet<string> = new Set([
  ...Object.entries(HL7_EVENTS).flatMap(([code, events]) => [`${code}^?`, ...events.map((e) => `${code}^${e}`)]),
  ...FHIR_TYPES,
  ...MAPPER_TEXTS,
]);

/** The label under which a message type is counted: itself when known, else `other`. */
export function messageTypeLabel(type: string): string {
  return KNOWN.has(type) ? type : 'other';
}

/** How many label values messageTypeLabel can give (for tests and the metric's bound). */
export const MESSAGE_TYPE_LABELS = KNOWN.size + 1;
