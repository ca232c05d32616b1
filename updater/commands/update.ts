/**
 * `update verify MANIFEST [--download DIR] [--platform P]`: checks a signed update manifest against
 * the release keys pinned in the config, and with --download fetches this platform's target into DIR
 * (resuming a `.part` left by an earlier try) and checks its size and SHA-256. It installs nothing:
 * the staged hand-over and the health-gated rollback are not built yet (updater/README.md).
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { isGatewayError } from '../../gateway/errors.ts';
import { gatewayVersion } from '../../gateway/version.ts';
import { type CliCommand, type CliIo, EXIT } from '../../cli/command.ts';
import type { GatewayConfig } from '../../config/schema.ts';
import { gatewayPaths } from '../../gateway/create-gateway.ts';
import { manifestUrlOf, releaseKeysOf } from '../pinned.ts';
import { readHistory, readUpdateState } from '../update-state.ts';
import { downloadTarget } from '../download.ts';
import { inCohort, verifyManifest } from '../manifest.ts';

const HELP = `eyewear-gateway update verify MANIFEST [--download DIR] [--platform P] [--config FILE]
eyewear-gateway update status [--json] [--config FILE]

Checks an update manifest (JSON, signed by the cloud's release keys) against cloud.releaseKeys and
cloud.releaseKeyThreshold in the config: signatures, expiry, that its version is newer than this
one (${'${installed}'}), the minimum version, and that it has a target for this platform.
--download DIR  also downloads the target into DIR (resuming an interrupted download) and checks
                its size and SHA-256. Nothing is installed.
--platform P    check the target of another platform (linux-x64, win32-x64).
Exit 0: valid (and downloaded); 1: refused, with the reason; 2: usage; 3: config.

status  what the updater did last: the switch-over's phase and outcome (<dataDir>/update/state.json)
        and the last decisions (history.jsonl: applied, rolled back, refused, failed checks, why).
        A running gateway checks updates.manifestUrl every updates.checkIntervalMinutes, and a signed
        gateway.update command from the cloud checks at once.`;

export const updateCommand: CliCommand = {
  name: 'update',
  synopsis: 'update verify MANIFEST | status',
  summary:
    'Check a signed update manifest (and download its target) against the pinned release keys;\nstatus: what the updater did last and why.',
  help: HELP.replace('${installed}', gatewayVersion()),
  options: { download: { type: 'string' }, platform: { type: 'string' }, json: { type: 'boolean' } },
  run: async ({ positionals, values, configFile }, io) => {
    const [sub, manifestPath] = positionals;
    if (sub === 'status') return status(io.loadConfig(configFile), io, values.json === true);
    if (sub !== 'verify' || !manifestPath) {
      io.err('usage: eyewear-gateway update verify MANIFEST [--download DIR] [--platform P] | update status [--json]');
      return EXIT.usage;
    }
    const config = io.loadConfig(configFile);
    const pinned = releaseKeysOf(config);
    if (pinned.keys.length === 0) {
      io.err(
        'error GW_CONFIG_INVALID: no release key is pinned (none built into this executable, cloud.releaseKeys empty), so no update can be accepted',
      );
      io.err('what to do: add the release keys the eyewear-ML cloud published to cloud.releaseKeys (${file:/path/release-1.pem})');
      return EXIT.config;
    }
    const platform = typeof values.platform === 'string' ? values.platform : `${process.platform}-${process.arch}`;
    let text: string;
    try {
      text = readFileSync(manifestPath, 'utf8');
    } catch (e) {
      io.err(`error: cannot read ${manifestPath}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
      return EXIT.failure;
    }
    // a refusal (GW_UPDATE_REFUSED) goes to the CLI's error printer: its code, the reason, what to do, exit 1
    const v = verifyManifest(
      text,
      { publicKeysPem: pinned.keys, threshold: config.cloud.releaseKeyThreshold },
      { installedVersion: gatewayVersion(), platform, now: Date.now() },
    );
    io.out(
      `manifest valid: ${gatewayVersion()} -> ${v.version} for ${platform}, signed by ${v.signedBy.length} pinned key(s), expires ${v.expires}`,
    );
    io.out(`target: ${v.target.url} (${v.target.size} bytes, sha256 ${v.target.sha256})`);
    if (v.cohort)
      io.out(`cohort: this gateway (${config.gateway.id}) is ${inCohort(config.gateway.id, v.version, v.cohort) ? 'in' : 'not in'} it`);
    const dir = values.download;
    if (typeof dir !== 'string') return EXIT.ok;
    mkdirSync(dir, { recursive: true });
    const dest = join(dir, `${basename(new URL(v.target.url).pathname) || 'eyewear-gateway'}-${v.version}`);
    let shown = -1;
    try {
      const p = await downloadTarget(v.target, dest, {
        onProgress: ({ received, size }) => {
          const pct = Math.floor((received / size) * 10) * 10;
          if (pct !== shown) {
            shown = pct;
            io.err(`downloading: ${pct}% (${received} of ${size} bytes)`);
          }
        },
      });
      io.out(`downloaded and verified: ${dest}${p.resumedFrom > 0 ? ` (resumed from byte ${p.resumedFrom})` : ''}`);
      return EXIT.ok;
    } catch (e) {
      if (isGatewayError(e)) throw e;
      io.err(
        `error: download of ${v.target.url} failed: ${(e as Error).message}\nwhat to do: run the same command again; it resumes from ${dest}.part`,
      );
      return EXIT.unreachable;
    }
  },
};

/** `update status`: state.json and the last ten decisions, read-only (no lease needed). */
function status(config: GatewayConfig, io: CliIo, json: boolean): number {
  const dataDir = gatewayPaths(config).dataDir;
  const state = readUpdateState(dataDir);
  const history = readHistory(dataDir).slice(-10);
  if (json) {
    io.out(JSON.stringify({ version: gatewayVersion(), state: state ?? null, history }, null, 2));
    return EXIT.ok;
  }
  io.out(`installed: ${gatewayVersion()}`);
  io.out(
    `manifest: ${manifestUrlOf(config) ?? '(none: only a signed gateway.update command starts a check)'}${manifestUrlOf(config) && config.updates.checkIntervalMinutes > 0 ? `, checked every ${config.updates.checkIntervalMinutes} min` : ''}`,
  );
  const pinned = releaseKeysOf(config);
  io.out(
    `release keys: ${pinned.keys.length} (${pinned.from === 'build' ? 'built into this executable' : pinned.from === 'config' ? 'cloud.releaseKeys' : 'none: no update can be accepted'}), ${config.cloud.releaseKeyThreshold} needed`,
  );
  if (!state) io.out('last switch-over: none');
  else
    io.out(
      `last switch-over: ${state.from} -> ${state.to}, ${state.outcome ?? state.phase} at ${state.at}${state.reason ? ` (${state.reason})` : ''}`,
    );
  if (history.length === 0) io.out('history: empty');
  else {
    io.out('history (last 10):');
    for (const e of history)
      io.out(
        `  ${e.at} ${e.event}${e.to ? ` ${e.from ?? '?'} -> ${e.to}` : ''}${e.code ? ` ${e.code}` : ''}${e.reason ? `: ${e.reason}` : ''}`,
      );
  }
  return EXIT.ok;
}
