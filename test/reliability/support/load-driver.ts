/**
 * The load driver: feeds every source kind at once — MLLP senders, a folder file drop, an SFTP
 * folder, a changing PostgreSQL database (Practice Studio's schema) — and notes in the ledger what
 * each source was told was taken. Every record carries synthetic PHI the PHI sweep looks for (see
 * `SYNTHETIC_PHI`): the family name, a birth date, an MRN-shaped marker, and Rx sphere values.
 *
 * Every loop is bounded in time and count: it stops on `stop()`, at `deadline`, or after
 * `maxUnits` units, whichever comes first. Paced, not flat out: a unit is started every
 * `1000 / perSecond` ms at most, so a soak's load is steady and the same at every size.
 */
import { chownSync, existsSync, mkdirSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { connectMllp, readAck, type MllpClient } from '../../../adapters/hl7v2/mllp-client.ts';
import { MARKER_PREFIX } from './checker.ts';
import type { Ledger, SourceKind } from './ledger.ts';

/** The synthetic PHI every source carries, in the forms each source writes it. */
export const SYNTHETIC_PHI = {
  family: 'Zzyzxphi',
  given: 'Quillonphi',
  birthDate: { iso: '1937-04-23', hl7: '19370423', us: '04/23/1937' },
  /** Rx sphere values (right, left): unusual enough that no count or duration in a log matches them. */
  sphere: { right: '-17.25', left: '-16.75' },
} as const;

export interface Rates {
  /** HL7 messages per second, over all senders (0: none). */
  mllpPerSecond: number;
  mllpSenders: number;
  /** Files per second dropped in the folder, and patient rows in each. */
  filesPerSecond: number;
  sftpFilesPerSecond: number;
  rowsPerFile: number;
  /** Database transactions per second (a patient row each, and an Rx row with every fifth). */
  dbPerSecond: number;
  /** Every n-th HL7 message is also followed by an ORU refraction (spectacle Rx) for its patient; every n-th file by an Rx file. */
  rxEvery: number;
}

export interface LoadTargets {
  mllpPort: number;
  dropDir: string;
  sftpDir: string;
  /** Owner of the SFTP folder's files (the SFTP user), so the gateway can move them on the server. */
  sftpOwner: { uid: number; gid: number };
  /** Where files are written before being renamed into a watched folder (same filesystem). */
  stagingDir: string;
  sftpStagingDir: string;
  db: pg.ClientConfig;
}

export interface Load {
  /** Stops every loop and waits for them (each ends its unit in flight; an unanswered one is not acknowledged). */
  stop(): Promise<void>;
  /** Notes as acknowledged every file that reached `processed/` (also done every 100 ms while running). */
  settleFiles(): void;
  /** Files still waiting in a watched folder, and files the gateway moved to `error/`. */
  pendingFiles(): number;
  errorFiles(): string[];
  units(): Record<SourceKind, number>;
  /** Spectacle Rx records the sources were told were taken (ORU answered AA, Rx file rows dropped, Rx rows committed). */
  rxAcked(): number;
}

let runSeq = 0;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One paced, bounded loop. `unit` returns false to end the loop early. */
async function paced(
  perSecond: number,
  stopped: () => boolean,
  deadline: number,
  maxUnits: number,
  unit: () => Promise<boolean | void>,
): Promise<number> {
  if (perSecond <= 0) return 0;
  const gap = 1000 / perSecond;
  let n = 0;
  let next = Date.now();
  while (!stopped() && Date.now() < deadline && n < maxUnits) {
    n++;
    if ((await unit()) === false) break;
    next += gap;
    const wait = next - Date.now();
    if (wait > 0) await sleep(wait);
    else if (wait < -1000) next = Date.now(); // fell behind (a gateway restart): do not burst to catch up
  }
  return n;
}

export function adtMessage(controlId: string, mrn: string): string {
  const p = SYNTHETIC_PHI;
  return [
    `MSH|^~\\&|PMS|CLINIC|EWML|GW|20261125093000-0500||ADT^A04^ADT_A01|${controlId}|P|2.5.1`,
    'EVN|A04|20261125093000-0500',
    `PID|1||${mrn}^^^CLINIC^MR||${p.family}^${p.given}^Q||${p.birthDate.hl7}|F|||1 Test Way^^Testville^TS^00000^USA^H||555-0100^PRN^PH`,
    'PV1|1|O|CLINIC1||||D100^Provider^Paula^^^Dr^OD^^NPI',
  ].join('\r');
}

export function oruRefraction(controlId: string, mrn: string): string {
  const p = SYNTHETIC_PHI;
  const obx = (n: number, value: string, eye: string) => `OBX|${n}|NM|SPH^Sphere||${value}|D|||||F|||20261125090000-0500||||||${eye}`;
  return [
    `MSH|^~\\&|EXAM|CLINIC|EWML|GW|20261125093000-0500||ORU^R01^ORU_R01|${controlId}|P|2.5.1`,
    `PID|1||${mrn}^^^CLINIC^MR||${p.family}^${p.given}||${p.birthDate.hl7}|F`,
    'OBR|1|ORD1|RX1|REFR^Final spectacle Rx|||20261125090000-0500',
    obx(1, p.sphere.right, 'OD'),
    obx(2, p.sphere.left, 'OS'),
  ].join('\r');
}

function patientsCsv(markers: string[]): string {
  const p = SYNTHETIC_PHI;
  return (
    [
      'patient_id,last_name,first_name,birth_date,sex,city,state,zip',
      ...markers.map((m) => `${m},${p.family},${p.given},${p.birthDate.us},F,Testville,TX,70000`),
    ].join('\n') + '\n'
  );
}

function rxCsv(markers: string[]): string {
  const p = SYNTHETIC_PHI;
  return (
    [
      'patient_id,rx_date,expires,doctor_npi,OD_sph,OD_cyl,OD_axis,OS_sph,OS_cyl,OS_axis',
      ...markers.map((m) => `${m},11/20/2026,11/20/2028,1234567893,${p.sphere.right},-0.50,90,${p.sphere.left},-0.75,85`),
    ].join('\n') + '\n'
  );
}

/** A watched folder fed with whole files (written aside, then renamed in) and the files' acknowledgement in `processed/`. */
function fileFeeder(kind: 'file' | 'sftp', dir: string, staging: string, ledger: Ledger, owner?: { uid: number; gid: number }) {
  const waiting = new Map<string, string[]>();
  mkdirSync(staging, { recursive: true });
  if (owner) chownSync(staging, owner.uid, owner.gid);
  return {
    drop(name: string, text: string, markers: string[]) {
      const tmp = join(staging, name);
      writeFileSync(tmp, text);
      if (owner) chownSync(tmp, owner.uid, owner.gid);
      ledger.noteSent(kind, markers);
      waiting.set(name, markers);
      renameSync(tmp, join(dir, name));
    },
    settle() {
      if (!waiting.size) return;
      const processed = join(dir, 'processed');
      if (!existsSync(processed)) return;
      for (const name of readdirSync(processed)) {
        const m = waiting.get(name);
        if (!m) continue;
        ledger.noteAcked(kind, m);
        waiting.delete(name);
      }
    },
    pending: () => waiting.size,
    errors: () => (existsSync(join(dir, 'error')) ? readdirSync(join(dir, 'error')) : []),
  };
}

/** Starts every source's load; see `Rates`. */
export function startLoad(t: LoadTargets, ledger: Ledger, rates: Rates, bounds: { seconds: number; maxUnits: number }): Load {
  const run = `${(runSeq++).toString(36)}${process.pid.toString(36)}`;
  let stopped = false;
  const isStopped = () => stopped;
  const deadline = Date.now() + bounds.seconds * 1000;
  const units: Record<SourceKind, number> = { mllp: 0, file: 0, sftp: 0, db: 0 };
  let seq = 0;
  let rx = 0;
  const marker = (k: string) => `${MARKER_PREFIX}${k}${run}${(seq++).toString(36)}`;

  const mllpLoop = async (sender: number) => {
    let c: MllpClient | undefined;
    const perSender = rates.mllpPerSecond / Math.max(1, rates.mllpSenders);
    let n = 0;
    units.mllp += await paced(perSender, isStopped, deadline, bounds.maxUnits, async () => {
      const mrn = marker('H');
      const id = `L${run}s${sender}n${(n++).toString(36)}`;
      ledger.noteSent('mllp', [mrn]);
      try {
        c ??= await connectMllp('127.0.0.1', t.mllpPort);
        const ack = readAck(await c.send(adtMessage(id, mrn), 5000));
        if (ack.code === 'AA' && ack.controlId === id) ledger.noteAcked('mllp', [mrn]);
        if (rates.rxEvery > 0 && n % rates.rxEvery === 0 && readAck(await c.send(oruRefraction(`${id}r`, mrn), 5000)).code === 'AA') rx++;
      } catch {
        // the gateway went away under us (a kill): what was not answered AA was not acknowledged
        c?.socket.destroy();
        c = undefined;
        await sleep(100);
      }
    });
    c?.socket.destroy();
  };

  const drop = fileFeeder('file', t.dropDir, t.stagingDir, ledger);
  const sftp = fileFeeder('sftp', t.sftpDir, t.sftpStagingDir, ledger, t.sftpOwner);
  const fileLoop = async (kind: 'file' | 'sftp', perSecond: number) => {
    const feeder = kind === 'file' ? drop : sftp;
    let n = 0;
    units[kind] += await paced(perSecond, isStopped, deadline, bounds.maxUnits, async () => {
      const markers = Array.from({ length: rates.rowsPerFile }, () => marker(kind === 'file' ? 'F' : 'S'));
      const base = `${run}_${(n++).toString(36)}`;
      feeder.drop(`patients_${base}.csv`, patientsCsv(markers), markers);
      if (rates.rxEvery > 0 && n % rates.rxEvery === 0) {
        feeder.drop(`spectacle_rx_${base}.csv`, rxCsv(markers.slice(0, 2)), []);
        rx += Math.min(2, markers.length);
      }
    });
  };

  const dbLoop = async () => {
    const client = new pg.Client(t.db);
    await client.connect();
    let n = 0;
    try {
      units.db += await paced(rates.dbPerSecond, isStopped, deadline, bounds.maxUnits, async () => {
        const m = marker('D');
        const p = SYNTHETIC_PHI;
        ledger.noteSent('db', [m]);
        await client.query('BEGIN');
        const r = await client.query<{ patient_id: string }>(
          'INSERT INTO ps.patients (chart_no, first_name, last_name, dob, gender, city, state, zip) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING patient_id',
          [m, p.given, p.family, p.birthDate.iso, 'F', 'Testville', 'TX', '70000'],
        );
        if (++n % 5 === 0) {
          await client.query(
            'INSERT INTO ps.spectacle_rx (patient_id, exam_date, expires, prescriber_npi, od_sphere, od_cylinder, od_axis, os_sphere, os_cylinder, os_axis) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)',
            [r.rows[0].patient_id, '2026-11-20', '2028-11-20', '1234567893', p.sphere.right, '-0.50', 90, p.sphere.left, '-0.75', 85],
          );
        }
        await client.query('COMMIT');
        ledger.noteAcked('db', [m]);
        if (n % 5 === 0) rx++;
      });
    } finally {
      await client.end();
    }
  };

  const settleTimer = setInterval(() => {
    drop.settle();
    sftp.settle();
  }, 100);
  const loops = [
    ...Array.from({ length: rates.mllpPerSecond > 0 ? rates.mllpSenders : 0 }, (_, i) => mllpLoop(i)),
    fileLoop('file', rates.filesPerSecond),
    fileLoop('sftp', rates.sftpFilesPerSecond),
    dbLoop(),
  ];
  const all = Promise.allSettled(loops);
  return {
    async stop() {
      stopped = true;
      const results = await all;
      clearInterval(settleTimer);
      drop.settle();
      sftp.settle();
      const failed = results.find((r) => r.status === 'rejected');
      if (failed) throw (failed as PromiseRejectedResult).reason;
    },
    settleFiles() {
      drop.settle();
      sftp.settle();
    },
    pendingFiles: () => drop.pending() + sftp.pending(),
    errorFiles: () => [...drop.errors(), ...sftp.errors()],
    units: () => ({ ...units }),
    rxAcked: () => rx,
  };
}
