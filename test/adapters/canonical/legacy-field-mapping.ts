/**
 * FROZEN COPY, for tests and benchmarks only: adapters/canonical/field-mapping.ts's buildData and
 * map-row.ts's recordsFromRow as they were before mappings were compiled (issue 14), so the
 * compiled path can be checked against the old output exactly and measured against it in the same
 * run (test/bench/alloc-bench.ts). Do not use it in the gateway; do not "fix" it.
 */
import { compactInstant } from '../../../adapters/canonical/local-time.ts';
import { normaliseEye, parseDiopter, type EyeRx } from '../../../adapters/canonical/rx-normalize.ts';
import type { RecordType } from '../../../adapters/canonical/types.ts';

/** The transforms a field spec may name (the config schema takes its list from here). */
export const TRANSFORMS = ['trim', 'upper', 'lower', 'number', 'integer', 'boolean', 'date', 'datetime', 'diopter', 'string'] as const;
export type Transform = (typeof TRANSFORMS)[number];

export type FieldSpec =
  | string
  | {
      column?: string;
      value?: string | number | boolean;
      /** Columns in braces: `{first} {last}`. */
      template?: string;
      transform?: Transform | Transform[];
      /** Input formats for `date`/`datetime` when the text is not ISO: YYYYMMDD, MM/DD/YYYY, DD/MM/YYYY, DD.MM.YYYY, YYYY/MM/DD. */
      dateFormat?: string;
      /** A code table: source value → canonical value (looked up after transforms, as text). */
      codes?: Record<string, string | number | boolean>;
      /** Multiplies a number (unit conversion: cents → 0.01, mm → 1). */
      scale?: number;
      default?: string | number | boolean;
    };

export interface RecordMapping {
  type: RecordType;
  /** Appended to the row key to make this record's source id (a row can yield several records). */
  sourceIdSuffix?: string;
  /** The patient the record belongs to: its reference and the ordering partition. */
  patient?: { system: string; id: FieldSpec };
  /** When the record happened (defaults to the row's watermark when that is a time, else now). */
  occurredAt?: FieldSpec;
  /** Only rows where this column holds one of these values yield this record. */
  when?: { column: string; in: Array<string | number | boolean> };
  /** Data paths → fields. Rx eyes are normalised (0.25 D, axis 1–180) and stored minus-cylinder, whatever the source writes. */
  fields: Record<string, FieldSpec>;
}

export interface FieldProblem {
  field: string;
  problem: string;
}

type Row = Record<string, unknown>;

const isBlank = (v: unknown) => v === null || v === undefined || (typeof v === 'string' && v.trim() === '');

function text(v: unknown): string {
  if (Buffer.isBuffer(v)) return v.toString('hex');
  if (v instanceof Date) return v.toISOString();
  return String(v);
}

const DATE_FORMATS: Record<string, RegExp> = {
  YYYYMMDD: /^(?<y>\d{4})(?<m>\d{2})(?<d>\d{2})/,
  'MM/DD/YYYY': /^(?<m>\d{1,2})\/(?<d>\d{1,2})\/(?<y>\d{4})/,
  'DD/MM/YYYY': /^(?<d>\d{1,2})\/(?<m>\d{1,2})\/(?<y>\d{4})/,
  'DD.MM.YYYY': /^(?<d>\d{1,2})\.(?<m>\d{1,2})\.(?<y>\d{4})/,
  'YYYY/MM/DD': /^(?<y>\d{4})\/(?<m>\d{1,2})\/(?<d>\d{1,2})/,
};

export function toDate(v: unknown, format?: string): string | undefined {
  const t = text(v).trim();
  const iso = /^(\d{4}-\d{2}-\d{2})/.exec(t);
  if (iso && !format) return iso[1];
  const m = (format ? DATE_FORMATS[format] : undefined)?.exec(t) ?? (iso ? undefined : DATE_FORMATS.YYYYMMDD.exec(t));
  if (!m?.groups) return iso?.[1];
  const { y, m: mo, d } = m.groups;
  const out = `${y}-${mo.padStart(2, '0')}-${d.padStart(2, '0')}`;
  return Number.isNaN(Date.parse(out)) ? undefined : out;
}

/**
 * Database and export timestamps to ISO 8601: `2026-11-25 15:50:26.123456+00` →
 * `2026-11-25T15:50:26.123456+00:00`; `11/25/2026 9:05 AM` (with `dateFormat`) too. A time
 * without an offset is the practice's local time in `timezone` (IANA; default UTC).
 */
export function toInstant(v: unknown, format?: string, timezone = 'UTC'): string | undefined {
  if (v instanceof Date) return v.toISOString();
  const t = text(v).trim();
  const m = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)\s*(Z|[+-]\d{2}(?::?\d{2})?)?$/.exec(t);
  if (m) {
    let zone = m[3];
    if (!zone) return local(m[1], m[2], timezone);
    if (/^[+-]\d{2}$/.test(zone)) zone += ':00';
    else if (/^[+-]\d{4}$/.test(zone)) zone = `${zone.slice(0, 3)}:${zone.slice(3)}`;
    return `${m[1]}T${m[2]}${zone}`;
  }
  const d = toDate(t, format);
  if (!d) return undefined;
  const tm = /(\d{1,2}):(\d{2})(?::(\d{2}))?\s*([AaPp][Mm])?\s*$/.exec(t.replace(/^\S+/, ''));
  if (!tm) return local(d, '00:00:00', timezone);
  let h = Number(tm[1]);
  if (tm[4]) {
    const pm = tm[4].toLowerCase() === 'pm';
    if (h === 12) h = pm ? 12 : 0;
    else if (pm) h += 12;
  }
  return local(d, `${String(h).padStart(2, '0')}:${tm[2]}:${tm[3] ?? '00'}`, timezone);
}

function local(date: string, time: string, timezone: string): string | undefined {
  const [hms, frac] = time.split('.');
  const [h, mi, s = '00'] = hms.split(':');
  return compactInstant(`${date.replaceAll('-', '')}${h}${mi}${s}${frac ? `.${frac.slice(0, 4)}` : ''}`, timezone);
}

function applyTransform(v: unknown, t: Transform, spec: Exclude<FieldSpec, string>, timezone: string): unknown {
  if (isBlank(v)) return undefined;
  switch (t) {
    case 'trim':
      return text(v).trim();
    case 'upper':
      return text(v).toUpperCase();
    case 'lower':
      return text(v).toLowerCase();
    case 'string':
      return text(v);
    case 'number': {
      const n = typeof v === 'number' ? v : Number(text(v).trim().replace(',', '.'));
      return Number.isFinite(n) ? n : new Error('is not a number');
    }
    case 'integer': {
      const n = typeof v === 'number' ? v : Number(text(v).trim());
      return Number.isInteger(n) ? n : new Error('is not an integer');
    }
    case 'boolean': {
      if (typeof v === 'boolean') return v;
      const s = text(v).trim().toLowerCase();
      if (['1', 'y', 'yes', 't', 'true'].includes(s)) return true;
      if (['0', 'n', 'no', 'f', 'false'].includes(s)) return false;
      return new Error('is not a yes/no value');
    }
    case 'date':
      return toDate(v, spec.dateFormat) ?? new Error('is not a date');
    case 'datetime':
      return toInstant(v, spec.dateFormat, timezone) ?? new Error('is not a date and time');
    case 'diopter': {
      const n = typeof v === 'number' ? v : parseDiopter(text(v));
      return n ?? new Error('is not a diopter value');
    }
    default:
      return t satisfies never;
  }
}

/** One field's value from a row; an Error says why it could not be read (never with the value). */
export function readField(row: Row, spec: FieldSpec, timezone = 'UTC'): unknown {
  const s = typeof spec === 'string' ? { column: spec } : spec;
  let v: unknown;
  if (s.value !== undefined) v = s.value;
  else if (s.template !== undefined) {
    let blank = true;
    v = s.template
      .replace(/\{([A-Za-z0-9_$ .-]+)\}/g, (_, c: string) => {
        const x = row[c];
        if (!isBlank(x)) blank = false;
        return isBlank(x) ? '' : text(x);
      })
      .trim();
    if (blank) v = undefined;
  } else if (s.column !== undefined) v = row[s.column];
  for (const t of Array.isArray(s.transform) ? s.transform : s.transform ? [s.transform] : []) {
    v = applyTransform(v, t, s, timezone);
    if (v instanceof Error) return v;
  }
  if (typeof v === 'string' && !s.transform) v = v.trim();
  if (isBlank(v)) v = undefined;
  if (v !== undefined && s.codes) {
    const hit = s.codes[text(v)] ?? s.codes[text(v).toUpperCase()];
    v = hit;
  }
  if (v !== undefined && s.scale !== undefined)
    v = typeof v === 'number' ? Math.round(v * s.scale * 1e6) / 1e6 : new Error('scale needs a number (add transform: number)');
  return v === undefined ? s.default : v;
}

/** Columns a spec reads (for checking a mapping against a table before use). */
export function columnsOf(spec: FieldSpec): string[] {
  if (typeof spec === 'string') return [spec];
  if (spec.column) return [spec.column];
  if (spec.template) return [...spec.template.matchAll(/\{([A-Za-z0-9_$ .-]+)\}/g)].map((m) => m[1]);
  return [];
}

/** Sets `a.b[0].c` in an object, creating what is missing. */
function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.replace(/\[(\d+)\]/g, '.$1').split('.');
  let o: Record<string, unknown> | unknown[] = target;
  for (let i = 0; i < parts.length - 1; i++) {
    const k = parts[i];
    const nextIsIndex = /^\d+$/.test(parts[i + 1]);
    const cur = (o as Record<string, unknown>)[k];
    if (cur === undefined || cur === null) (o as Record<string, unknown>)[k] = nextIsIndex ? [] : {};
    o = (o as Record<string, unknown>)[k] as Record<string, unknown>;
  }
  (o as Record<string, unknown>)[parts[parts.length - 1]] = value;
}

function hasParent(target: Record<string, unknown>, path: string): boolean {
  const parts = path.replace(/\[(\d+)\]/g, '.$1').split('.');
  let o: unknown = target;
  for (let i = 0; i < parts.length - 1; i++) {
    o = (o as Record<string, unknown> | undefined)?.[parts[i]];
    if (o === undefined || o === null) return false;
  }
  return true;
}

/** Drops sparse array holes and empty objects left by fields that had no value. */
function prune(v: unknown): unknown {
  if (Array.isArray(v)) {
    const a = v
      .filter((x) => x !== undefined)
      .map(prune)
      .filter((x) => x !== undefined);
    return a.length ? a : undefined;
  }
  if (v && typeof v === 'object' && !Buffer.isBuffer(v)) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      const p = prune(x);
      if (p !== undefined) out[k] = p;
    }
    return Object.keys(out).length ? out : undefined;
  }
  return v;
}

/** Builds one record's `data` from a row; problems name the field, never the value. */
export function legacyBuildData(row: Row, m: RecordMapping, timezone = 'UTC'): { data: Record<string, unknown>; problems: FieldProblem[] } {
  const problems: FieldProblem[] = [];
  const data: Record<string, unknown> = {};
  const constants: Array<[string, unknown]> = [];
  for (const [path, spec] of Object.entries(m.fields)) {
    if (typeof spec === 'object' && spec.value !== undefined) {
      constants.push([path, spec.value]);
      continue;
    }
    const v = readField(row, spec, timezone);
    if (v instanceof Error) {
      problems.push({ field: path, problem: v.message });
      continue;
    }
    if (v !== undefined) setPath(data, path, v);
  }
  // a constant (an identifier's system, a phone's use) only joins an object that has data from the row
  for (const [path, v] of constants) if (hasParent(data, path)) setPath(data, path, v);
  const out = (prune(data) as Record<string, unknown> | undefined) ?? {};
  if (m.type === 'spectacle-rx' || m.type === 'contact-lens-rx') {
    for (const side of ['right', 'left'] as const) {
      const eye = out[side] as EyeRx | undefined;
      if (eye && typeof eye.sphere === 'number') {
        const r = normaliseEye(eye, 'minus');
        out[side] = r.eye;
        for (const p of r.problems) problems.push({ field: `${side}.${p.field}`, problem: p.problem });
      }
    }
    out.cylinderConvention = 'minus';
  }
  return { data: out, problems };
}

/** Whether a row yields this record (`when`). */
export function rowMatches(row: Row, m: RecordMapping): boolean {
  if (!m.when) return true;
  const v = row[m.when.column];
  return m.when.in.some((x) => String(x) === (v === null || v === undefined ? '' : text(v).trim()));
}

// ---- map-row.ts recordsFromRow, as it was (calls the frozen buildData/readField above) ----
import type { DraftRecord, MapResult } from '../../../adapters/contracts.ts';
import type { RowMapOptions } from '../../../adapters/canonical/map-row.ts';
import { deterministicId } from '../../../adapters/canonical/record-id.ts';

export function legacyRecordsFromRow(row: Record<string, unknown>, mappings: readonly RecordMapping[], o: RowMapOptions): MapResult {
  const issues: MapResult['issues'] = [];
  const records: DraftRecord[] = [];
  for (const [i, m] of mappings.entries()) {
    if (!rowMatches(row, m)) continue;
    const { data, problems } = legacyBuildData(row, m, o.timezone);
    for (const p of problems)
      issues.push({
        severity: p.problem.endsWith('rounded') ? 'warning' : 'error',
        code: 'GW_MAP_FAILED',
        message: `${o.where}.${p.field} ${p.problem}`,
      });
    let partitionKey = o.partition;
    if (m.patient) {
      const pid = readField(row, m.patient.id, o.timezone);
      if (pid === undefined || pid instanceof Error) {
        issues.push({ severity: 'error', code: 'GW_MAP_FAILED', message: `${o.where}: no patient id` });
        continue;
      }
      const ref = { system: m.patient.system, value: String(pid) };
      data.patient = ref;
      partitionKey = `patient:${ref.system}|${ref.value}`;
    }
    const occ = m.occurredAt ? readField(row, m.occurredAt, o.timezone) : undefined;
    const occurredAt =
      (typeof occ === 'string' ? toInstant(occ, undefined, o.timezone) : undefined) ??
      o.occurredFallback ??
      new Date(o.now()).toISOString();
    records.push({
      id: deterministicId(...o.idParts, String(i), o.rowHash),
      type: m.type,
      op: 'upsert',
      source: { system: o.system, adapter: o.adapter, sourceId: `${o.sourceId}${m.sourceIdSuffix ?? ''}` },
      occurredAt,
      partitionKey,
      data,
    });
  }
  return { records, issues };
}
