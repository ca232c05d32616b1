/**
 * The updater inside a running gateway (issue 16 point 7): a periodic check of the signed manifest
 * at `updates.manifestUrl` (every `updates.checkIntervalMinutes`) and the signed `gateway.update`
 * cloud command both lead here:
 *
 *   fetch the manifest (bounded) → verify (pinned release keys, expiry, rollback, platform) → in the
 *   cohort? → download beside the executable with resume → verify size and SHA-256 → switch over
 *   (switch-over.ts: preflight, hand-over, health gate, rollback).
 *
 * One at a time: a second request while one runs is refused as busy. A version whose health gate
 * failed here is not tried again until a newer one is offered (history.jsonl says why). Every
 * refusal and failure is audited (history.jsonl, the log) and reported: `update.outcome` on the
 * bus (the MQTT sink puts it on `up/status`) and, for a command, its done/failed outcome. After a
 * switch-over the new process reports what the old one left in state.json (`reportPending`).
 */
import { chmodSync, mkdirSync } from 'node:fs';
import { isSea } from 'node:sea';
import { dirname } from 'node:path';
import type { GatewayConfig } from '../config/schema.ts';
import type { EventBus } from '../gateway/event-bus.ts';
import { GatewayError, isGatewayError } from '../gateway/errors.ts';
import { downloadTarget } from './download.ts';
import { inCohort, verifyManifest } from './manifest.ts';
import { pidAlive } from '../gateway/data-lease.ts';
import { manifestUrlOf, releaseKeysOf } from './pinned.ts';
import { markInterrupted, removeProbationMarker, selfGate, startVerdict } from './probation.ts';
import { switchOver, type SwitchOutcome } from './switch-over.ts';
import { appendHistory, readHistory, readUpdateState, writeUpdateState, type UpdateState } from './update-state.ts';

/** Manifests are small (a few targets and signatures); a larger answer is not one. */
const MAX_MANIFEST_BYTES = 64 * 1024;

export interface UpdateHost {
  config: GatewayConfig;
  dataDir: string;
  version: string;
  gatewayId: string;
  /** The executable an update replaces; undefined when running from the sources (updates refused). */
  executable: string | undefined;
  platform: string;
  /** The running gateway's bus (it changes after a rollback resumes the gateway). */
  bus(): EventBus;
  /** Whether the running gateway's sink is connected now. */
  sinkConnected(): boolean;
  adminToken(): string | undefined;
  stopGateway(): Promise<void>;
  handOver(): string;
  resumeGateway(handOverToken: string): Promise<void>;
  /** Called once the new version passed its gate: this process leaves (exit 0). */
  exitAfterUpdate(): void;
  /** Restart mode: the new file is in place; release the lease and exit non-zero for the service manager to start it. */
  exitForRestart(): void;
  /** This version failed its own gate and the previous file is back: stop and exit non-zero. */
  exitAfterRollback(): void;
  /** The running gateway's readiness (its /ready). */
  ready(): { ready: boolean; reasons: string[] };
  args: readonly string[];
  env: Readonly<Record<string, string | undefined>>;
  log(level: 'info' | 'warn' | 'error', fields: Record<string, unknown>, msg: string): void;
  fetchImpl?: typeof fetch;
  now?: () => number;
}

export type CheckResult =
  | { result: 'up-to-date'; version: string }
  | { result: 'not-in-cohort'; version: string }
  | { result: 'skipped'; version: string; reason: string }
  | { result: 'refused' | 'failed'; reason: string; code?: string }
  | ({ result: 'switched'; version: string } & SwitchOutcome);

export interface UpdateRunner {
  /** One check (and switch-over when there is a newer version); resolves with what happened. */
  check(req?: { commandId?: string; manifestUrl?: string }): Promise<CheckResult>;
  /** The hook for `gateway.update` commands: starts a check, or says why not. */
  request(req: { commandId: string; manifestUrl?: string }): string | undefined;
  /** Starts the periodic check (updates.checkIntervalMinutes; 0: none). */
  startPeriodic(): void;
  /** Reports the outcome a previous process left in state.json (after a switch-over or a rollback), once. */
  reportPending(): void;
  /** At start: a switch-over state.json leaves undecided is judged (probation.ts), then the pending outcome is reported. */
  atStart(): void;
  stop(): void;
}

function allowedUrl(u: string): string | undefined {
  let url: URL;
  try {
    url = new URL(u);
  } catch {
    return `${u} is not a URL`;
  }
  if (url.protocol === 'https:') return undefined;
  const loopback = url.hostname === '127.0.0.1' || url.hostname === 'localhost' || url.hostname === '[::1]';
  if (url.protocol === 'http:' && loopback) return undefined;
  return `${url.protocol}//${url.host} is not allowed: the manifest and targets are fetched over https (http only from this machine)`;
}

export function createUpdateRunner(h: UpdateHost): UpdateRunner {
  const now = h.now ?? Date.now;
  const at = () => new Date(now()).toISOString();
  let busy = false;
  let timer: NodeJS.Timeout | undefined;
  const timers: NodeJS.Timeout[] = [];
  let offPending: (() => void) | undefined;

  const emit = (e: { outcome: string; from: string; to?: string; reason?: string; commandId?: string }) => {
    h.bus().emit('update.outcome', e);
  };
  const commandOutcome = (commandId: string | undefined, ok: boolean, detail: string, code?: string) => {
    if (!commandId) return;
    h.bus().emit('command.outcome', { commandId, status: ok ? 'done' : 'failed', detail, ...(code ? { code } : {}) });
  };

  async function fetchManifest(url: string): Promise<string> {
    const res = await (h.fetchImpl ?? fetch)(url, { signal: AbortSignal.timeout(30_000), redirect: 'error' });
    if (res.status !== 200) {
      await res.body?.cancel();
      throw new Error(`the manifest at ${url} answered HTTP ${res.status}`);
    }
    const chunks: Uint8Array[] = [];
    let n = 0;
    if (res.body)
      for await (const c of res.body) {
        n += (c as Uint8Array).length;
        if (n > MAX_MANIFEST_BYTES)
          throw new GatewayError('GW_UPDATE_REFUSED', `the manifest at ${url} is larger than ${MAX_MANIFEST_BYTES} bytes`);
        chunks.push(c as Uint8Array);
      }
    return Buffer.concat(chunks).toString('utf8');
  }

  async function checkOnce(req: { commandId?: string; manifestUrl?: string }): Promise<CheckResult> {
    const url = req.manifestUrl ?? manifestUrlOf(h.config);
    if (!url) return { result: 'refused', reason: 'no manifest URL: set updates.manifestUrl, or send it in the gateway.update command' };
    const badUrl = allowedUrl(url);
    if (badUrl) return { result: 'refused', reason: badUrl };
    const keys = releaseKeysOf(h.config).keys;
    if (keys.length === 0)
      return {
        result: 'refused',
        reason: 'no release key is pinned (none built into this executable, cloud.releaseKeys empty), so no update can be accepted',
      };
    let text: string;
    try {
      text = await fetchManifest(url);
    } catch (e) {
      return { result: 'failed', reason: isGatewayError(e) ? e.message : `could not fetch the manifest: ${(e as Error).message}` };
    }
    // what it offers, read before the signature only to tell "nothing new" from a refusal: the check below decides
    let offered: string | undefined;
    try {
      offered = (JSON.parse(text) as { signed?: { version?: unknown } }).signed?.version as string | undefined;
    } catch {
      offered = undefined;
    }
    if (typeof offered === 'string' && offered === h.version) return { result: 'up-to-date', version: h.version };
    let v;
    try {
      v = verifyManifest(
        text,
        { publicKeysPem: keys, threshold: h.config.cloud.releaseKeyThreshold },
        { installedVersion: h.version, platform: h.platform, now: now() },
      );
    } catch (e) {
      if (!isGatewayError(e)) throw e;
      return { result: 'refused', reason: e.message, code: e.code };
    }
    if (!inCohort(h.gatewayId, v.version, v.cohort)) return { result: 'not-in-cohort', version: v.version };
    const failedHere = readHistory(h.dataDir).filter((x) => x.event === 'rolled-back' && x.to === v.version);
    if (failedHere.length > 0)
      return {
        result: 'skipped',
        version: v.version,
        reason: `${v.version} failed its health gate here before (${failedHere.at(-1)!.reason ?? 'see history.jsonl'}); waiting for a newer release`,
      };
    if (!h.executable)
      return {
        result: 'refused',
        reason:
          'this gateway runs from the TypeScript sources, not the packaged executable: there is no file to replace (set updates.executable)',
      };
    if (!h.config.admin.enabled) return { result: 'refused', reason: 'the health gate needs the admin API (admin.enabled: true)' };
    const mode = switchMode(h.config.updates.mode, h.env, process.platform);
    if (mode === 'hand-over' && h.env.NOTIFY_SOCKET)
      return {
        result: 'refused',
        reason:
          'updates.mode is hand-over, but systemd runs this gateway: the unit would stop with its main process; set updates.mode to auto or restart',
      };
    const staged = `${h.executable}.staged`;
    mkdirSync(dirname(staged), { recursive: true });
    try {
      // bounded: 10 minutes, or longer for a large file at 64 KiB/s; an interrupted download resumes on the next check
      const p = await downloadTarget(v.target, staged, {
        fetchImpl: h.fetchImpl,
        signal: AbortSignal.timeout(Math.max(600_000, Math.ceil(v.target.size / 65_536) * 1000)),
      });
      h.log('info', { code: 'GW_UPDATE', to: v.version, bytes: p.received, resumedFrom: p.resumedFrom }, 'update: downloaded and verified');
    } catch (e) {
      if (isGatewayError(e)) return { result: 'refused', reason: e.message, code: e.code };
      return { result: 'failed', reason: `download failed (it resumes on the next check): ${(e as Error).message}` };
    }
    chmodSync(staged, 0o755);
    const host = h.config.admin.host === '0.0.0.0' || h.config.admin.host === '::' ? '127.0.0.1' : h.config.admin.host;
    const admin = `http://${host.includes(':') ? `[${host}]` : host}:${h.config.admin.port}`;
    const out = await switchOver({
      dataDir: h.dataDir,
      executable: h.executable,
      staged,
      from: h.version,
      to: v.version,
      args: h.args,
      env: h.env,
      healthWindowMs: h.config.updates.healthWindowSeconds * 1000,
      readyUrl: `${admin}/ready`,
      statusUrl: `${admin}/status`,
      adminToken: h.adminToken(),
      requireSink: h.sinkConnected(),
      stopGateway: h.stopGateway,
      handOver: h.handOver,
      resumeGateway: h.resumeGateway,
      log: h.log,
      ...(req.commandId ? { commandId: req.commandId } : {}),
      mode,
      exitForRestart: h.exitForRestart,
    });
    return { result: 'switched', version: v.version, ...out };
  }

  /** This version judges its own gate (restart mode, or its judge is gone); a failure puts the previous file back and exits. */
  function judgeSelf(state: UpdateState): void {
    h.log('info', { code: 'GW_UPDATE', from: state.from, to: state.to }, "update: on probation; judging this version's health gate");
    void selfGate({
      dataDir: h.dataDir,
      state,
      windowMs: h.config.updates.healthWindowSeconds * 1000,
      ready: h.ready,
      sinkConnected: h.sinkConnected,
    }).then(
      (r) => {
        if (h.executable) removeProbationMarker(h.executable);
        if (r.passed) runner.reportPending();
        else {
          h.log(
            'error',
            { code: 'GW_UPDATE_ROLLED_BACK', from: state.from, to: state.to, reason: r.reason },
            'update: this version failed its gate; the previous executable is back; exiting for the service manager to start it',
          );
          h.exitAfterRollback();
        }
      },
      (e: unknown) => h.log('error', { code: 'GW_UPDATE', err: (e as Error).message }, 'update: the self-judged gate failed to run'),
    );
  }

  const runner: UpdateRunner = {
    async check(req = {}) {
      if (busy) return { result: 'refused', reason: 'an update check is already running' };
      busy = true;
      let r: CheckResult;
      try {
        r = await checkOnce(req);
      } catch (e) {
        r = { result: 'failed', reason: (e as Error).message };
      } finally {
        busy = false;
      }
      const from = h.version;
      switch (r.result) {
        case 'up-to-date':
        case 'not-in-cohort':
          h.log('info', { code: 'GW_UPDATE', result: r.result, version: r.version }, `update check: ${r.result}`);
          commandOutcome(
            req.commandId,
            true,
            r.result === 'up-to-date' ? `already at ${r.version}` : `${r.version} is not for this gateway's cohort`,
          );
          emit({ outcome: r.result, from, to: r.version, ...(req.commandId ? { commandId: req.commandId } : {}) });
          break;
        case 'skipped':
          h.log('warn', { code: 'GW_UPDATE', result: r.result, version: r.version, reason: r.reason }, 'update check: skipped');
          commandOutcome(req.commandId, false, r.reason);
          emit({ outcome: 'skipped', from, to: r.version, reason: r.reason, ...(req.commandId ? { commandId: req.commandId } : {}) });
          break;
        case 'refused':
        case 'failed':
          appendHistory(h.dataDir, {
            at: at(),
            event: r.result === 'refused' ? 'refused' : 'check-failed',
            from,
            reason: r.reason,
            ...(r.code ? { code: r.code } : {}),
          });
          h.log(
            r.result === 'refused' ? 'error' : 'warn',
            { code: r.code ?? 'GW_UPDATE', result: r.result, reason: r.reason },
            `update ${r.result}`,
          );
          commandOutcome(req.commandId, false, r.reason, r.code);
          emit({ outcome: r.result, from, reason: r.reason, ...(req.commandId ? { commandId: req.commandId } : {}) });
          break;
        case 'switched':
          if (r.outcome === 'updated') h.exitAfterUpdate();
          else runner.reportPending();
          break;
      }
      return r;
    },
    request(req) {
      if (busy) return 'an update check is already running; send a new gateway.update command once it is done';
      void runner.check(req);
      return undefined;
    },
    startPeriodic() {
      const minutes = h.config.updates.checkIntervalMinutes;
      if (minutes === 0 || !manifestUrlOf(h.config)) return;
      timer = setInterval(() => void runner.check(), minutes * 60_000);
      timer.unref();
    },
    atStart() {
      const v = startVerdict(h.dataDir, h.version, h.env);
      if (v.kind === 'interrupted') {
        markInterrupted(h.dataDir, v.state, now());
        h.log(
          'error',
          { code: 'GW_UPDATE_ROLLED_BACK', from: v.state.from, to: v.state.to },
          'update: the last switch-over was interrupted; this version runs on',
        );
      } else if (v.kind === 'self-gate') {
        judgeSelf(v.state);
        return;
      } else if (v.kind === 'supervised') {
        // the old process judges this one: its verdict lands in state.json; if it goes without one, this one judges itself
        const look = setInterval(() => {
          const cur = readUpdateState(h.dataDir);
          if (cur?.outcome) {
            clearInterval(look);
            runner.reportPending();
          } else if (cur && cur.supervisorPid !== undefined && !pidAlive(cur.supervisorPid)) {
            clearInterval(look);
            h.log(
              'warn',
              { code: 'GW_UPDATE', supervisorPid: cur.supervisorPid },
              'update: the process judging this version is gone; judging itself',
            );
            judgeSelf(cur);
          }
        }, 500);
        look.unref();
        timers.push(look);
        return;
      }
      runner.reportPending();
    },
    reportPending() {
      const s = readUpdateState(h.dataDir);
      if (!s?.outcome || s.reported) return;
      const send = () => {
        offPending?.();
        offPending = undefined;
        const cur = readUpdateState(h.dataDir);
        if (!cur?.outcome || cur.reported) return;
        emit({
          outcome: cur.outcome,
          from: cur.from,
          to: cur.to,
          ...(cur.reason ? { reason: cur.reason } : {}),
          ...(cur.commandId ? { commandId: cur.commandId } : {}),
        });
        if (cur.commandId)
          commandOutcome(
            cur.commandId,
            cur.outcome === 'updated',
            cur.outcome === 'updated' ? `updated ${cur.from} -> ${cur.to}` : `rolled back to ${cur.from}: ${cur.reason ?? ''}`,
            cur.outcome === 'updated' ? undefined : 'GW_UPDATE_ROLLED_BACK',
          );
        writeUpdateState(h.dataDir, { ...cur, reported: true });
        h.log(
          cur.outcome === 'updated' ? 'info' : 'error',
          { code: cur.outcome === 'updated' ? 'GW_UPDATE' : 'GW_UPDATE_ROLLED_BACK', from: cur.from, to: cur.to, reason: cur.reason },
          `update outcome: ${cur.outcome}`,
        );
      };
      // up/status carries it only while connected: send when the sink is (the file sink has no cloud to tell)
      if (h.config.relay.sink === 'file' || h.sinkConnected()) send();
      else offPending = h.bus().on('sink.connected', send);
    },
    stop() {
      if (timer) clearInterval(timer);
      for (const t of timers) clearInterval(t);
      offPending?.();
    },
  };
  return runner;
}

/**
 * How the new version starts: `restart` under a service manager (systemd sets NOTIFY_SOCKET; on
 * Windows WinSW owns the process), which starts the executable again on exit 75; `hand-over` for a
 * gateway nobody restarts (run in a terminal, a container's only process).
 */
export function switchMode(
  configured: 'auto' | 'hand-over' | 'restart',
  env: Readonly<Record<string, string | undefined>>,
  platform: NodeJS.Platform,
): 'hand-over' | 'restart' {
  if (configured !== 'auto') return configured;
  return platform === 'win32' || env.NOTIFY_SOCKET ? 'restart' : 'hand-over';
}

/** The executable an update replaces: `updates.executable`, else this process's when it is the packaged one (Node SEA). */
export function updateExecutable(config: GatewayConfig): string | undefined {
  if (config.updates.executable) return config.updates.executable;
  return isSea() ? process.execPath : undefined;
}
