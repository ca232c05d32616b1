/**
 * The services this gateway offers (CDS Hooks 2.0 "Discovery", `GET /cds-services`): one per hook.
 * The prefetch template asks the EHR to send the Patient with the call, so the service can find
 * its patient by the Patient's identifiers (patient-match.ts) without calling the EHR's FHIR
 * server back — the answer needs no network call at all.
 */
export const Hook = { patientView: 'patient-view', appointmentBook: 'appointment-book' } as const;
export type Hook = (typeof Hook)[keyof typeof Hook];

export interface CdsServiceDefinition {
  hook: Hook;
  id: string;
  title: string;
  description: string;
  prefetch: Record<string, string>;
}

export const CDS_SERVICES: readonly CdsServiceDefinition[] = [
  {
    hook: Hook.patientView,
    id: 'eyewear-patient-view',
    title: 'eyewear-ML optical reminders',
    description:
      "Optical-practice reminders when a chart is opened: the patient's spectacle or contact lens prescription expiring or expired, and the next optical appointment.",
    prefetch: { patient: 'Patient/{{context.patientId}}' },
  },
  {
    hook: Hook.appointmentBook,
    id: 'eyewear-appointment-book',
    title: 'eyewear-ML booking check',
    description:
      'While an appointment is booked: a prescription that expires (an eye exam may be due) and an optical appointment already booked for the patient.',
    prefetch: { patient: 'Patient/{{context.patientId}}' },
  },
];

export const serviceById = (id: string): CdsServiceDefinition | undefined => CDS_SERVICES.find((s) => s.id === id);
