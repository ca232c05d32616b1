/** Service definitions as text: the systemd unit (checked by the real systemd-analyze) and WinSW's XML. */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { XMLParser } from 'fast-xml-parser';
import { afterAll, describe, expect, it } from 'vitest';
import { systemdUnit } from '../../installer/service/systemd-unit.ts';
import { windowsAclScript, winswServiceXml } from '../../installer/service/windows-service.ts';

const base = {
  execPath: '/opt/eyewear-gateway/eyewear-gateway',
  configPath: '/etc/eyewear-gateway/gateway.yaml',
  user: 'eyewear-gateway',
  dataDir: '/var/lib/eyewear-gateway',
};

describe('systemdUnit', () => {
  const lines = systemdUnit(base).split('\n');
  const expected = [
    'Type=notify',
    'NotifyAccess=all',
    'WatchdogSec=60',
    'User=eyewear-gateway',
    'Group=eyewear-gateway',
    'StateDirectory=eyewear-gateway',
    'StateDirectoryMode=0700',
    'ExecStart=/opt/eyewear-gateway/eyewear-gateway start --config /etc/eyewear-gateway/gateway.yaml',
    'Restart=on-failure',
    'RestartSec=5',
    'StartLimitIntervalSec=300',
    'StartLimitBurst=10',
    'NoNewPrivileges=yes',
    'ProtectSystem=strict',
    'ProtectHome=yes',
    'PrivateTmp=yes',
    'PrivateDevices=yes',
    'ProtectKernelTunables=yes',
    'ProtectKernelModules=yes',
    'ProtectControlGroups=yes',
    'RestrictSUIDSGID=yes',
    'LockPersonality=yes',
    'RestrictRealtime=yes',
    'RestrictNamespaces=yes',
    'SystemCallArchitectures=native',
    'UMask=0077',
    'ReadWritePaths=/var/lib/eyewear-gateway /opt/eyewear-gateway',
    'RestartForceExitStatus=75',
    'SuccessExitStatus=75',
    'CapabilityBoundingSet=',
    'WantedBy=multi-user.target',
  ];
  it.each(expected)('has %s exactly once', (line) => {
    expect(lines.filter((l) => l === line)).toHaveLength(1);
  });
  it('directives are each set once, and MemoryDenyWriteExecute is not one of them', () => {
    const keys = lines.filter((l) => /^[A-Za-z]+=/.test(l)).map((l) => l.split('=')[0]);
    expect(new Set(keys).size).toBe(keys.length);
    expect(keys).not.toContain('MemoryDenyWriteExecute');
    expect(lines.some((l) => l.startsWith('#') && l.includes('MemoryDenyWriteExecute'))).toBe(true);
    expect(lines.indexOf('StartLimitBurst=10')).toBeLessThan(lines.indexOf('[Service]'));
  });
  it('lowPort grants only CAP_NET_BIND_SERVICE', () => {
    const l = systemdUnit({ ...base, lowPort: true }).split('\n');
    expect(l).toContain('CapabilityBoundingSet=CAP_NET_BIND_SERVICE');
    expect(l).toContain('AmbientCapabilities=CAP_NET_BIND_SERVICE');
  });
  it('refuses relative paths, spaces, and data outside /var/lib', () => {
    expect(() => systemdUnit({ ...base, execPath: 'bin/eyewear-gateway' })).toThrow(/execPath must be an absolute path/);
    expect(() => systemdUnit({ ...base, configPath: '/etc/my config.yaml' })).toThrow(/whitespace/);
    expect(() => systemdUnit({ ...base, dataDir: '/srv/data' })).toThrow(/under \/var\/lib/);
    expect(() => systemdUnit({ ...base, user: 'Bad User' })).toThrow(/valid system user/);
  });
  it('escapes specifiers and variables', () => {
    const l = systemdUnit({ ...base, configPath: '/etc/g%h$X.yaml' }).split('\n');
    expect(l).toContain(`ExecStart=${base.execPath} start --config /etc/g%%h$$X.yaml`);
  });

  const analyze = '/usr/bin/systemd-analyze';
  const tmp = mkdtempSync(join(tmpdir(), 'unit-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));
  it.skipIf(!existsSync(analyze))('systemd-analyze verify accepts it', () => {
    const exe = join(tmp, 'eyewear-gateway');
    writeFileSync(exe, '#!/bin/sh\nexit 0\n');
    chmodSync(exe, 0o755);
    const unit = join(tmp, 'eyewear-gateway.service');
    writeFileSync(unit, systemdUnit({ ...base, execPath: exe, configPath: join(tmp, 'gateway.yaml') }));
    const r = spawnSync(analyze, ['verify', '--man=no', unit], { encoding: 'utf8' });
    const out = `${r.stdout}${r.stderr}`;
    console.log(`systemd-analyze verify exit ${r.status}:\n${out}`);
    expect(out).not.toMatch(/Unknown (key|section|lvalue)|Invalid|Failed to parse/i);
    expect(r.status).toBe(0);
  });
});

describe('WinSW service XML', () => {
  const o = {
    exePath: 'C:\\Program Files\\A&B <x>\\eyewear-gateway.exe',
    configPath: "C:\\ProgramData\\O'Brien & <Co>\\gateway.yaml",
    dataDir: 'C:\\ProgramData\\eyewear-gateway',
  };
  const text = winswServiceXml(o);
  const doc = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@' }).parse(text).service;
  it('parses back to the exact values, escapes undone', () => {
    expect(text).toContain('A&amp;B &lt;x&gt;');
    expect(doc.id).toBe('eyewear-gateway');
    expect(doc.executable).toBe(o.exePath);
    expect(doc.arguments).toBe(`start --config "${o.configPath}"`);
    expect(doc.serviceaccount.username).toBe('NT AUTHORITY\\LocalService');
    expect(doc.onfailure).toEqual([
      { '@action': 'restart', '@delay': '10 sec' },
      { '@action': 'restart', '@delay': '10 sec' },
      { '@action': 'none' },
    ]);
    expect(doc.resetfailure).toBe('1 hour');
    expect(doc.log['@mode']).toBe('roll-by-size');
    expect(doc.startmode).toBe('Automatic');
    expect(String(doc.delayedAutoStart)).toBe('true');
  });
  it('refuses a relative path', () => {
    expect(() => winswServiceXml({ ...o, configPath: 'gateway.yaml' })).toThrow(/configPath must be an absolute path/);
  });
  it('ACL script lines', () => {
    expect(windowsAclScript({ dataDir: o.dataDir, account: 'NT AUTHORITY\\LocalService' }).split('\r\n')).toEqual([
      '@echo off',
      'icacls "C:\\ProgramData\\eyewear-gateway" /inheritance:r || exit /b 1',
      'icacls "C:\\ProgramData\\eyewear-gateway" /grant:r "NT AUTHORITY\\LocalService:(OI)(CI)M" || exit /b 1',
      'icacls "C:\\ProgramData\\eyewear-gateway" /grant:r "*S-1-5-32-544:(OI)(CI)F" || exit /b 1',
      'icacls "C:\\ProgramData\\eyewear-gateway" /grant:r "*S-1-5-18:(OI)(CI)F" || exit /b 1',
      '',
    ]);
  });
});
