/** The generic file profile: kinds declared in config, reading JSON by a row path, with transforms (dates, trimming, code tables, unit conversion, templates). */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { makeCloudKeys } from '../../support/cloud-keys.ts';
import { startHarness } from '../../support/gateway-harness.ts';
import { waitFor } from '../../support/net.ts';
import { startHttpReferenceCloud } from '../../reference-cloud/reference-cloud.ts';

it('maps JSON rows at a path with the configured transforms', async () => {
  const keys = makeCloudKeys();
  const dir = join(mkdtempSync(join(tmpdir(), 'ewml-generic-')), 'in');
  mkdirSync(dir);
  const cloud = await startHttpReferenceCloud({ privateKey: keys.privateKey });
  const h = await startHarness({
    hl7: { enabled: false },
    relay: { sink: 'https' },
    https: { url: cloud.url },
    cloud: { publicKey: keys.publicPem },
    files: [
      {
        id: 'gen',
        dir,
        profile: 'generic',
        system: 'EUROPMS',
        stableMs: 100,
        kinds: [
          {
            name: 'charges',
            match: '^charges.*\\.json$',
            format: 'json',
            rowPath: 'export.items',
            key: '{invoice}-{line}',
            records: [
              {
                type: 'charge',
                patient: { system: 'EUROPMS', id: { column: 'patient.no', transform: ['trim', 'upper'] } },
                fields: {
                  'code.system': { value: 'EUROPMS-ITEM' },
                  'code.code': { column: 'item', codes: { EXAM: '92004', FRAME: 'V2020' } },
                  'code.display': { template: '{item} ({invoice})' },
                  amount: { column: 'cents', transform: 'number', scale: 0.01 },
                  currency: { value: 'EUR' },
                  serviceDate: { column: 'date', transform: 'date', dateFormat: 'DD.MM.YYYY' },
                },
              },
            ],
          },
        ],
      },
    ] as never,
  });
  try {
    writeFileSync(
      join(dir, 'charges_nov.json'),
      JSON.stringify({
        export: {
          items: [
            { invoice: 'I7', line: 1, patient: { no: ' p-9 ' }, item: 'EXAM', cents: '12550', date: '03.11.2026' },
            { invoice: 'I7', line: 2, patient: { no: 'p-9' }, item: 'FRAME', cents: 8900, date: '03.11.2026' },
          ],
        },
      }),
    );
    await waitFor(() => cloud.store.records.size === 2, 10_000, 'two charges');
    const byId = Object.fromEntries([...cloud.store.records.values()].map((r) => [r.source.sourceId, r]));
    expect(byId['charges/I7-1'].data).toEqual({
      patient: { system: 'EUROPMS', value: 'P-9' },
      code: { system: 'EUROPMS-ITEM', code: '92004', display: 'EXAM (I7)' },
      amount: 125.5,
      currency: 'EUR',
      serviceDate: '2026-11-03',
    });
    expect(byId['charges/I7-2'].data).toMatchObject({ code: { code: 'V2020' }, amount: 89 });
    expect(byId['charges/I7-1'].source).toEqual({ system: 'EUROPMS', adapter: 'file', sourceId: 'charges/I7-1' });
  } finally {
    await h.stop();
    await cloud.stop();
  }
});
