/**
 * Optical prescription normalisation (ARCHITECTURE.md "Canonical records"): sphere, cylinder and
 * add in 0.25 D steps, axis 1–180, the cylinder sign convention recorded and convertible (plus/minus
 * transposition), prisms as amount + base (up/down/in/out), PD mono or binocular.
 *
 * Transposition (standard optics): sphere' = sphere + cylinder, cylinder' = −cylinder,
 * axis' = axis ± 90 kept within 1–180. It changes how the lens is written, not the lens.
 */

export type CylinderConvention = 'minus' | 'plus';
export type PrismBase = 'up' | 'down' | 'in' | 'out';

export interface EyeRx {
  sphere: number;
  cylinder?: number;
  axis?: number;
  add?: number;
  prisms?: Array<{ amount: number; base: PrismBase }>;
  pd?: number;
  baseCurve?: number;
  diameter?: number;
  brand?: string;
}

export interface RxProblem {
  field: string;
  problem: string;
}

/** Rounds to the nearest 0.25 D; returns the value and whether it moved (a sign of a typo or a non-standard lens). */
export function quarterDiopter(v: number): number {
  return Math.round(v * 4) / 4 + 0; // + 0 turns -0 into 0
}

/** Axis into 1–180 (0 and 180 are the same meridian; 180 is the written form). */
export function normaliseAxis(axis: number): number {
  const a = ((Math.round(axis) % 180) + 180) % 180;
  return a === 0 ? 180 : a;
}

/** Writes an eye's Rx in the other cylinder convention. Without a cylinder there is nothing to transpose. */
export function transpose(eye: EyeRx): EyeRx {
  if (eye.cylinder === undefined || eye.cylinder === 0 || eye.axis === undefined) return { ...eye };
  return {
    ...eye,
    sphere: quarterDiopter(eye.sphere + eye.cylinder),
    cylinder: quarterDiopter(-eye.cylinder),
    axis: normaliseAxis(eye.axis + 90),
  };
}

/** Puts an eye's Rx into the wanted convention (from whatever its cylinder sign says). */
export function toConvention(eye: EyeRx, want: CylinderConvention): EyeRx {
  if (eye.cylinder === undefined || eye.cylinder === 0) return { ...eye };
  const is: CylinderConvention = eye.cylinder < 0 ? 'minus' : 'plus';
  return is === want ? { ...eye } : transpose(eye);
}

const BASES: Record<string, PrismBase> = {
  U: 'up',
  UP: 'up',
  BU: 'up',
  SUP: 'up',
  D: 'down',
  DOWN: 'down',
  DN: 'down',
  BD: 'down',
  INF: 'down',
  I: 'in',
  IN: 'in',
  BI: 'in',
  NASAL: 'in',
  O: 'out',
  OUT: 'out',
  BO: 'out',
  TEMPORAL: 'out',
};

/** Reads a prism base as PMSs write it: BU/BD/BI/BO, UP/DOWN/IN/OUT, U/D/I/O, nasal/temporal. */
export function parsePrismBase(text: string): PrismBase | undefined {
  return BASES[
    text
      .trim()
      .toUpperCase()
      .replace(/^BASE\s*/, '')
  ];
}

/** Parses a diopter value as written on an Rx: "+1.25", "-0.50", "PL"/"plano"/"sph" (0), "1,25". */
export function parseDiopter(text: string): number | undefined {
  const t = text.trim().toUpperCase();
  if (t === '') return undefined;
  if (t === 'PL' || t === 'PLANO' || t === 'PLANO.' || t === 'SPH' || t === 'DS' || t === 'SPHERE') return 0;
  const n = Number(t.replace(',', '.').replace(/^\+/, ''));
  return Number.isFinite(n) ? n : undefined;
}

/**
 * Normalises one eye: rounding to 0.25 D, axis into 1–180 (an axis without a cylinder is
 * dropped), the wanted cylinder convention. Problems are reported by field, never with values.
 */
export function normaliseEye(raw: EyeRx, want: CylinderConvention): { eye: EyeRx; problems: RxProblem[] } {
  const problems: RxProblem[] = [];
  const eye: EyeRx = { ...raw, sphere: quarterDiopter(raw.sphere) };
  if (eye.sphere !== raw.sphere) problems.push({ field: 'sphere', problem: 'not a multiple of 0.25 D; rounded' });
  if (raw.cylinder !== undefined) {
    eye.cylinder = quarterDiopter(raw.cylinder);
    if (eye.cylinder !== raw.cylinder) problems.push({ field: 'cylinder', problem: 'not a multiple of 0.25 D; rounded' });
    if (eye.cylinder === 0) {
      delete eye.cylinder;
      delete eye.axis;
    } else if (raw.axis === undefined) problems.push({ field: 'axis', problem: 'cylinder without an axis' });
    else eye.axis = normaliseAxis(raw.axis);
  } else if (raw.axis !== undefined) {
    delete eye.axis;
  }
  if (raw.add !== undefined) {
    eye.add = quarterDiopter(raw.add);
    if (eye.add <= 0) delete eye.add;
  }
  return { eye: toConvention(eye, want), problems };
}

/** Binocular PD from monocular ones when only those are given. */
export function binocularPd(right?: number, left?: number): number | undefined {
  return right !== undefined && left !== undefined ? Math.round((right + left) * 10) / 10 : undefined;
}
