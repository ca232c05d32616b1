/** Secret-ness and needs-restart are schema metadata; enum lists have one source; the reference renders every depth. */
import { describe, expect, it } from 'vitest';
import { FILE_PROFILE_NAMES } from '../../adapters/file/file-profiles.ts';
import { RecordType } from '../../adapters/canonical/types.ts';
import { renderConfigReference } from '../../config/reference.ts';
import { walkSchema } from '../../config/schema-walk.ts';
import { ConfigSchema, SECRET_PATHS } from '../../config/schema.ts';

describe('schema metadata', () => {
  it('SECRET_PATHS is every field marked secret, at any depth', () => {
    expect([...SECRET_PATHS].sort()).toEqual([
      'admin.token',
      'apis[].auth.clientSecret',
      'apis[].auth.key',
      'apis[].auth.refreshToken',
      'cdsHooks.tls.key',
      'databases[].password',
      'databases[].writeBack.password',
      'fileOutputs[].ftps.password',
      'fileOutputs[].sftp.passphrase',
      'fileOutputs[].sftp.password',
      'fileOutputs[].sftp.privateKey',
      'files[].ftps.password',
      'files[].sftp.passphrase',
      'files[].sftp.password',
      'files[].sftp.privateKey',
      'https.key',
      'https.token',
      'mqtt.key',
      'mqtt.password',
    ]);
  });

  it('restart is inherited from a section and marked on single fields', () => {
    const byPath = new Map(walkSchema(ConfigSchema).map((f) => [f.path, f]));
    expect(byPath.get('admin.port')?.restart).toBe(true);
    expect(byPath.get('gateway.dataDir')?.restart).toBe(true);
    expect(byPath.get('hl7.port')?.restart).toBe(false);
    expect(byPath.get('hl7.profile')?.restart).toBe(true);
    expect(byPath.get('log.level')?.restart).toBe(false);
    expect(byPath.get('databases[].writeBack.user')?.restart).toBe(true);
    expect(byPath.get('databases[].host')?.reload).toBe('adapter');
  });

  it("record types and file profile names come from the adapters' lists", () => {
    const byPath = new Map(walkSchema(ConfigSchema).map((f) => [f.path, f]));
    const consts = (p: string) => ((byPath.get(p)?.schema.anyOf ?? []) as Array<{ const: string }>).map((b) => b.const);
    expect(consts('databases[].streams[].records[].type')).toEqual(Object.values(RecordType));
    expect(consts('files[].kinds[].records[].type')).toEqual(Object.values(RecordType));
    expect(consts('files[].profile')).toEqual([...FILE_PROFILE_NAMES]);
  });

  it('the reference documents nested fields of list entries, records and union branches', () => {
    const ref = renderConfigReference();
    for (const path of [
      'files[].sftp.host',
      'files[].sftp.hostKeySha256',
      'files[].kinds[].records[].fields.<key>.column',
      'databases[].streams[].name',
      'databases[].streams[].records[].fields',
      'databases[].streams[].watermark.kind',
      'databases[].writeBack.statements.<key>.sql',
      'fileOutputs[].ftps.certSha256',
      'hl7.profileOverrides.eyeCodes.<key>.display',
    ]) {
      expect(ref, path).toContain(`| \`${path}\` |`);
    }
    expect(ref).toContain('| `mqtt.password` | string | — | **Secret.**');
    expect(ref).toContain('EWML__GATEWAY__DATA_DIR');
  });
});
