/**
 * Export files from a watched folder: the built-in profiles (optical CSV in Windows-1252 with
 * quoted fields, OfficeMate XML, FHIR R4 from the public corpus, HL7 batch files), safe pickup
 * (stable size, marker files), exactly once per file (a copy is not imported again), bad files to
 * error/ with a reason, bad rows to dead letters while the rest goes on.
 */
import { appendFileSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CanonicalRecord } from '../../../adapters/canonical/types.ts';
import { makeCloudKeys } from '../../support/cloud-keys.ts';
import { corpus as sharedCorpus } from '../../support/corpus.ts';
import { startHarness, type Harness } from '../../support/gateway-harness.ts';
import { waitFor } from '../../support/net.ts';
import { startHttpReferenceCloud, type HttpReferenceCloud } from '../../reference-cloud/reference-cloud.ts';

const corpus = sharedCorpus.path('fhir');
const keys = makeCloudKeys();
const root = mkdtempSync(join(tmpdir(), 'ewml-files-'));
const dirs = {
  optical: join(root, 'optical'),
  om: join(root, 'om'),
  fhir: join(root, 'fhir'),
  hl7: join(root, 'hl7'),
  marker: join(root, 'marker'),
};
let cloud: HttpReferenceCloud;
let h: Harness;

const recs = () => [...cloud.store.records.values()] as Array<CanonicalRecord<Record<string, any>>>; // eslint-disable-line @typescript-eslint/no-explicit-any
const bySource = (sid: string) => recs().filter((r) => r.source.sourceId === sid);
const listing = (d: string) => (existsSync(d) ? readdirSync(d) : []);

beforeAll(async () => {
  for (const d of Object.values(dirs)) mkdirSync(d, { recursive: true });
  cloud = await startHttpReferenceCloud({ privateKey: keys.privateKey });
  const common = { stableMs: 300, pollMs: 100 };
  h = await startHarness(
    {
      gateway: { timezone: 'America/Chicago' },
      hl7: { enabled: false },
      relay: { sink: 'https' },
      https: { url: cloud.url },
      cloud: { publicKey: keys.publicPem },
      files: [
        { id: 'optical', dir: dirs.optical, profile: 'optical-csv', csv: { encoding: 'windows-1252' }, ...common },
        { id: 'om', dir: dirs.om, profile: 'officemate-xml', ...common },
        { id: 'fhir', dir: dirs.fhir, profile: 'fhir-r4', ...common },
        { id: 'hl7files', dir: dirs.hl7, profile: 'hl7v2', ...common },
        { id: 'marked', dir: dirs.marker, profile: 'optical-csv', marker: '.done', ...common },
      ] as never,
    },
    { logLevel: 'info' },
  );
}, 30_000);

afterAll(async () => {
  await h?.stop();
  await cloud?.stop();
});

describe('file sources: folders', () => {
  it('imports an optical PMS CSV export in Windows-1252, quoted fields and all, then moves it to processed/', async () => {
    const csv =
      [
        'patient_id,last_name,first_name,birth_date,sex,address,city,state,zip,phone,email',
        'P1,Testé,Ada,02/11/1951,F,"12 Synthetic St, Apt 4",Testville,TX,75001,555-0101,p1@example.test',
        'P2,"O""Sample",Ben,7/4/1980,M,"Line one',
        'line two",Testville,TX,75002,,',
      ].join('\r\n') + '\r\n';
    writeFileSync(join(dirs.optical, 'patients_20261125.csv'), Buffer.from(csv, 'latin1'));
    writeFileSync(
      join(dirs.optical, 'appointments.csv'),
      'appointment_id,patient_id,date,time,minutes,type,type_description,status,doctor_npi\nA1,P1,2026-12-01,09:30,30,CEE,Comprehensive exam,Scheduled,1234567893\n',
    );
    writeFileSync(
      join(dirs.optical, 'frames.csv'),
      'upc,manufacturer,collection,model,colour,eye_size,bridge,temple,quantity,price\n088800000012,Synthoptic,Classic,M-1,Tortoise,52,18,140,3,129.00\n',
    );
    writeFileSync(
      join(dirs.optical, 'spectacle_rx.csv'),
      'patient_id,rx_date,expires,doctor_npi,OD_sph,OD_cyl,OD_axis,OD_add,OD_prism,OD_base,OD_pd,OS_sph,OS_cyl,OS_axis,OS_add,OS_prism,OS_base,OS_pd\nP1,01/15/2026,01/15/2028,1234567893,-2.00,+0.50,90,+2.00,,,31.5,PL,-0.75,180,+2.00,1.0,BO,31\n',
    );
    await waitFor(() => listing(join(dirs.optical, 'processed')).length === 4, 10_000, 'four files processed');
    await waitFor(() => recs().length >= 5, 10_000, 'five records');
    const p1 = bySource('patients/P1')[0];
    expect(p1.data).toMatchObject({
      name: { family: 'Testé', given: ['Ada'] },
      birthDate: '1951-02-11',
      sex: 'female',
      addresses: [{ lines: ['12 Synthetic St, Apt 4'], city: 'Testville' }],
    });
    const p2 = bySource('patients/P2')[0];
    expect(p2.data).toMatchObject({
      name: { family: 'O"Sample' },
      birthDate: '1980-07-04',
      addresses: [{ lines: ['Line one\r\nline two'] }],
    });
    expect(p2.data.phones).toBeUndefined();
    // 09:30 in the practice's zone (America/Chicago, CST in December)
    expect(bySource('appointments/A1')[0].data).toMatchObject({
      start: '2026-12-01T09:30:00-06:00',
      status: 'booked',
      durationMinutes: 30,
      visitType: { code: 'CEE' },
    });
    expect(bySource('frames/088800000012')[0].data).toMatchObject({
      kind: 'frame',
      upc: '088800000012',
      collection: 'Classic',
      color: 'Tortoise',
      eyeSize: 52,
      bridge: 18,
      temple: 140,
      quantity: 3,
      price: 129,
    });
    // +0.50 cylinder written plus-cylinder: stored minus-cylinder (transposed)
    expect(bySource('spectacle-rx/P1-01/15/2026')[0].data).toMatchObject({
      issuedAt: '2026-01-15',
      right: { sphere: -1.5, cylinder: -0.5, axis: 180, add: 2 },
      left: { sphere: 0, cylinder: -0.75, axis: 180, prisms: [{ amount: 1, base: 'out' }] },
    });
    expect(cloud.store.invalid).toEqual([]);
  });

  it('does not import the same content twice (a copy under another name), and says so', async () => {
    const before = cloud.store.records.size;
    copyFileSync(join(dirs.optical, 'processed', 'frames.csv'), join(dirs.optical, 'frames_copy.csv'));
    await waitFor(() => listing(join(dirs.optical, 'processed')).includes('frames_copy.csv'), 10_000, 'copy processed');
    await new Promise((r) => setTimeout(r, 300));
    expect(cloud.store.records.size).toBe(before);
    expect(h.logs.some((l) => l.includes('file already imported (same content)') && l.includes('frames_copy.csv'))).toBe(true);
  });

  it('waits for a growing file to hold still, and for a marker where one is configured', async () => {
    const f = join(dirs.optical, 'lenses.csv');
    writeFileSync(f, 'sku,upc,manufacturer,style,material,quantity,price\nL-1,,Synthoptic,Single vision,CR-39,10,45.00\n');
    for (let i = 2; i <= 4; i++) {
      await new Promise((r) => setTimeout(r, 150));
      appendFileSync(f, `L-${i},,Synthoptic,Progressive,Trivex,${i},99.00\n`);
    }
    await waitFor(() => listing(join(dirs.optical, 'processed')).includes('lenses.csv'), 10_000, 'lenses processed');
    await waitFor(() => recs().filter((r) => r.source.sourceId.startsWith('lenses/')).length === 4, 5000, 'all four lens rows');

    writeFileSync(
      join(dirs.marker, 'frames.csv'),
      'upc,manufacturer,collection,model,colour,eye_size,bridge,temple,quantity,price\n077700000001,Synthoptic,Sport,S-1,Navy,50,17,135,1,99.00\n',
    );
    await new Promise((r) => setTimeout(r, 800));
    expect(bySource('frames/077700000001')).toHaveLength(0);
    writeFileSync(join(dirs.marker, 'frames.csv.done'), '');
    await waitFor(() => bySource('frames/077700000001').length === 1, 10_000, 'read after the marker');
    await waitFor(() => !existsSync(join(dirs.marker, 'frames.csv.done')), 5000, 'marker removed');
  });

  it('moves a file it cannot read to error/ with the reason, and dead-letters a bad row while importing the rest', async () => {
    writeFileSync(join(dirs.optical, 'patients_broken.csv'), 'patient_id,last_name\nP9,"never closed\n');
    await waitFor(() => listing(join(dirs.optical, 'error')).includes('patients_broken.csv.reason.txt'), 10_000, 'reason file');
    expect(readFileSync(join(dirs.optical, 'error', 'patients_broken.csv.reason.txt'), 'utf8')).toMatch(
      /^GW_PARSE_FAILED: a quoted field opened on line 2 is never closed/,
    );
    writeFileSync(
      join(dirs.optical, 'patients_more.csv'),
      'patient_id,last_name,first_name,birth_date,sex\nP10,Sample,Cleo,13/45/1990,F\nP11,Sample,Dev,01/02/1991,M\n',
    );
    await waitFor(() => bySource('patients/P11').length === 1, 10_000, 'the good row');
    const dead = h.gw.parts.outbox.listDeadLetters().filter((d) => d.adapter === 'optical');
    expect(dead).toHaveLength(1);
    expect(dead[0]).toMatchObject({ code: 'GW_MAP_FAILED', format: 'file:optical' });
    expect(dead[0].reason).toContain('birthDate is not a date');
    const name = readdirSync(join(dirs.optical, 'error'));
    expect(name).not.toContain('patients_more.csv');
  });

  it('reads OfficeMate XML: final spectacle Rx (not presenting ones) and frame/lens orders', async () => {
    writeFileSync(
      join(dirs.om, 'export.xml'),
      `<?xml version="1.0"?>
<EWExport>
  <EWSpecRx RxID="R1" RxType="Final"><PatientID>OM7</PatientID><RxDate>2026-02-03</RxDate><ProviderID>D1</ProviderID>
    <OD><Sphere>-1.25</Sphere><Cylinder>-0.50</Cylinder><Axis>10</Axis><Add>+1.50</Add></OD>
    <OS><Sphere>-1.00</Sphere><Add>+1.50</Add></OS></EWSpecRx>
  <EWSpecRx RxID="R0" RxType="Presenting"><PatientID>OM7</PatientID><RxDate>2026-02-03</RxDate><OD><Sphere>-1.00</Sphere></OD><OS><Sphere>-1.00</Sphere></OS></EWSpecRx>
  <FrameLensRx><OrderNumber>O-55</OrderNumber><PatientID>OM7</PatientID>
    <Frame><UPC>066600000001</UPC><Manufacturer>Synthoptic</Manufacturer><Collection>Kids</Collection><Model>K-2</Model><Color>Red</Color><EyeSize>46</EyeSize><Bridge>16</Bridge><Temple>125</Temple></Frame>
    <Lens><Style>Single vision</Style><Material>Polycarbonate</Material></Lens></FrameLensRx>
</EWExport>`,
    );
    await waitFor(() => bySource('EWSpecRx/R1').length === 1 && bySource('FrameLensRx/O-55').length === 1, 10_000, 'XML records');
    expect(bySource('EWSpecRx/R0')).toHaveLength(0);
    expect(bySource('EWSpecRx/R1')[0].data).toMatchObject({
      patient: { system: 'OFFICEMATE', value: 'OM7' },
      right: { sphere: -1.25, cylinder: -0.5, axis: 10, add: 1.5 },
      left: { sphere: -1, add: 1.5 },
    });
    expect(bySource('FrameLensRx/O-55')[0].data).toMatchObject({
      upc: '066600000001',
      collection: 'Kids',
      eyeSize: 46,
      lensMaterial: 'Polycarbonate',
    });
  });

  it.skipIf(!sharedCorpus.present)(
    'reads FHIR R4 from the public corpus: a bundle of Patient, Appointment and VisionPrescription, and bulk NDJSON',
    async () => {
      const read = (p: string) => JSON.parse(readFileSync(join(corpus, p), 'utf8'));
      const bundle = {
        resourceType: 'Bundle',
        type: 'collection',
        entry: [
          'fhir-r4-examples/Patient-f001.json',
          'fhir-r4-examples/Appointment-example.json',
          'fhir-r4-examples/VisionPrescription-33123.json',
          'fhir-r4-examples/VisionPrescription-33124.json',
          'fhir-eyecare-ig/patient-ophthal-0.json',
        ].map((p) => ({ resource: read(p) })),
      };
      writeFileSync(join(dirs.fhir, 'bundle.json'), JSON.stringify(bundle));
      copyFileSync(join(corpus, 'synthea-bulk-ndjson-10-patients/Patient.000.ndjson'), join(dirs.fhir, 'Patient.000.ndjson'));
      const ndjsonPatients = readFileSync(join(corpus, 'synthea-bulk-ndjson-10-patients/Patient.000.ndjson'), 'utf8')
        .trim()
        .split('\n').length;
      await waitFor(() => listing(join(dirs.fhir, 'processed')).length === 2, 10_000, 'both files processed');
      await waitFor(
        () => recs().filter((r) => r.source.adapter === 'file' && r.source.system === 'FHIR').length >= 5 + ndjsonPatients,
        10_000,
        'FHIR records',
      );
      const spec = bySource('VisionPrescription/33123')[0];
      expect(spec.type).toBe('spectacle-rx');
      expect(spec.data).toMatchObject({
        issuedAt: '2014-06-15',
        right: { sphere: -2, add: 2, prisms: [{ amount: 0.5, base: 'down' }] },
        left: { sphere: -1, cylinder: -0.5, axis: 180 },
      });
      expect(bySource('VisionPrescription/33124')[0].type).toBe('contact-lens-rx');
      expect(bySource('VisionPrescription/33124')[0].data.right).toMatchObject({
        sphere: -2.75,
        cylinder: -2.25,
        axis: 160,
        baseCurve: 8.7,
        diameter: 14,
        brand: 'OphthaGuard',
      });
      expect(bySource('Appointment/example')[0].data).toMatchObject({ status: 'booked', patient: { value: 'example' } });
      expect(cloud.store.invalid).toEqual([]);
    },
  );

  it('imports an HL7 v2 batch file message by message', async () => {
    const msg = (id: string, mrn: string) =>
      `MSH|^~\\&|PMS|CLINIC|EWML|GW|20261125093000||ADT^A04|${id}|P|2.5.1\rPID|1||${mrn}^^^PMS^MR||Sample^Test||19800101|F\r`;
    writeFileSync(join(dirs.hl7, 'batch.hl7'), `FHS|^~\\&\rBHS|^~\\&\r${msg('F1', 'H1')}${msg('F2', 'H2')}BTS|2\rFTS|1\r`);
    await waitFor(
      () => recs().filter((r) => r.source.messageId === 'F1' || r.source.messageId === 'F2').length >= 2,
      10_000,
      'two HL7 messages',
    );
    await waitFor(() => listing(join(dirs.hl7, 'processed')).includes('batch.hl7'), 5000, 'processed');
  });
});
