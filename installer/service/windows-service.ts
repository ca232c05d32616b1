/**
 * The gateway as a Windows service through WinSW v3: maintained, a single .exe beside an XML
 * definition, and it sets the service's recovery actions itself. node-windows and NSSM are
 * unmaintained; shawl is an alternative if WinSW ever is not. Pure text generators.
 */

export interface WinswOptions {
  exePath: string;
  configPath: string;
  dataDir: string;
  serviceId?: string;
  /** Default NT AUTHORITY\LocalService: no password, no rights beyond those granted on dataDir. */
  account?: string;
}

const xml = (s: string) =>
  s.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;').replaceAll("'", '&apos;');

function checkWindowsPath(what: string, p: string): void {
  if (!/^[A-Za-z]:\\/.test(p) && !p.startsWith('\\\\')) {
    throw new Error(`windows service: ${what} must be an absolute path (C:\\... or \\\\server\\...), got ${JSON.stringify(p)}`);
  }
  // A quote cannot be escaped inside a Windows command-line argument the service receives.
  if (p.includes('"')) throw new Error(`windows service: ${what} ${JSON.stringify(p)} must not contain a double quote`);
}

export function winswServiceXml(o: WinswOptions): string {
  checkWindowsPath('exePath', o.exePath);
  checkWindowsPath('configPath', o.configPath);
  checkWindowsPath('dataDir', o.dataDir);
  const id = o.serviceId ?? 'eyewear-gateway';
  const account = o.account ?? 'NT AUTHORITY\\LocalService';
  return [
    '<service>',
    `  <id>${xml(id)}</id>`,
    `  <name>${xml(id)}</name>`,
    '  <description>eyewear-ML edge gateway</description>',
    `  <executable>${xml(o.exePath)}</executable>`,
    `  <arguments>${xml(`start --config "${o.configPath}"`)}</arguments>`,
    `  <workingdirectory>${xml(o.dataDir)}</workingdirectory>`,
    '  <serviceaccount>',
    `    <username>${xml(account)}</username>`,
    '  </serviceaccount>',
    '  <onfailure action="restart" delay="10 sec"/>',
    '  <onfailure action="restart" delay="10 sec"/>',
    '  <onfailure action="none"/>',
    '  <resetfailure>1 hour</resetfailure>',
    `  <logpath>${xml(`${o.dataDir}\\logs`)}</logpath>`,
    '  <log mode="roll-by-size">',
    '    <sizeThreshold>10240</sizeThreshold>',
    '    <keepFiles>8</keepFiles>',
    '  </log>',
    '  <startmode>Automatic</startmode>',
    '  <delayedAutoStart>true</delayedAutoStart>',
    '</service>',
    '',
  ].join('\r\n');
}

/**
 * icacls lines for a .cmd script: the data folder readable by the service account and admins only.
 * Given the program folder too, the account may modify it (a signed update replaces the executable
 * there; updater/switch-over.ts renames the running .exe aside).
 */
/** The program folder's grant: the account may modify it (inheritance kept: administrators keep theirs). */
export function windowsProgramAcl(o: { programDir: string; account: string }): string {
  checkWindowsPath('programDir', o.programDir);
  if (o.account.includes('"')) throw new Error('windows service: account must not contain a double quote');
  return `icacls "${o.programDir.replaceAll('%', '%%')}" /grant "${o.account.replaceAll('%', '%%')}:(OI)(CI)M" || exit /b 1\r\n`;
}

export function windowsAclScript(o: { dataDir: string; account: string }): string {
  checkWindowsPath('dataDir', o.dataDir);
  if (o.account.includes('"')) throw new Error('windows service: account must not contain a double quote');
  // cmd expands %VAR% even inside quotes; doubling is the .cmd-file escape.
  const d = o.dataDir.replaceAll('%', '%%');
  const a = o.account.replaceAll('%', '%%');
  return [
    '@echo off',
    `icacls "${d}" /inheritance:r || exit /b 1`,
    `icacls "${d}" /grant:r "${a}:(OI)(CI)M" || exit /b 1`,
    `icacls "${d}" /grant:r "*S-1-5-32-544:(OI)(CI)F" || exit /b 1`,
    `icacls "${d}" /grant:r "*S-1-5-18:(OI)(CI)F" || exit /b 1`,
    '',
  ].join('\r\n');
}
