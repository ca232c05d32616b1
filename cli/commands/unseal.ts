/**
 * `unseal`: the file sink's sealed NDJSON back to canonical records, one JSON line each. Any
 * number of files (`unseal data/outbound/*.ndjson`), each read line by line from a stream, so a
 * day of output is never held in memory whole.
 */
import { createReadStream, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { GatewayConfig } from '../../config/schema.ts';
import { gatewayPaths } from '../../gateway/create-gateway.ts';
import { createRecordSealer } from '../../gateway/crypto/record-sealer.ts';
import type { CliCommand } from '../command.ts';

interface Io {
  out(s: string): void;
  err(s: string): void;
  loadConfig(file?: string): GatewayConfig;
}

export const UNSEAL_HELP = `eyewear-gateway unseal FILE... [--config FILE]

Decrypts the file sink's sealed NDJSON (records-YYYY-MM-DD.ndjson, any number of files, e.g.
data/outbound/*.ndjson) with this gateway's key (<dataDir>/keys/seal.key) and prints the canonical
records, one JSON line each, file by file. Files are read line by line, at any size.
Exit 1 when a file cannot be read or a line cannot be opened (the others are still printed).
The output holds PHI: keep it on the practice's machines.`;

export async function unseal(files: string[], configFile: string | undefined, io: Io): Promise<number> {
  if (files.length === 0) {
    io.err(`unseal needs at least one FILE\n\n${UNSEAL_HELP}`);
    return 2;
  }
  const config = io.loadConfig(configFile);
  const paths = gatewayPaths(config);
  let key: Buffer;
  try {
    key = readFileSync(paths.keyFile);
  } catch {
    io.err(`no key at ${paths.keyFile}: use --config with this gateway's data directory`);
    return 1;
  }
  const sealer = createRecordSealer(key);
  let failed = false;
  for (const file of files) {
    let bad = 0;
    let lineNo = 0;
    const firstBad: number[] = [];
    try {
      const lines = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
      for await (const line of lines) {
        lineNo++;
        if (!line.trim()) continue;
        try {
          const row = JSON.parse(line) as { id: string; sealed: string };
          // a bundle's records are its JSON texts, one per line: printed one record per line as well
          io.out(sealer.open(row.id, Buffer.from(row.sealed, 'base64')).toString('utf8'));
        } catch {
          bad++;
          if (firstBad.length < 5) firstBad.push(lineNo);
        }
      }
    } catch (e) {
      io.err(`${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
      failed = true;
      continue;
    }
    if (bad) {
      failed = true;
      io.err(
        `${file}: ${bad} line(s) could not be opened (line ${firstBad.join(', ')}${bad > firstBad.length ? ', …' : ''}): another gateway's key, or damaged`,
      );
    }
  }
  return failed ? 1 : 0;
}

export const unsealCommand: CliCommand = {
  name: 'unseal',
  synopsis: 'unseal FILE... [--config FILE]',
  summary: 'Decrypt file-sink NDJSON files (records-YYYY-MM-DD.ndjson) to JSON lines.',
  help: UNSEAL_HELP,
  run: ({ positionals, configFile }, io) => unseal(positionals, configFile, io),
};
