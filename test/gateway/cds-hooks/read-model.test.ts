/** The CDS read model on a real SQLite file: what it keeps per patient, how it forgets, how it stays sealed. */
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { CanonicalRecord } from '../../../adapters/canonical/types.ts';
import { createReadModel } from '../../../gateway/cds-hooks/read-model.ts';
import { createManualClock } from '../../../gateway/clock.ts';
import { createPartitionKeyer } from '../../../gateway/crypto/partition-keyer.ts';
import { createRecordSealer } from '../../../gateway/crypto/record-sealer.ts';
import { createSilentLogger } from '../../../gateway/logger.ts';

const NOW = Date.UTC(2026, 5, 1, 12);

function record(
  type: string,
  id: string,
  data: Record<string, unknown>,
  op = 'upsert',
  occurredAt = '2026-05-01T10:00:00Z',
): CanonicalRecord {
  return {
    id,
    type: type as CanonicalRecord['type'],
    schemaVersion: '1.0',
    op: op as CanonicalRecord['op'],
    tenantId: 't',
    practiceId: 'p',
    gatewayId: 'g',
    source: { system: 'PMS@CLINIC', adapter: 'hl7v2', sourceId: id },
    occurredAt,
    observedAt: occurredAt,
    data,
  };
}
const pat = (mrn: string) => ({ system: 'CLINIC', value: mrn });
const rx = (id: string, mrn: string, issuedAt: string, extra: Record<string, unknown> = {}) =>
  record('spectacle-rx', id, {
    patient: pat(mrn),
    issuedAt,
    cylinderConvention: 'minus',
    right: { sphere: -1 },
    left: { sphere: -1 },
    ...extra,
  });
const appt = (key: string, mrn: string, start: string, status = 'booked') =>
  record('appointment', `a-${key}`, {
    appointmentId: { system: 'PMS', value: key },
    patient: pat(mrn),
    status,
    start,
    visitType: { code: 'EX', display: 'Eye exam' },
  });

function make(o: { dir?: string; maxPatients?: number; maxPending?: number; key?: number } = {}) {
  const dir = o.dir ?? mkdtempSync(join(tmpdir(), 'ewml-cds-rm-'));
  const key = Buffer.alloc(32, o.key ?? 7);
  const clock = createManualClock(NOW);
  const model = createReadModel({
    file: join(dir, 'cds-read-model.db'),
    sealer: createRecordSealer(key),
    keyer: createPartitionKeyer(key),
    clock,
    logger: createSilentLogger(),
    maxPatients: o.maxPatients ?? 1000,
    maxPending: o.maxPending,
  });
  return { dir, model, clock };
}

describe('CDS read model', () => {
  it('keeps the latest Rx of each patient: a newer one replaces it, an older one does not, a delete of it removes it', () => {
    const { model } = make();
    model.open();
    model.ingest([rx('r1', 'M1', '2025-03-01', { expiresAt: '2027-03-01' })]);
    model.ingest([rx('r0', 'M1', '2024-01-01')]);
    expect(model.lookup([pat('M1')])).toEqual({
      spectacle: { id: 'r1', issuedAt: '2025-03-01', expiresAt: '2027-03-01', occurredAt: '2026-05-01T10:00:00Z' },
      appointments: [],
    });
    model.ingest([rx('r2', 'M1', '2026-01-01')]);
    expect(model.lookup([pat('M1')])?.spectacle?.id).toBe('r2');
    // a delete of another record changes nothing; of this one, removes it (and the patient, now empty)
    model.ingest([rx('r1', 'M1', '2025-03-01', {}), { ...rx('r1', 'M1', '2025-03-01'), op: 'delete' }]);
    expect(model.lookup([pat('M1')])?.spectacle?.id).toBe('r2');
    model.ingest([{ ...rx('r2', 'M1', '2026-01-01'), op: 'delete' }]);
    expect(model.lookup([pat('M1')])).toBeUndefined();
    expect(model.stats().patients).toBe(0);
    // a cancelled prescription (FHIR status) counts as gone
    model.ingest([rx('r3', 'M2', '2026-01-01'), rx('r3', 'M2', '2026-01-01', { status: 'entered-in-error' })]);
    expect(model.lookup([pat('M2')])).toBeUndefined();
    model.close();
  });

  it('keeps upcoming booked appointments only, nearest first; a cancellation removes one', () => {
    const { model } = make();
    model.open();
    model.ingest([
      appt('A1', 'M1', '2026-06-20T10:00:00Z'),
      appt('A2', 'M1', '2026-06-10T10:00:00Z'),
      appt('A0', 'M1', '2026-05-01T10:00:00Z'), // long past: not kept
      appt('A3', 'M1', '2026-06-15T10:00:00Z', 'noshow'),
    ]);
    expect(model.lookup([pat('M1')])?.appointments.map((a) => a.key)).toEqual(['PMS|A2', 'PMS|A1']);
    model.ingest([appt('A2', 'M1', '2026-06-10T10:00:00Z', 'cancelled')]);
    expect(model.lookup([pat('M1')])?.appointments.map((a) => a.key)).toEqual(['PMS|A1']);
    model.close();
  });

  it("links a patient record's identifiers, and a newer record of that patient replaces the links", () => {
    const { model } = make();
    model.open();
    const patient = (ids: Array<{ system: string; value: string }>) => record('patient', 'CLINIC|M1', { identifiers: ids });
    model.ingest([rx('r1', 'M1', '2026-01-01'), patient([pat('M1'), { system: 'EHR', value: 'E1' }])]);
    expect(model.lookup([{ system: 'EHR', value: 'E1' }])?.spectacle?.id).toBe('r1');
    // the same value under another system is another identifier
    expect(model.lookup([{ system: 'OTHER', value: 'E1' }])).toBeUndefined();
    model.ingest([patient([pat('M1')])]);
    expect(model.lookup([{ system: 'EHR', value: 'E1' }])).toBeUndefined();
    expect(model.stats().links).toBe(1);
    model.close();
  });

  it('answers with what was committed before the lookup, even when it is still queued', () => {
    const { model } = make();
    model.open();
    model.ingest([rx('r1', 'M1', '2026-01-01')]);
    expect(model.stats().pending).toBe(1);
    expect(model.lookup([pat('M1')])?.spectacle?.id).toBe('r1');
    expect(model.stats().pending).toBe(0);
    model.close();
  });

  it('drops the patients updated longest ago past maxPatients', () => {
    const { model, clock } = make({ maxPatients: 100 });
    model.open();
    for (let i = 0; i < 130; i++) {
      clock.advance(1000);
      model.ingest([rx(`r${i}`, `M${i}`, '2026-01-01')]);
      model.lookup([pat('none')]); // writes what is queued: one patient a second
    }
    expect(model.stats()).toMatchObject({ patients: 100, evicted: 30, pending: 0, dropped: 0 });
    expect(model.lookup([pat('M29')])).toBeUndefined();
    expect(model.lookup([pat('M30')])?.spectacle?.id).toBe('r30');
    model.close();
  });

  it('counts what does not fit the queue before it opens, and writes the rest on open', () => {
    const { model } = make({ maxPending: 3 });
    model.ingest([1, 2, 3, 4, 5].map((i) => rx(`r${i}`, `M${i}`, '2026-01-01')));
    expect(model.stats()).toMatchObject({ pending: 3, dropped: 2 });
    model.open();
    expect(model.stats()).toMatchObject({ pending: 0, patients: 3 });
    model.close();
  });

  it('is a 0600 file holding no identifier or date in plaintext', () => {
    const { model, dir } = make();
    model.open();
    model.ingest([rx('r1', 'MRN777', '2026-01-02', { expiresAt: '2028-01-02' }), appt('APPT9', 'MRN777', '2026-06-20T10:00:00Z')]);
    model.close();
    const file = join(dir, 'cds-read-model.db');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const text = readFileSync(file).toString('latin1');
    for (const needle of ['MRN777', 'CLINIC', 'APPT9', '2026-01-02', '2028-01-02', 'Eye exam'])
      expect(text.includes(needle), needle).toBe(false);
  });

  it('empties itself when opened with another seal key (rows it cannot open are no answer)', () => {
    const first = make();
    first.model.open();
    first.model.ingest([rx('r1', 'M1', '2026-01-01')]);
    first.model.close();
    const other = make({ dir: first.dir, key: 9 });
    other.model.open();
    expect(other.model.stats().patients).toBe(0);
    expect(other.model.lookup([pat('M1')])).toBeUndefined();
    other.model.ingest([rx('r2', 'M1', '2026-02-01')]);
    expect(other.model.lookup([pat('M1')])?.spectacle?.id).toBe('r2');
    other.model.close();
  });
});
