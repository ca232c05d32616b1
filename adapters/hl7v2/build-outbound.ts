/**
 * Canonical data → HL7 v2.5.1 messages for the PMS (the outbound direction): SIU^S12/S14/S15 from
 * an appointment (book, update, cancel) and DFT^P03 from a charge. Every value is escaped with the
 * message's delimiters; times keep their offsets. A message built here maps back, through our own
 * mappers, to the data it was built from (the tests check that round trip).
 */
import type { AppointmentData, Reference } from '../canonical/types.ts';
import { escapeHl7 } from './hl7-message.ts';
import { hl7Now } from './hl7-datetime.ts';

const D = { field: '|', component: '^', repetition: '~', escape: '\\', subcomponent: '&' };
const e = (v: string | number | undefined) => (v === undefined ? '' : escapeHl7(String(v), D));
const comps = (...parts: Array<string | number | undefined>) => parts.map(e).join('^').replace(/\^+$/, '');

export interface OutboundHeader {
  controlId: string;
  nowMs: number;
  sendingApplication: string;
  sendingFacility: string;
  receivingApplication: string;
  receivingFacility: string;
}

/** ISO 8601 (date or instant with offset) → HL7 DTM (`YYYYMMDD[HHMMSS][+ZZZZ]`). */
export function toHl7Time(iso: string): string {
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2}))?(?:\.\d+)?(Z|[+-]\d{2}:\d{2})?)?$/.exec(iso);
  if (!m) throw new Error('not an ISO 8601 date or instant');
  const [, y, mo, d, h, mi, s, off] = m;
  if (!h) return `${y}${mo}${d}`;
  const zone = !off ? '' : off === 'Z' ? '+0000' : off.replace(':', '');
  return `${y}${mo}${d}${h}${mi}${s ?? '00'}${zone}`;
}

function msh(h: OutboundHeader, type: string): string {
  return [
    'MSH',
    '^~\\&',
    e(h.sendingApplication),
    e(h.sendingFacility),
    e(h.receivingApplication),
    e(h.receivingFacility),
    hl7Now(h.nowMs),
    '',
    type,
    e(h.controlId),
    'P',
    '2.5.1',
  ].join('|');
}

function pid(patient: Reference): string {
  return ['PID', '1', '', comps(patient.value, '', '', patient.system, 'MR')].join('|');
}

export const SIU_EVENT = { book: 'S12', update: 'S14', cancel: 'S15' } as const;
export type AppointmentAction = keyof typeof SIU_EVENT;

const FILLER_STATUS: Record<AppointmentData['status'], string> = {
  booked: 'Booked',
  arrived: 'Started',
  fulfilled: 'Complete',
  cancelled: 'Cancelled',
  noshow: 'Noshow',
  pending: 'Pending',
};

/** SIU from a canonical appointment: SCH, PID, AIS (service, start, duration), AIP, AIL. */
export function buildSiu(h: OutboundHeader, action: AppointmentAction, a: AppointmentData): string {
  const event = SIU_EVENT[action];
  const start = toHl7Time(a.start);
  const duration = a.durationMinutes ?? (a.end ? Math.round((Date.parse(a.end) - Date.parse(a.start)) / 60_000) : undefined);
  const sch: string[] = ['SCH', comps(a.appointmentId.value, a.appointmentId.system), comps(a.appointmentId.value, a.appointmentId.system)];
  sch[7] = comps(a.reason ?? a.visitType.display ?? a.visitType.code);
  sch[8] = comps(a.visitType.code, a.visitType.display);
  sch[9] = e(duration);
  sch[10] = duration !== undefined ? 'MIN' : '';
  sch[11] = comps('', '', duration, start, a.end ? toHl7Time(a.end) : undefined);
  sch[25] = e(action === 'cancel' ? 'Cancelled' : FILLER_STATUS[a.status]);
  const segs = [msh(h, `SIU^${event}^SIU_S12`), Array.from(sch, (x) => x ?? '').join('|'), pid(a.patient)];
  segs.push(
    ['AIS', '1', '', comps(a.visitType.code, a.visitType.display), start, '', '', e(duration), duration !== undefined ? 'MIN' : ''].join(
      '|',
    ),
  );
  // XCN: id^family(the display name)^…^assigning authority (component 9)
  if (a.provider)
    segs.push(
      [
        'AIP',
        '1',
        '',
        comps(a.provider.value, (a.provider as { display?: string }).display ?? '', '', '', '', '', '', '', a.provider.system),
      ].join('|'),
    );
  if (a.location) segs.push(['AIL', '1', '', comps(a.location.code, '', '', '', '', '', '', '', a.location.display)].join('|'));
  return segs.join('\r');
}

export interface ChargeData {
  patient: Reference;
  code: { code: string; system?: string; display?: string };
  amount?: number;
  currency?: string;
  quantity?: number;
  serviceDate?: string;
  transactionId?: string;
}

const SYSTEM_CODES: Record<string, string> = {
  'http://www.ama-assn.org/go/cpt': 'C4',
  'urn:oid:2.16.840.1.113883.6.285': 'HCPCS',
  'http://snomed.info/sct': 'SCT',
};

/** DFT^P03 with one FT1 (a charge). */
export function buildDft(h: OutboundHeader, c: ChargeData): string {
  const ft1: string[] = ['FT1', '1', e(c.transactionId ?? h.controlId)];
  ft1[4] = c.serviceDate ? toHl7Time(c.serviceDate) : '';
  ft1[6] = 'CG';
  ft1[7] = comps(c.code.code, c.code.display, c.code.system ? (SYSTEM_CODES[c.code.system] ?? c.code.system) : undefined);
  ft1[10] = e(c.quantity);
  ft1[11] = c.amount === undefined ? '' : [e(c.amount), e(c.currency)].filter(Boolean).join('&');
  return [
    msh(h, 'DFT^P03^DFT_P03'),
    ['EVN', 'P03', hl7Now(h.nowMs)].join('|'),
    pid(c.patient),
    Array.from(ft1, (x) => x ?? '').join('|'),
  ].join('\r');
}

export interface LensOrderData {
  orderId: string;
  patient: Reference;
  /** A spectacle Rx as the canonical record holds it. */
  rx: { cylinderConvention: 'minus' | 'plus'; right: EyeRxLike; left: EyeRxLike; binocularPd?: number };
  /** Frame and lens details, free text per line (e.g. "Frame: ACME 52-18-140 Black"). */
  notes?: string[];
  orderedAt?: string;
}

interface EyeRxLike {
  sphere: number;
  cylinder?: number;
  axis?: number;
  add?: number;
  prisms?: Array<{ amount: number; base: string }>;
  pd?: number;
}

const BASE_CODE: Record<string, string> = { up: 'BU', down: 'BD', in: 'BI', out: 'BO' };

/**
 * ORM^O01 for a spectacle lens order: ORC (new order), OBR (lens order), one OBX per Rx value and
 * eye, written with the same plain codes and OD/OS laterality (OBX-20) that our ORU mapping reads,
 * and NTE lines for frame and lens details.
 */
export function buildLensOrder(h: OutboundHeader, o: LensOrderData): string {
  const when = o.orderedAt ? toHl7Time(o.orderedAt) : hl7Now(h.nowMs);
  const segs = [
    msh(h, 'ORM^O01^ORM_O01'),
    pid(o.patient),
    ['ORC', 'NW', e(o.orderId), '', '', '', '', '', '', when].join('|'),
    ['OBR', '1', e(o.orderId), '', comps('LENS', 'Spectacle lens order'), '', '', when].join('|'),
  ];
  let n = 0;
  const obx = (code: string, display: string, type: 'NM' | 'ST', value: string | number, eye: 'OD' | 'OS' | 'OU') => {
    const f: string[] = ['OBX', String(++n), type, comps(code, display), '', e(value)];
    f[11] = 'F';
    f[20] = eye;
    segs.push(Array.from(f, (x) => x ?? '').join('|'));
  };
  for (const [eye, rx] of [
    ['OD', o.rx.right],
    ['OS', o.rx.left],
  ] as const) {
    obx('SPH', 'Sphere', 'NM', rx.sphere, eye);
    if (rx.cylinder !== undefined) obx('CYL', 'Cylinder', 'NM', rx.cylinder, eye);
    if (rx.axis !== undefined) obx('AXIS', 'Axis', 'NM', rx.axis, eye);
    if (rx.add !== undefined) obx('ADD', 'Add', 'NM', rx.add, eye);
    const prism = rx.prisms?.[0];
    if (prism) {
      obx('PRISM', 'Prism', 'NM', prism.amount, eye);
      obx('BASE', 'Prism base', 'ST', BASE_CODE[prism.base] ?? prism.base, eye);
    }
    if (rx.pd !== undefined) obx('PD', 'Pupillary distance', 'NM', rx.pd, eye);
  }
  if (o.rx.binocularPd !== undefined) obx('PD', 'Pupillary distance', 'NM', o.rx.binocularPd, 'OU');
  (o.notes ?? []).forEach((line, i) => segs.push(['NTE', String(i + 1), 'L', e(line)].join('|')));
  return segs.join('\r');
}
