/**
 * Files for the PMS, from cloud commands: CSV, XML or HL7 v2, written atomically — to a temporary
 * name beside the target, flushed, then renamed — so a PMS import never sees half a file. Locally
 * (a folder or mounted share) or uploaded over SFTP or FTPS (pinned as the file sources are).
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { splitHl7Messages } from '../hl7v2/hl7-batch.ts';
import { parseHl7 } from '../hl7v2/hl7-message.ts';
import { connectFtps, connectSftp, type FtpsConnection, type SftpConnection } from './remote-folder.ts';

export type OutputFormat = 'csv' | 'xml' | 'hl7v2';

export interface FileOutputTarget {
  id: string;
  kind: 'folder' | 'sftp' | 'ftps';
  dir: string;
  sftp?: SftpConnection;
  ftps?: FtpsConnection;
  csvDelimiter: string;
}

export interface FileWriteRequest {
  name: string;
  format: OutputFormat;
  /** csv/xml: the rows (flat objects of text, numbers, booleans). */
  rows?: Array<Record<string, unknown>>;
  /** csv: the columns in order (default: the first row's keys). */
  columns?: string[];
  /** xml: the root and row element names. */
  root?: string;
  rowElement?: string;
  /** hl7v2: the message(s). */
  hl7?: string;
}

export class FileWriteRefused extends Error {}

const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,150}$/;
const XML_NAME = /^[A-Za-z_][A-Za-z0-9._-]{0,60}$/;

function scalar(v: unknown, where: string): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return String(v);
  throw new FileWriteRefused(`${where} must be text, a number or true/false`);
}

/** The bytes of the file a request asks for; refuses what cannot be written safely. */
export function renderFile(r: FileWriteRequest, csvDelimiter = ','): Buffer {
  if (typeof r.name !== 'string' || !SAFE_NAME.test(r.name))
    throw new FileWriteRefused('name must be a plain file name (letters, digits, . _ -; no folders)');
  if (r.format === 'hl7v2') {
    if (typeof r.hl7 !== 'string' || !r.hl7.trim()) throw new FileWriteRefused('an hl7v2 file needs `hl7`');
    const text = r.hl7.replace(/\r\n|\n/g, '\r').replace(/\r*$/, '\r');
    const messages = splitHl7Messages(text);
    if (messages.length === 0) throw new FileWriteRefused('no HL7 v2 message in `hl7`');
    try {
      for (const m of messages) parseHl7(m);
    } catch (e) {
      throw new FileWriteRefused(`not an HL7 v2 message: ${(e as Error).message}`);
    }
    return Buffer.from(text, 'utf8');
  }
  if (!Array.isArray(r.rows)) throw new FileWriteRefused(`a ${r.format} file needs \`rows\``);
  const columns = r.columns ?? Object.keys(r.rows[0] ?? {});
  if (r.format === 'csv') {
    const q = (s: string) => (/[",\r\n]/.test(s) || s.includes(csvDelimiter) ? `"${s.replaceAll('"', '""')}"` : s);
    const lines = [
      columns.map(q).join(csvDelimiter),
      ...r.rows.map((row, i) => columns.map((c) => q(scalar(row[c], `rows[${i}].${c}`))).join(csvDelimiter)),
    ];
    return Buffer.from(lines.join('\r\n') + '\r\n', 'utf8');
  }
  if (r.format === 'xml') {
    const root = r.root ?? 'Export';
    const el = r.rowElement ?? 'Row';
    for (const n of [root, el, ...columns]) if (!XML_NAME.test(n)) throw new FileWriteRefused(`"${n}" is not an XML element name`);
    const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
    const body = r.rows
      .map((row, i) => `  <${el}>${columns.map((c) => `<${c}>${esc(scalar(row[c], `rows[${i}].${c}`))}</${c}>`).join('')}</${el}>`)
      .join('\n');
    return Buffer.from(`<?xml version="1.0" encoding="UTF-8"?>\n<${root}>\n${body}\n</${root}>\n`, 'utf8');
  }
  throw new FileWriteRefused(`format must be csv, xml or hl7v2 (got ${String(r.format)})`);
}

export interface FileWriter {
  write(r: FileWriteRequest): Promise<{ path: string; bytes: number }>;
}

export function createFileWriter(t: FileOutputTarget): FileWriter {
  return {
    async write(r) {
      const bytes = renderFile(r, t.csvDelimiter);
      const tmpName = `.${r.name}.${randomBytes(4).toString('hex')}.tmp`;
      if (t.kind === 'folder') {
        mkdirSync(t.dir, { recursive: true });
        const tmp = join(t.dir, tmpName);
        const fh = await open(tmp, 'wx', 0o640);
        try {
          await fh.writeFile(bytes);
          await fh.sync();
        } finally {
          await fh.close();
        }
        try {
          await rename(tmp, join(t.dir, r.name));
        } catch (e) {
          await rm(tmp, { force: true });
          throw e;
        }
        return { path: join(t.dir, r.name), bytes: bytes.length };
      }
      const client = t.kind === 'sftp' ? await connectSftp(t.sftp!) : await connectFtps(t.ftps!);
      try {
        const tmp = posix.join(t.dir, tmpName);
        await client.put(bytes, tmp);
        const target = posix.join(t.dir, r.name);
        // an existing file of that name is replaced in one step where the server can (OpenSSH's posix-rename)
        await client.replace(tmp, target);
        return { path: target, bytes: bytes.length };
      } finally {
        await client.close();
      }
    },
  };
}
