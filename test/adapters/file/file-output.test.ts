/**
 * Files for the PMS from signed `file.write` commands: CSV, XML and HL7 written atomically to a
 * local folder and uploaded to a real sshd; unsafe names and bad content refused; replays refused.
 */
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CompactSign } from 'jose';
import pino from 'pino';
import { randomBytes } from 'node:crypto';
import { systemClock } from '../../../gateway/clock.ts';
import { createRecordSealer } from '../../../gateway/crypto/record-sealer.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFileWriter, renderFile } from '../../../adapters/file/file-output.ts';
import { createCommandProcessor, type CommandProcessor } from '../../../gateway/commands/command-processor.ts';
import { createCommandVerifier } from '../../../gateway/commands/command-verifier.ts';
import { createEventBus } from '../../../gateway/event-bus.ts';
import { createMemoryOutbox } from '../../../gateway/outbox/memory-outbox.ts';
import { adtA04 } from '../../support/hl7-fixtures.ts';
import { waitFor } from '../../support/net.ts';
import { startSshd, type SshServer } from '../../support/sshd.ts';

const keys = generateKeyPairSync('ed25519');
const local = mkdtempSync(join(tmpdir(), 'ewml-out-'));
let sshd: SshServer;
let remoteDir: string;
let processor: CommandProcessor;
const outcomes: Array<{ commandId: string; status: string; detail: string }> = [];
const now = () => Math.floor(Date.now() / 1000);
const sign = (p: Record<string, unknown>) =>
  new CompactSign(Buffer.from(JSON.stringify({ type: 'file.write', gatewayId: 'gw-out', iat: now(), exp: now() + 600, ...p })))
    .setProtectedHeader({ alg: 'EdDSA' })
    .sign(keys.privateKey);
const last = (id: string) => outcomes.filter((o) => o.commandId === id).at(-1);

beforeAll(async () => {
  sshd = await startSshd();
  remoteDir = sshd.mkdir('inbox');
  const writers = new Map([
    ['pms-folder', createFileWriter({ id: 'pms-folder', kind: 'folder', dir: local, csvDelimiter: ',' })],
    [
      'pms-sftp',
      createFileWriter({
        id: 'pms-sftp',
        kind: 'sftp',
        dir: remoteDir,
        csvDelimiter: ';',
        sftp: {
          host: '127.0.0.1',
          port: sshd.port,
          username: sshd.user,
          privateKey: sshd.clientKey,
          hostKeySha256: sshd.hostKeySha256,
          schedule: '',
        },
      }),
    ],
  ]);
  const bus = createEventBus(() => undefined);
  bus.on('command.outcome', (e) => outcomes.push(e));
  const outbox = createMemoryOutbox({ maxBytes: 10_000_000, clock: systemClock });
  await outbox.open();
  processor = createCommandProcessor({
    verifier: createCommandVerifier({
      publicKeyPem: keys.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
      gatewayId: 'gw-out',
      now: () => Date.now(),
    }),
    direct: {
      outbox,
      sealer: createRecordSealer(randomBytes(32)),
      writeBackFor: () => undefined,
      fileWriterFor: (id) => writers.get(id),
      attempts: 2,
      retryDelayMs: 10,
    },
    bus,
    logger: pino({ level: 'silent' }),
    now: () => Date.now(),
  });
}, 30_000);

afterAll(async () => {
  await sshd?.stop();
});

describe('files for the PMS (file.write commands)', () => {
  it('writes a CSV locally under its final name only when complete, quoting what needs it', async () => {
    const r = await processor.handle(
      await sign({
        id: 'f-1',
        target: 'pms-folder',
        file: {
          name: 'order-status.csv',
          format: 'csv',
          columns: ['order', 'status', 'note'],
          rows: [
            { order: 'O-1', status: 'shipped', note: 'left "as is", with comma' },
            { order: 'O-2', status: 'ready', note: null },
          ],
        },
      }),
    );
    expect(r.status).toBe('accepted');
    await waitFor(() => last('f-1')?.status === 'done', 5000, 'done');
    expect(readFileSync(join(local, 'order-status.csv'), 'utf8')).toBe(
      'order,status,note\r\nO-1,shipped,"left ""as is"", with comma"\r\nO-2,ready,\r\n',
    );
    expect(readdirSync(local).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('uploads XML and HL7 over SFTP (temporary name, then rename)', async () => {
    await processor.handle(
      await sign({
        id: 'f-2',
        target: 'pms-sftp',
        file: {
          name: 'recall.xml',
          format: 'xml',
          root: 'Recalls',
          rowElement: 'Recall',
          rows: [{ PatientID: 'P1', Due: '2027-01-01', Note: 'a < b & c' }],
        },
      }),
    );
    await processor.handle(
      await sign({ id: 'f-3', target: 'pms-sftp', file: { name: 'adt.hl7', format: 'hl7v2', hl7: adtA04({ id: 'OUT1' }) } }),
    );
    await waitFor(() => last('f-2')?.status === 'done' && last('f-3')?.status === 'done', 10_000, 'both uploaded');
    expect(readFileSync(join(remoteDir, 'recall.xml'), 'utf8')).toContain(
      '<Recall><PatientID>P1</PatientID><Due>2027-01-01</Due><Note>a &lt; b &amp; c</Note></Recall>',
    );
    expect(readFileSync(join(remoteDir, 'adt.hl7'), 'utf8')).toMatch(/^MSH\|\^~\\&\|.*\|OUT1\|/);
    expect(readdirSync(remoteDir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('finishes after a restart what it had accepted (the command is kept until done)', async () => {
    const outbox = createMemoryOutbox({ maxBytes: 10_000_000, clock: systemClock });
    await outbox.open();
    const sealer = createRecordSealer(randomBytes(32));
    const bus = createEventBus(() => undefined);
    const seen: string[] = [];
    bus.on('command.outcome', (e) => seen.push(`${e.commandId}:${e.status}`));
    const verifier = createCommandVerifier({
      publicKeyPem: keys.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
      gatewayId: 'gw-out',
      now: () => Date.now(),
    });
    // the first run takes the command, then "dies": its writer never finishes
    const stuck = { write: () => new Promise<never>(() => undefined) };
    const first = createCommandProcessor({
      verifier,
      direct: { outbox, sealer, writeBackFor: () => undefined, fileWriterFor: () => stuck },
      bus,
      logger: pino({ level: 'silent' }),
      now: () => Date.now(),
    });
    expect(
      (await first.handle(await sign({ id: 'f-9', target: 'pms-folder', file: { name: 'late.csv', format: 'csv', rows: [{ a: 1 }] } })))
        .status,
    ).toBe('accepted');
    expect(outbox.pendingCommands().map((c) => c.id)).toEqual(['f-9']);
    const second = createCommandProcessor({
      verifier,
      direct: {
        outbox,
        sealer,
        writeBackFor: () => undefined,
        fileWriterFor: (id) => (id === 'pms-folder' ? createFileWriter({ id, kind: 'folder', dir: local, csvDelimiter: ',' }) : undefined),
      },
      bus,
      logger: pino({ level: 'silent' }),
      now: () => Date.now(),
    });
    expect(await second.resumePending()).toBe(1);
    await waitFor(() => seen.includes('f-9:done'), 5000, 'done after the restart');
    expect(readFileSync(join(local, 'late.csv'), 'utf8')).toBe('a\r\n1\r\n');
    await waitFor(() => outbox.pendingCommands().length === 0, 2000, 'finished');
    expect(
      (await second.handle(await sign({ id: 'f-9', target: 'pms-folder', file: { name: 'late.csv', format: 'csv', rows: [] } }))).detail,
    ).toBe('replayed command id');
  });

  it('refuses unsafe names, bad content, unknown targets and replays', async () => {
    expect(
      (
        await processor.handle(
          await sign({ id: 'f-4', target: 'pms-folder', file: { name: '../../etc/cron.d/x', format: 'csv', rows: [] } }),
        )
      ).detail,
    ).toMatch(/plain file name/);
    expect(
      (await processor.handle(await sign({ id: 'f-5', target: 'pms-folder', file: { name: 'x.hl7', format: 'hl7v2', hl7: 'not hl7' } })))
        .detail,
    ).toMatch(/HL7/);
    expect(
      (await processor.handle(await sign({ id: 'f-6', target: 'elsewhere', file: { name: 'x.csv', format: 'csv', rows: [] } }))).detail,
    ).toMatch(/no file output "elsewhere"/);
    expect(
      (await processor.handle(await sign({ id: 'f-1', target: 'pms-folder', file: { name: 'again.csv', format: 'csv', rows: [] } })))
        .detail,
    ).toBe('replayed command id');
    expect(() => renderFile({ name: 'x.xml', format: 'xml', root: 'a b', rows: [] })).toThrow(/XML element name/);
    expect(existsSync(join(local, 'again.csv'))).toBe(false);
  });
});
