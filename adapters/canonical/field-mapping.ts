/**
 * Declarative field mapping: a flat source row (a database row, a CSV row, a JSON object) to the
 * `data` of canonical records, as data a technician can read and edit. Used by the SQL profiles
 * (Practice Studio's and the generic one) and by the file profiles.
 *
 *   fields:
 *     identifiers[0].system: { value: PS }
 *     identifiers[0].value: patient_no            # a column
 *     name.given[0]: { column: first_name, transform: trim }
 *     birthDate: { column: dob, transform: date, dateFormat: MM/DD/YYYY }
 *     sex: { column: gender, codes: { M: male, F: female }, default: unknown }
 *     amount: { column: amount_cents, transform: number, scale: 0.01 }
 *     reason: { template: "{visit_code} {visit_note}" }
 */
import { compactInstant } from './local-time.ts';
import { normaliseEye, parseDiopter, type EyeRx } from './rx-normalize.ts';
import type { RecordType } from './types.ts';

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

/** A date's text to `YYYY-MM-DD`: ISO, else the format given (or YYYYMMDD); undefined when it is not a date. */
export function toDate(v: unknown, format?: string): string | undefined {
  const t = text(v).trim();
  if (format !== undefined && !Object.hasOwn(FORMAT_ORDER, format)) return toDateByRegex(t, format);
  // by hand, the same as the regular expressions above: no match arrays and group objects per row
  const iso = isoDatePrefix(t);
  if (iso !== undefined && !format) return iso;
  let out = format ? datePrefix(t, FORMAT_ORDER[format as keyof typeof FORMAT_ORDER]) : undefined;
  if (out === undefined && iso === undefined) out = datePrefix(t, 'ymd8');
  if (out === undefined) return iso;
  return Number.isNaN(Date.parse(out)) ? undefined : out;
}

function toDateByRegex(t: string, format?: string): string | undefined {
  const iso = /^(\d{4}-\d{2}-\d{2})/.exec(t);
  if (iso && !format) return iso[1];
  const m = (format ? DATE_FORMATS[format] : undefined)?.exec(t) ?? (iso ? undefined : DATE_FORMATS.YYYYMMDD.exec(t));
  if (!m?.groups) return iso?.[1];
  const { y, m: mo, d } = m.groups;
  const out = `${y}-${mo.padStart(2, '0')}-${d.padStart(2, '0')}`;
  return Number.isNaN(Date.parse(out)) ? undefined : out;
}

/** The order of the parts of each format in DATE_FORMATS, and its separator. */
const FORMAT_ORDER = { YYYYMMDD: 'ymd8', 'MM/DD/YYYY': 'mdy/', 'DD/MM/YYYY': 'dmy/', 'DD.MM.YYYY': 'dmy.', 'YYYY/MM/DD': 'ymd/' } as const;

/** How many ASCII digits (at most `max`) start at `from`. */
function digitsAt(t: string, from: number, max: number): number {
  let n = 0;
  while (n < max && from + n < t.length) {
    const c = t.charCodeAt(from + n);
    if (c < 48 || c > 57) break;
    n++;
  }
  return n;
}

/** `^\d{4}-\d{2}-\d{2}` */
function isoDatePrefix(t: string): string | undefined {
  return digitsAt(t, 0, 4) === 4 && t[4] === '-' && digitsAt(t, 5, 2) === 2 && t[7] === '-' && digitsAt(t, 8, 2) === 2
    ? t.slice(0, 10)
    : undefined;
}

const pad2 = (s: string) => (s.length === 1 ? `0${s}` : s);

/** The date at the start of `t` in one of the DATE_FORMATS (as `y-mm-dd`), or undefined: what its regular expression matches. */
function datePrefix(t: string, order: (typeof FORMAT_ORDER)[keyof typeof FORMAT_ORDER]): string | undefined {
  if (order === 'ymd8') return digitsAt(t, 0, 8) === 8 ? `${t.slice(0, 4)}-${t.slice(4, 6)}-${t.slice(6, 8)}` : undefined;
  const sep = order[3];
  if (order === 'ymd/') {
    // ^(\d{4})\/(\d{1,2})\/(\d{1,2})
    if (digitsAt(t, 0, 4) !== 4 || t[4] !== sep) return undefined;
    const a = digitsAt(t, 5, 2);
    if (a === 0 || t[5 + a] !== sep) return undefined;
    const b = digitsAt(t, 6 + a, 2);
    if (b === 0) return undefined;
    return `${t.slice(0, 4)}-${pad2(t.slice(5, 5 + a))}-${pad2(t.slice(6 + a, 6 + a + b))}`;
  }
  // ^(\d{1,2})<sep>(\d{1,2})<sep>(\d{4}): month first (mdy) or day first (dmy)
  const a = digitsAt(t, 0, 2);
  if (a === 0 || t[a] !== sep) return undefined;
  const b = digitsAt(t, a + 1, 2);
  if (b === 0 || t[a + 1 + b] !== sep) return undefined;
  if (digitsAt(t, a + b + 2, 4) !== 4) return undefined;
  const first = pad2(t.slice(0, a));
  const second = pad2(t.slice(a + 1, a + 1 + b));
  const y = t.slice(a + b + 2, a + b + 6);
  return order === 'mdy/' ? `${y}-${first}-${second}` : `${y}-${second}-${first}`;
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

/** Builds one record's `data` from a row, the way it was done before mappings were compiled: the fallback for the rare mappings and rows the compiled path does not take (see `compileMapping`). */
function buildDataGeneric(row: Row, m: RecordMapping, timezone: string): { data: Record<string, unknown>; problems: FieldProblem[] } {
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
  return { data: normaliseRx(out, m.type, problems), problems };
}

function normaliseRx(out: Record<string, unknown>, type: RecordType, problems: FieldProblem[]): Record<string, unknown> {
  if (type === 'spectacle-rx' || type === 'contact-lens-rx') {
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
  return out;
}

// ---- compiled mappings (issue 14: allocation per row) ----
// A mapping is compiled once (cached per mapping object): paths split, specs resolved into readers.
// A row's data is then built in its final shape: a field with no value is never set, so no pruning
// copy is needed. The output is exactly the generic path's (test/adapters/canonical/compiled-mapping.test.ts
// compares them on thousands of rows); where it could differ, the generic path is taken:
//  - at compile time: a path naming an Object prototype member (`constructor`, `toString`,
//    `__proto__`), an index that is not a plain array index (`[01]`), a path that is both a value
//    and a container, or a container that is an array for one path and an object for another;
//  - per row: a value that is an object (a Date, a Buffer, a nested JSON value: pruning
//    changes those), or an array index written past the array's end (a hole pruning closes).

/** Reads one field of a row: the value, undefined (nothing), or an Error (why it could not be read). */
type Reader = (row: Row, timezone: string) => unknown;

interface CompiledPath {
  path: string;
  /** The path's parts: `a.b[0].c` → a, b, 0, c. */
  parts: string[];
  /** Per part: its array index when its container is an array, else -1. */
  index: number[];
  /** Per part but the last: whether the container it names is an array. */
  array: boolean[];
}

interface CompiledMapping {
  fields: Record<string, FieldSpec>;
  /** False: this mapping takes the generic path (see above). */
  compiled: boolean;
  read: Array<CompiledPath & { read: Reader }>;
  constants: Array<CompiledPath & { value: unknown }>;
}

const compiledMappings = new WeakMap<RecordMapping, CompiledMapping>();
const compiledSpecs = new WeakMap<object, Reader>();
/** Readers of plain column specs (strings cannot key a WeakMap; bounded). */
const columnReaders = new Map<string, Reader>();

const TEMPLATE_COLUMN = /\{([A-Za-z0-9_$ .-]+)\}/;
const PLAIN_INDEX = /^(0|[1-9]\d{0,8})$/;

/** A spec as a reader: the same result as `readField(row, spec, timezone)`, without re-reading the spec each row. */
export function compileField(spec: FieldSpec): Reader {
  if (typeof spec === 'string') {
    const known = columnReaders.get(spec);
    if (known) return known;
    const column = spec;
    const reader: Reader = (row) => {
      const v = row[column];
      if (typeof v === 'string') {
        const t = v.trim();
        return t === '' ? undefined : t;
      }
      return v === null ? undefined : v;
    };
    if (columnReaders.size < 10_000) columnReaders.set(spec, reader);
    return reader;
  }
  const hit = compiledSpecs.get(spec);
  if (hit) return hit;
  const s = spec;
  const transforms: Transform[] = Array.isArray(s.transform) ? [...s.transform] : s.transform ? [s.transform] : [];
  const trimText = !s.transform;
  const { codes, scale } = s;
  const dflt = s.default;
  let source: (row: Row) => unknown;
  if (s.value !== undefined) {
    const value = s.value;
    source = () => value;
  } else if (s.template !== undefined) {
    // split on the columns: even entries are literal text, odd ones column names (the same as the regex replace)
    const pieces = s.template.split(new RegExp(TEMPLATE_COLUMN.source, 'g'));
    source = (row) => {
      let blank = true;
      let out = '';
      for (let i = 0; i < pieces.length; i++) {
        if (i % 2 === 0) out += pieces[i];
        else {
          const x = row[pieces[i]];
          if (!isBlank(x)) {
            blank = false;
            out += text(x);
          }
        }
      }
      return blank ? undefined : out.trim();
    };
  } else if (s.column !== undefined) {
    const column = s.column;
    source = (row) => row[column];
  } else source = () => undefined;
  const reader: Reader = (row, timezone) => {
    let v = source(row);
    for (let i = 0; i < transforms.length; i++) {
      v = applyTransform(v, transforms[i], s, timezone);
      if (v instanceof Error) return v;
    }
    if (typeof v === 'string' && trimText) v = v.trim();
    if (isBlank(v)) v = undefined;
    if (v !== undefined && codes) {
      const t = text(v);
      v = codes[t] ?? codes[t.toUpperCase()];
    }
    if (v !== undefined && scale !== undefined)
      v = typeof v === 'number' ? Math.round(v * scale * 1e6) / 1e6 : new Error('scale needs a number (add transform: number)');
    return v === undefined ? dflt : v;
  };
  compiledSpecs.set(spec, reader);
  return reader;
}

function compilePath(path: string): CompiledPath | undefined {
  const parts = path.replace(/\[(\d+)\]/g, '.$1').split('.');
  const index: number[] = [];
  const array: boolean[] = [];
  for (let i = 0; i < parts.length; i++) {
    const k = parts[i];
    // an Object.prototype name (`constructor`, `__proto__`) is found on every object: the generic path's quirks
    // (an array's own names never arise: an array is only ever indexed by digits, see compileMapping)
    if (k in Object.prototype) return undefined;
    const isIndex = /^\d+$/.test(k);
    if (isIndex && !PLAIN_INDEX.test(k)) return undefined;
    if (i > 0) array.push(isIndex);
    index.push(isIndex && i > 0 ? Number(k) : -1);
  }
  return { path, parts, index, array };
}

export function compileMapping(m: RecordMapping): CompiledMapping {
  const hit = compiledMappings.get(m);
  if (hit && hit.fields === m.fields) return hit;
  const c: CompiledMapping = { fields: m.fields, compiled: true, read: [], constants: [] };
  // what each prefix is: a value ('v'), an array ('a') or an object ('o') container
  const role = new Map<string, 'v' | 'a' | 'o'>();
  const claim = (key: string, r: 'v' | 'a' | 'o') => {
    const had = role.get(key);
    if (had !== undefined && had !== r) c.compiled = false;
    role.set(key, r);
  };
  for (const [path, spec] of Object.entries(m.fields)) {
    const p = compilePath(path);
    if (!p) {
      c.compiled = false;
      break;
    }
    let key = '';
    for (let i = 0; i < p.parts.length; i++) {
      key += `\u0000${p.parts[i]}`;
      claim(key, i === p.parts.length - 1 ? 'v' : p.array[i] ? 'a' : 'o');
    }
    if (typeof spec === 'object' && spec.value !== undefined) {
      // an object constant (not in the type, but YAML could hold one) is pruned by the generic path
      if (typeof spec.value === 'object' || typeof spec.value === 'function') c.compiled = false;
      c.constants.push({ ...p, value: spec.value });
    } else c.read.push({ ...p, read: compileField(spec) });
  }
  compiledMappings.set(m, c);
  return c;
}

/** A container's length for the hole check: an object has none (no index of it is past an end). */
const lengthOf = (o: object): number => (Array.isArray(o) ? o.length : Number.POSITIVE_INFINITY);

/** Sets a compiled path's value; false when it wrote an array index past the end (a hole). */
function put(data: Record<string, unknown>, p: CompiledPath, value: unknown): boolean {
  let o = data as Record<string, unknown>;
  const last = p.parts.length - 1;
  for (let i = 0; i < last; i++) {
    const k = p.parts[i];
    const dense = !(p.index[i] > lengthOf(o));
    const cur = o[k];
    if (cur === undefined || cur === null) {
      // the rest of the path is new: built inside out, each array at its final length (a literal, not grown)
      subtreeHole = false;
      o[k] = subtree(p, i, value);
      return dense && !subtreeHole;
    }
    o = cur as Record<string, unknown>;
  }
  const dense = !(p.index[last] > lengthOf(o));
  o[p.parts[last]] = value;
  return dense;
}

/** Set by `subtree` when it left a hole (an index past 0 in a new array): no result object per call. */
let subtreeHole = false;

/** What goes at `parts[from]` when nothing is there yet: the containers of the rest of the path, holding the value. */
function subtree(p: CompiledPath, from: number, value: unknown): unknown {
  let v = value;
  for (let j = p.parts.length - 1; j > from; j--) {
    if (p.array[j - 1]) {
      if (p.index[j] === 0) v = [v];
      else {
        const a: unknown[] = [];
        a[p.index[j]] = v;
        v = a;
        subtreeHole = true;
      }
    } else {
      const obj: Record<string, unknown> = {};
      obj[p.parts[j]] = v;
      v = obj;
    }
  }
  return v;
}

function parentOf(data: Record<string, unknown>, p: CompiledPath): boolean {
  let o: unknown = data;
  for (let i = 0; i < p.parts.length - 1; i++) {
    o = (o as Record<string, unknown> | undefined)?.[p.parts[i]];
    if (o === undefined || o === null) return false;
  }
  return true;
}

/** Builds one record's `data` from a row; problems name the field, never the value. */
export function buildData(row: Row, m: RecordMapping, timezone = 'UTC'): { data: Record<string, unknown>; problems: FieldProblem[] } {
  const c = compileMapping(m);
  if (!c.compiled) return buildDataGeneric(row, m, timezone);
  let problems: FieldProblem[] | undefined;
  let data: Record<string, unknown> = {};
  let dense = true;
  for (let i = 0; i < c.read.length; i++) {
    const f = c.read[i];
    const v = f.read(row, timezone);
    if (v === undefined) continue;
    if (typeof v === 'object' && v !== null) {
      if (v instanceof Error) {
        (problems ??= []).push({ field: f.path, problem: v.message });
        continue;
      }
      return buildDataGeneric(row, m, timezone);
    }
    if (typeof v === 'function') return buildDataGeneric(row, m, timezone);
    if (!put(data, f, v)) dense = false;
  }
  // a constant (an identifier's system, a phone's use) only joins an object that has data from the row
  for (let i = 0; i < c.constants.length; i++) {
    const k = c.constants[i];
    if (parentOf(data, k) && !put(data, k, k.value)) dense = false;
  }
  if (!dense) data = (prune(data) as Record<string, unknown> | undefined) ?? {};
  problems ??= [];
  return { data: normaliseRx(data, m.type, problems), problems };
}

/** Whether a row yields this record (`when`). */
export function rowMatches(row: Row, m: RecordMapping): boolean {
  if (!m.when) return true;
  const v = row[m.when.column];
  const t = v === null || v === undefined ? '' : text(v).trim();
  for (const x of m.when.in) if (String(x) === t) return true;
  return false;
}
