/**
 * What a FHIR server says it can do (its CapabilityStatement at `/metadata`, FHIR R4 §C.2): the
 * FHIR version, the software, and per resource the interactions and search parameters. The
 * gateway reads only R4 (4.0.x): any other version is refused with the version found, since
 * DSTU2/STU3 and R5 resources differ in the fields the mappings read.
 *
 * `chooseStrategy` picks each resource's sync strategy from the vendor profile's list, taking the
 * first one this server supports: `_lastUpdated` only where the statement lists it for that
 * resource (Epic lists it on none), a date parameter only where listed, bulk only where the server
 * declares `$export` and the vendor accepts bulk integrations.
 */
import type { FhirResourceName } from '../../config/fhir-schema.ts';
import { ApiError } from '../http/http-error.ts';
import { strategiesFor, type SyncStrategy, type VendorProfile } from './vendor-profiles.ts';

export interface ResourceCapability {
  interactions: string[];
  searchParams: string[];
}

export interface FhirCapabilities {
  fhirVersion: string;
  software: string;
  resources: Record<string, ResourceCapability>;
  /** System and type level operations the server names (e.g. `export`). */
  operations: string[];
}

type R = Record<string, unknown>;
const arr = (v: unknown): R[] => (Array.isArray(v) ? (v as R[]) : []);

export function parseCapabilities(body: unknown): FhirCapabilities {
  const cs = body as R | undefined;
  if (cs?.resourceType !== 'CapabilityStatement')
    throw new ApiError('GW_API_REFUSED', '/metadata did not answer with a CapabilityStatement', {
      detail: { resourceType: String(cs?.resourceType ?? 'none') },
    });
  const fhirVersion = typeof cs.fhirVersion === 'string' ? cs.fhirVersion : 'unknown';
  const sw = cs.software as R | undefined;
  const software = [sw?.name, sw?.version].filter((x) => typeof x === 'string').join(' ') || 'unknown';
  const resources: Record<string, ResourceCapability> = {};
  const operations = new Set<string>();
  for (const rest of arr(cs.rest).filter((r) => r.mode === undefined || r.mode === 'server')) {
    for (const op of arr(rest.operation)) if (typeof op.name === 'string') operations.add(op.name.replace(/^\$/, ''));
    for (const r of arr(rest.resource)) {
      if (typeof r.type !== 'string') continue;
      for (const op of arr(r.operation)) if (typeof op.name === 'string') operations.add(op.name.replace(/^\$/, ''));
      resources[r.type] = {
        interactions: arr(r.interaction)
          .map((i) => i.code)
          .filter((c): c is string => typeof c === 'string'),
        searchParams: arr(r.searchParam)
          .map((p) => p.name)
          .filter((n): n is string => typeof n === 'string'),
      };
    }
    // search parameters every resource supports (R4 rest.searchParam)
    const common = arr(rest.searchParam)
      .map((p) => p.name)
      .filter((n): n is string => typeof n === 'string');
    if (common.length) for (const c of Object.values(resources)) c.searchParams.push(...common.filter((n) => !c.searchParams.includes(n)));
  }
  return { fhirVersion, software, resources, operations: [...operations] };
}

/** Throws GW_FHIR_NOT_R4 unless the server is FHIR R4 (4.0.x). */
export function requireR4(c: FhirCapabilities): void {
  if (!/^4\.0(\.\d+)?$/.test(c.fhirVersion))
    throw new ApiError('GW_FHIR_NOT_R4', `the server speaks FHIR ${c.fhirVersion}, not R4 (4.0.1): point baseUrl at its R4 endpoint`, {
      detail: { fhirVersion: c.fhirVersion },
    });
}

export function supportsBulk(c: FhirCapabilities, p: VendorProfile): boolean {
  return p.bulk !== 'refused' && c.operations.includes('export');
}

/** Why bulk export cannot run with these settings (undefined when it can). */
export function bulkProblem(
  c: FhirCapabilities,
  p: VendorProfile,
  level: 'system' | 'group' | 'patient',
  groupId: string,
): string | undefined {
  if (p.bulk === 'refused') return `${p.label} does not accept bulk export integrations`;
  if (!c.operations.includes('export')) return 'the server names no $export operation';
  if (level === 'group' && !groupId) return `${p.label} exports by Group: set bulk.groupId (the Group the practice's patients are in)`;
  return undefined;
}

/**
 * The strategy for one resource, or the reason none fits. `bulkMode` is the config's `bulk.mode`:
 * `never` drops bulk from the list, `always` puts it first.
 */
export function chooseStrategy(
  c: FhirCapabilities,
  p: VendorProfile,
  resource: FhirResourceName,
  bulkMode: 'auto' | 'never' | 'always',
  bulkBlocked?: string,
): { strategy: SyncStrategy } | { problem: string } {
  const cap = c.resources[resource];
  let list = strategiesFor(p, resource);
  // searched only within one patient at this vendor: a backend app reads it by export alone
  if (p.searchNeedsPatient.includes(resource)) list = list.filter((s) => s.kind === 'bulk');
  if (bulkMode === 'never') list = list.filter((s) => s.kind !== 'bulk');
  if (bulkMode === 'always') list = [{ kind: 'bulk' }, ...list.filter((s) => s.kind !== 'bulk')];
  for (const s of list) {
    switch (s.kind) {
      case 'lastUpdated':
        if (cap?.interactions.includes('search-type') && cap.searchParams.includes('_lastUpdated')) return { strategy: s };
        break;
      case 'date':
        if (cap?.interactions.includes('search-type') && cap.searchParams.includes(s.param)) return { strategy: s };
        break;
      case 'bulk':
        if (supportsBulk(c, p) && !bulkBlocked) return { strategy: s };
        break;
      case 'snapshot':
        if (cap?.interactions.includes('search-type')) return { strategy: s };
        break;
      default:
        s satisfies never;
    }
  }
  if (!cap) return { problem: `the server's CapabilityStatement does not list ${resource}` };
  if (p.searchNeedsPatient.includes(resource))
    return {
      problem: `${p.label} searches ${resource} only within one patient, and bulk export is not available${bulkBlocked ? `: ${bulkBlocked}` : ''}`,
    };
  return {
    problem: `${resource} cannot be searched here (${list.map((s) => s.kind).join(', ')} not supported)${bulkBlocked && list.some((s) => s.kind === 'bulk') ? `; bulk: ${bulkBlocked}` : ''}`,
  };
}

/** A strategy as `/status` shows it. */
export const strategyLabel = (s: SyncStrategy): string => (s.kind === 'date' ? `date:${s.param}` : s.kind);
