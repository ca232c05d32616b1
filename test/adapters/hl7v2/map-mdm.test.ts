import { describe, expect, it } from 'vitest';
import { createHl7Codec } from '../../../adapters/hl7v2/hl7-codec.ts';
import { createRecordValidator } from '../../../adapters/canonical/validator.ts';
import { createMapStage } from '../../../gateway/pipeline/map-stage.ts';
import { createManualClock } from '../../../gateway/clock.ts';
import type { SourceCodec } from '../../../adapters/contracts.ts';

const codec = createHl7Codec({ profile: 'generic', timezone: 'UTC' }) as SourceCodec<unknown>;
const stage = createMapStage({
  validator: createRecordValidator(),
  clock: createManualClock(),
  identity: { tenantId: 't', practiceId: 'p', gatewayId: 'g' },
});
const msg = (event: string, extra: string[]) =>
  [
    `MSH|^~\\&|EMR|CLINIC|EWML|GW|20261125093000||MDM^${event}^MDM_T02|M${event}|P|2.5.1`,
    `EVN|${event}|20261125093000`,
    'PID|1||MRN001^^^CLINIC^MR||Synthetic^Pat',
    'PV1|1|O',
    'TXA|1|OPN^Optometry note|TX|20261125090000||20261125091500|||D100^Provider^Paula^^^Dr|||DOC-77^EMR|DOC-70^EMR||||AU||AV',
    ...extra,
  ].join('\r');

describe('MDM mapping', () => {
  it('maps T02 to a clinical document with its metadata and text', () => {
    const r = stage.preview(
      codec,
      msg('T02', ['OBX|1|TX|NOTE^Note||Patient reports blur at distance.|', 'OBX|2|TX|NOTE^Note||Refraction updated; new Rx given.|']),
    );
    expect(r.issues.filter((i) => i.severity === 'error')).toEqual([]);
    expect(r.records).toHaveLength(1);
    expect(r.records[0]).toMatchObject({ type: 'clinical-document', op: 'upsert', source: { sourceId: 'EMR|DOC-77' } });
    expect(r.records[0].data).toEqual({
      patient: { system: 'CLINIC', value: 'MRN001' },
      documentId: { system: 'EMR', value: 'DOC-77' },
      documentType: { code: 'OPN', display: 'Optometry note' },
      status: 'AU',
      availability: 'AV',
      authoredAt: '2026-11-25T09:15:00Z',
      parentDocumentId: { system: 'EMR', value: 'DOC-70' },
      author: { system: 'EMR@CLINIC', value: 'D100', display: 'Dr Paula Provider' },
      contentType: 'text/plain',
      content: 'Patient reports blur at distance.\nRefraction updated; new Rx given.',
    });
  });

  it('keeps an encapsulated (ED) document as sent, and maps T11 to a delete', () => {
    const ed = stage.preview(codec, msg('T02', ['OBX|1|ED|PDF^Report||EMR^application^pdf^Base64^JVBERi0xLjQK|']));
    expect(ed.records[0].data).toMatchObject({ contentType: 'application/pdf', contentEncoding: 'base64', content: 'JVBERi0xLjQK' });
    expect(stage.preview(codec, msg('T11', [])).records[0].op).toBe('delete');
  });

  it('reports a missing TXA-12 at the field', () => {
    const r = stage.preview(codec, msg('T01', []).replace('DOC-77^EMR', ''));
    expect(r.issues[0]).toMatchObject({ severity: 'error', location: { segment: 'TXA', field: 12 } });
  });
});
