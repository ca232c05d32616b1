/**
 * The seal key: present, a key, private to the service, and the key the outboxes were sealed with
 * — the same decisions `start` makes (crypto/key-custody.ts, outbox/outbox-key-binding.ts), read
 * only: a missing key is never made here, the outbox is opened read-only. The report names the key
 * file and the first 12 hex digits of its check value (an HMAC of a fixed label, as `keys export`
 * prints it), never the key.
 */
import { statSync } from 'node:fs';
import { dirname } from 'node:path';
import { keyCheckMatches, keyCheckValue } from '../../../gateway/crypto/key-check.ts';
import { readKeyFile } from '../../../gateway/crypto/key-file.ts';
import { opens } from '../../../gateway/outbox/outbox-key-binding.ts';
import { sealedDataIn } from '../../../gateway/outbox/outbox-integrity.ts';
import { accessProblem, needsConfig, notChecked, type DoctorCheck } from '../check.ts';

const RESTORE = 'restore the key from its backup: eyewear-gateway keys import BACKUP --replace (the import checks it opens the outbox)';

export const sealKeyCheck: DoctorCheck = {
  id: 'seal key',
  async run(ctx) {
    const name = 'seal key';
    if (!ctx.paths) return [needsConfig(name, ctx)];
    const { keyFile, outboxFile, outboundFile } = ctx.paths;
    const closed = accessProblem(ctx.paths.dataDir) ?? accessProblem(dirname(keyFile)) ?? accessProblem(keyFile);
    if (closed) return [notChecked(name, closed)];
    const k = readKeyFile(keyFile);
    const boxes = [outboxFile, outboundFile].map((file) => ({ file, held: sealedDataIn(file) }));
    const rows = boxes.reduce((n, b) => n + (b.held.state === 'rows' ? b.held.rows : 0), 0);
    if (k.state === 'damaged')
      return [
        {
          name,
          status: 'fail',
          evidence: `${keyFile} is damaged (${k.problem}); the gateway will not start with it`,
          todo: RESTORE,
          data: { keyFile, problem: k.problem },
        },
      ];
    if (k.state === 'absent') {
      const held = boxes.find((b) => b.held.state !== 'none');
      if (held)
        return [
          {
            name,
            status: 'fail',
            evidence:
              held.held.state === 'rows'
                ? `${keyFile} is missing and ${held.file} holds ${held.held.rows} sealed row(s) only that key opens: start refuses (GW_KEY_MISSING)`
                : `${keyFile} is missing and ${held.file} cannot be read to tell whether it holds records: start refuses (GW_KEY_MISSING)`,
            todo: RESTORE,
            data: { keyFile, sealedRows: rows },
          },
        ];
      return [
        { name, status: 'pass', evidence: `no key yet at ${keyFile} and no sealed outbox: the first start makes one`, data: { keyFile } },
      ];
    }
    const kcv = keyCheckValue(k.key);
    const data: Record<string, unknown> = { keyFile, keyCheck: kcv.slice(0, 12), sealedRows: rows };
    for (const b of boxes) {
      if (b.held.state === 'unreadable')
        return [
          {
            name,
            status: 'warn',
            evidence: `${b.file} could not be read to check the key against it`,
            todo: "check the file's permissions; start checks the key again",
            data,
          },
        ];
      if (b.held.state !== 'rows') continue;
      const fits =
        b.held.keyCheck !== undefined ? keyCheckMatches(b.held.keyCheck, kcv) : b.held.sample !== undefined && opens(k.key, b.held.sample);
      if (!fits)
        return [
          {
            name,
            status: 'fail',
            evidence: `${keyFile} (key check ${kcv.slice(0, 12)}) is not the key ${b.file} was sealed with (${b.held.rows} sealed row(s)): start refuses (GW_KEY_MISSING)`,
            todo: RESTORE,
            data,
          },
        ];
    }
    let mode = '';
    try {
      mode = (statSync(keyFile).mode & 0o777).toString(8).padStart(4, '0');
    } catch {
      /* read above; gone meanwhile is reported by the next run */
    }
    data.mode = mode;
    const ev = `${keyFile} present (key check ${kcv.slice(0, 12)}), opens the outbox (${rows} sealed row(s))`;
    if (ctx.platform !== 'win32' && mode && (Number.parseInt(mode, 8) & 0o077) !== 0)
      return [{ name, status: 'warn', evidence: `${ev}; mode ${mode}: readable by other users`, todo: `chmod 600 ${keyFile}`, data }];
    return [{ name, status: 'pass', evidence: `${ev}${mode ? `, mode ${mode}` : ''}`, data }];
  },
};
