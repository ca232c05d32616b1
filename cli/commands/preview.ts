/**
 * `preview`: parse → map → validate on source files, the way intake would, touching neither the
 * outbox nor the network. Canonical records go to stdout as JSON lines, issues to stderr.
 */
import { basename } from 'node:path';
import type { GatewayConfig } from '../../config/schema.ts';
import { createRecordValidator } from '../../adapters/canonical/validator.ts';
import { createXmlDocumentCodecs } from '../../adapters/cda/index.ts';
import { CodecError, type SourceCodec } from '../../adapters/contracts.ts';
import { createHl7Codec, splitHl7Messages, type Hl7CodecOptions } from '../../adapters/hl7v2/index.ts';
import { HL7_PROFILES } from '../../adapters/hl7v2/profiles.ts';
import { FILE_PROFILE_NAMES, importOptionsOf, isFileProfileName, type FileReadConfig } from '../../adapters/file/index.ts';
import { detectFileFormat, FILE_FORMATS, FileFormatError, type FileFormat } from '../../adapters/file/file-formats.ts';
import { kindsFor, mapFileRow, rowsOf } from '../../adapters/file/file-import.ts';
import { systemClock } from '../../gateway/clock.ts';
import { resolveTimezone } from '../../gateway/create-gateway.ts';
import { createMapStage } from '../../gateway/pipeline/map-stage.ts';
import type { CliCommand, CliIo } from '../command.ts';

const PREVIEW_HELP = `eyewear-gateway preview FILE... [--profile NAME] [--format F] [--source ID] [--config FILE]

Runs parse → map → validate on each message or row of each file: HL7 v2 (several messages or a
FHS/BHS batch per file), CSV, XML, JSON, NDJSON, FHIR R4 (bundle, resource or NDJSON), a CDA R2
document or an HL7 v3 patient message (PRPA_IN201301/201302/201304UV02) per file. The format
is picked by name and content, or --format ${FILE_FORMATS.join('|')}. Prints canonical records as JSON
lines on stdout; issues go to stderr (with file#row).
HL7 profiles: ${Object.keys(HL7_PROFILES).join(', ')}.
File profiles: ${FILE_PROFILE_NAMES.join(', ')}; --source ID uses a files[] entry of the config
(its profile, kinds and CSV settings). Exit 5 when any message or row failed.`;

export const previewCommand: CliCommand = {
  name: 'preview',
  synopsis: 'preview FILE... [--profile NAME] [--format F] [--source ID] [--config FILE]',
  summary:
    'Parse, map and validate source files (HL7, CSV, XML, JSON/NDJSON, FHIR);\nprint each canonical record as one JSON line on stdout, issues on stderr.\nTouches neither outbox nor network.',
  help: PREVIEW_HELP,
  options: { profile: { type: 'string' }, format: { type: 'string' }, source: { type: 'string' } },
  run: ({ positionals, values, configFile }, io) =>
    preview(
      positionals,
      {
        profile: values.profile as string | undefined,
        format: values.format as string | undefined,
        source: values.source as string | undefined,
        configFile,
      },
      io,
    ),
};

async function preview(
  files: string[],
  o: { profile?: string; format?: string; source?: string; configFile?: string },
  io: CliIo,
): Promise<number> {
  if (files.length === 0) {
    io.err(`preview needs at least one FILE\n\n${PREVIEW_HELP}`);
    return 2;
  }
  const config = io.loadConfig(o.configFile);
  const hl7Profile = (o.profile && o.profile in HL7_PROFILES ? o.profile : config.hl7.profile) as GatewayConfig['hl7']['profile'];
  const fileProfiles: readonly string[] = FILE_PROFILE_NAMES;
  if (o.profile && !(o.profile in HL7_PROFILES) && !fileProfiles.includes(o.profile)) {
    io.err(`unknown profile "${o.profile}"; HL7: ${Object.keys(HL7_PROFILES).join(', ')}; files: ${fileProfiles.join(', ')}`);
    return 2;
  }
  if (o.format && !(FILE_FORMATS as readonly string[]).includes(o.format)) {
    io.err(`unknown format "${o.format}"; one of: ${FILE_FORMATS.join(', ')}`);
    return 2;
  }
  const source = o.source ? config.files.find((f) => f.id === o.source) : undefined;
  if (o.source && !source) {
    io.err(`no files entry "${o.source}" in the config`);
    return 2;
  }
  const timezone = resolveTimezone(config.gateway.timezone);
  const hl7 = createHl7Codec({
    profile: hl7Profile,
    timezone,
    overrides: config.hl7.profileOverrides as Hl7CodecOptions['overrides'],
  }) as SourceCodec<unknown>;
  const xmlCodecs = createXmlDocumentCodecs({ timezone });
  const stage = createMapStage({
    validator: createRecordValidator(),
    clock: systemClock,
    identity: { tenantId: config.gateway.tenantId, practiceId: config.gateway.practiceId, gatewayId: config.gateway.id },
  });
  let failed = 0;
  let total = 0;
  let recordsOut = 0;
  let unmapped = 0;
  const show = (where: string, r: ReturnType<typeof stage.preview>) => {
    // a message or row with an error is rejected whole by the gateway: nothing of it is shown as a record
    if (!r.issues.some((x) => x.severity === 'error'))
      for (const rec of r.records) {
        io.out(JSON.stringify(rec));
        recordsOut++;
      }
    if (r.unsupported) unmapped++;
    if (r.unsupported) io.err(`${where}: ${r.kind}${r.messageId ? ` (${r.messageId})` : ''}: not mapped (${r.unsupported})`);
    for (const is of r.issues)
      io.err(
        `${where}: ${is.severity} ${is.code}: ${is.message}${is.location ? ` at ${[is.location.segment, is.location.sequence, is.location.field].filter(Boolean).join('-')}` : ''}`,
      );
    if (r.issues.some((x) => x.severity === 'error')) failed++;
  };
  for (const file of files) {
    let format: string | undefined = o.format;
    try {
      format ??= await detectFileFormat(file);
    } catch (e) {
      io.err(`${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
      failed++;
      continue;
    }
    if (!format) {
      io.err(`${file}: format not recognised (use --format ${FILE_FORMATS.join('|')})`);
      failed++;
      continue;
    }
    if (format === 'hl7v2' || format === 'cda' || format === 'hl7v3') {
      let text: string;
      try {
        text = io.readFile(file);
      } catch (e) {
        io.err(`${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
        failed++;
        continue;
      }
      const messages = format === 'hl7v2' ? splitHl7Messages(text) : [text];
      const codec = format === 'hl7v2' ? hl7 : xmlCodecs[format];
      messages.forEach((m, i) => {
        total++;
        const where = `${file}${messages.length > 1 ? `#${i + 1}` : ''}`;
        try {
          show(where, stage.preview(codec, m));
        } catch (e) {
          if (!(e instanceof CodecError)) throw e;
          failed++;
          io.err(`${where}: error GW_PARSE_FAILED: ${e.message}`);
        }
      });
      continue;
    }
    // export files: the profile's kinds that read this file name (or FHIR), row by row
    const asked = o.profile && isFileProfileName(o.profile) ? o.profile : undefined;
    const entry: FileReadConfig = source ?? {
      id: 'preview',
      profile: asked ?? (format === 'fhir' ? 'fhir-r4' : 'generic'),
      system: '',
      kinds: [],
      csv: { delimiter: 'auto', quote: '"', header: true, encoding: 'utf-8' },
      format: 'auto',
      maxWholeFileBytes: 64 * 1024 * 1024,
      pageSize: 500,
    };
    let imp;
    try {
      imp = importOptionsOf({ ...entry, ...(asked ? { profile: asked } : {}) }, { timezone, now: () => Date.now() });
    } catch (e) {
      io.err(`${file}: ${(e as Error).message} (use --profile ${fileProfiles.join('|')} or --source ID)`);
      failed++;
      continue;
    }
    const profile = imp.profile;
    const kinds = typeof profile === 'string' ? ['fhir' as const] : kindsFor(profile, basename(file));
    if (kinds.length === 0) {
      io.err(`${file}: no kind of profile ${typeof profile === 'string' ? profile : profile.name} reads this file name`);
      failed++;
      continue;
    }
    const system = typeof profile === 'string' ? 'FHIR' : profile.system;
    let g = 0;
    try {
      for (const kind of kinds) {
        for await (const row of rowsOf(
          file,
          (kind === 'fhir' ? 'fhir' : (kind.format ?? format)) as FileFormat,
          kind === 'fhir' ? undefined : kind,
          imp,
        )) {
          g++;
          total++;
          const kindName = kind === 'fhir' ? 'fhir' : kind.name;
          const mapped = mapFileRow({ adapterId: entry.id, system, timezone, now: () => Date.now() }, kind, {
            pk: `${kindName}#${g}`,
            data: row.data,
          });
          const built = stage.finish(mapped);
          show(`${file}#${g}`, {
            kind: kindName,
            unsupported: mapped.unsupported,
            records: built.records.map((x) => x.record),
            issues: [
              ...mapped.issues,
              ...built.invalid.map((i) => ({
                severity: 'error',
                code: 'GW_VALIDATION_FAILED',
                message: `${i.type} record ${i.path} ${i.problem}`,
              })),
            ],
          });
        }
      }
    } catch (e) {
      if (!(e instanceof FileFormatError)) throw e;
      failed++;
      io.err(`${file}: error GW_PARSE_FAILED: ${e.message}`);
    }
  }
  // not mapped (a message kind or resource type the gateway ignores, counted as ignored at intake) is neither a record nor an error
  io.err(
    `preview: ${total} message(s)/row(s), ${recordsOut} record(s), ${failed} with errors${unmapped ? `, ${unmapped} not mapped` : ''}`,
  );
  return failed ? 5 : 0;
}
