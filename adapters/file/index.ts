import type { GatewayConfig } from '../../config/schema.ts';
import type { Clock } from '../../gateway/clock.ts';
import { defineSource, parseStoredRow, type SourceCodec, type StoredRow } from '../contracts.ts';
import { mapFileRow, type FileImportOptions } from './file-import.ts';
import { FILE_PROFILE_NAMES, FILE_PROFILES, type FileProfile } from './file-profiles.ts';
import { createFolderFileSource } from './file-source.ts';
import { createRemoteFileSource } from './remote-source.ts';

export { createFolderFileSource } from './file-source.ts';
export { FILE_PROFILES, FILE_PROFILE_NAMES } from './file-profiles.ts';

/** The `files[]` entry, as the config schema gives it. */
export type FilesConfig = GatewayConfig['files'][number];

/** What reading a file takes from a `files[]` entry (`preview` builds one without a config). */
export type FileReadConfig = Pick<FilesConfig, 'id' | 'profile' | 'system' | 'kinds' | 'format' | 'csv' | 'maxWholeFileBytes' | 'pageSize'>;

export type FileProfileName = FilesConfig['profile'];
export const isFileProfileName = (s: string): s is FileProfileName => (FILE_PROFILE_NAMES as readonly string[]).includes(s);

/** The profile a `files[]` entry reads with: its own kinds first, then the built-in profile's. */
export function profileOf(c: FileReadConfig): FileProfile | 'fhir-r4' | 'hl7v2' {
  if (c.profile === 'fhir-r4' || c.profile === 'hl7v2') return c.profile;
  const base = FILE_PROFILES[c.profile];
  if (!base && c.kinds.length === 0) throw new Error(`files.${c.id}: profile generic needs \`kinds\``);
  return {
    name: base?.name ?? 'generic',
    system: c.system || base?.system || c.id.toUpperCase(),
    kinds: [...c.kinds, ...(base?.kinds ?? [])],
  };
}

export function importOptionsOf(c: FileReadConfig, o: { timezone: string; now: () => number }): FileImportOptions {
  return {
    adapterId: c.id,
    profile: profileOf(c),
    format: c.format,
    csv: c.csv,
    maxWholeFileBytes: c.maxWholeFileBytes,
    pageSize: c.pageSize,
    timezone: o.timezone,
    now: o.now,
  };
}

export function createFileSource(c: FilesConfig, o: { timezone: string; now: () => number; stagingDir: string; clock?: Clock }) {
  const imp = importOptionsOf(c, o);
  const pickup = { extensions: c.extensions.map((x) => x.toLowerCase()), stableMs: c.stableMs, marker: c.marker, after: c.after };
  if (c.source === 'sftp')
    return createRemoteFileSource({
      id: c.id,
      dir: c.dir,
      remote: { kind: 'sftp', sftp: c.sftp },
      ...pickup,
      import: imp,
      stagingDir: o.stagingDir,
    });
  if (c.source === 'ftps')
    return createRemoteFileSource({
      id: c.id,
      dir: c.dir,
      remote: { kind: 'ftps', ftps: c.ftps },
      ...pickup,
      import: imp,
      stagingDir: o.stagingDir,
    });
  return createFolderFileSource({ id: c.id, dir: c.dir, polling: c.polling, pollMs: c.pollMs, ...pickup, import: imp, clock: o.clock });
}

/** Replays a dead-lettered file row (`{stream, pk: "<kind>#<n>", data}`) through its kind's mapping. */
export function createFileRowCodec(c: FilesConfig, o: { timezone: string; now: () => number }): SourceCodec<StoredRow> {
  const profile = profileOf(c);
  return {
    format: `file:${c.id}`,
    parse: (text) => parseStoredRow(text, 'file row'),
    dedupeKey: () => undefined,
    describe: (r) => ({ kind: `file-row:${r.pk.split('#')[0]}` }),
    map(r) {
      const kindName = r.pk.slice(0, r.pk.lastIndexOf('#'));
      const kind = typeof profile === 'string' ? ('fhir' as const) : profile.kinds.find((k) => k.name === kindName);
      if (!kind) return { records: [], issues: [{ severity: 'error', code: 'GW_MAP_FAILED', message: `no kind ${kindName} in profile` }] };
      return mapFileRow(
        {
          adapterId: c.id,
          system: typeof profile === 'string' ? (profile === 'fhir-r4' ? 'FHIR' : 'HL7') : profile.system,
          timezone: o.timezone,
          now: o.now,
        },
        kind,
        { pk: r.pk, data: r.data },
      );
    },
  };
}

/** The `files[]` source kind: one folder, SFTP or FTPS source per entry, with the codec that replays its dead-lettered rows. */
export const fileSources = defineSource({
  kind: 'file',
  section: 'files',
  create(entries, deps) {
    const env = { timezone: deps.timezone, now: deps.now };
    return {
      adapters: entries.map((f) => createFileSource(f, { ...env, stagingDir: deps.workDir(f.id), clock: deps.clock })),
      codecs: entries.map((f) => createFileRowCodec(f, env)),
    };
  },
});
