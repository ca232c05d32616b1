/**
 * Who listens on a TCP port, from Linux's own tables: /proc/net/tcp and tcp6 list the listening
 * sockets (state 0A) with their inode, and /proc/<pid>/fd links name the socket inodes each process
 * holds. No native addon, no `ss`/`lsof` to depend on. A process of another user is invisible to a
 * non-root caller: its socket is then listed with no pid. Windows: `netstat -ano -p TCP` (and
 * TCPv6) read as text — a row whose foreign address has port 0 is a listener, which holds whatever
 * language Windows speaks (the state column, LISTENING, is translated) — and `tasklist` for the
 * command name. Elsewhere (macOS) the caller falls back to a connection attempt.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { createConnection } from 'node:net';

export interface PortListener {
  /** The address as bound: `127.0.0.1`, `0.0.0.0`, `::`, `::1`… */
  address: string;
  port: number;
  inode: string;
  /** The process holding it, when visible. */
  pid?: number;
  /** Its command name (/proc/<pid>/comm). */
  command?: string;
}

function ipv4(hex: string): string {
  // /proc prints the address as the host-order 32-bit word: little-endian on x86 and arm
  const b = Buffer.from(hex, 'hex');
  return `${b[3]}.${b[2]}.${b[1]}.${b[0]}`;
}

function ipv6(hex: string): string {
  // four host-order 32-bit words
  const b = Buffer.from(hex, 'hex');
  const out = Buffer.alloc(16);
  for (let w = 0; w < 4; w++) for (let i = 0; i < 4; i++) out[w * 4 + i] = b[w * 4 + 3 - i];
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(out.readUInt16BE(i).toString(16));
  const full = groups.join(':');
  if (full === '0:0:0:0:0:0:0:0') return '::';
  if (full === '0:0:0:0:0:0:0:1') return '::1';
  if (full.startsWith('0:0:0:0:0:ffff:')) return `::ffff:${out[12]}.${out[13]}.${out[14]}.${out[15]}`;
  return full;
}

/** Listening sockets on `port` (IPv4 and IPv6), or undefined where /proc/net/tcp does not exist. */
export function listenersOn(port: number): PortListener[] | undefined {
  const found: PortListener[] = [];
  let any = false;
  for (const [file, v6] of [
    ['/proc/net/tcp', false],
    ['/proc/net/tcp6', true],
  ] as const) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    any = true;
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10 || f[3] !== '0A') continue;
      const [addr, portHex] = f[1].split(':');
      if (Number.parseInt(portHex, 16) !== port) continue;
      found.push({ address: v6 ? ipv6(addr) : ipv4(addr), port, inode: f[9] });
    }
  }
  if (!any) return undefined;
  if (found.length) attachPids(found);
  return found;
}

function attachPids(listeners: PortListener[]): void {
  const byInode = new Map(listeners.map((l) => [`socket:[${l.inode}]`, l]));
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((n) => /^\d+$/.test(n));
  } catch {
    return;
  }
  let left = byInode.size;
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue; // gone, or another user's
    }
    for (const fd of fds) {
      let link: string;
      try {
        link = readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue;
      }
      const l = byInode.get(link);
      if (!l || l.pid !== undefined) continue;
      l.pid = Number(pid);
      try {
        l.command = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
      } catch {
        /* gone meanwhile */
      }
      if (--left === 0) return;
    }
  }
}

/** Whether something accepts a TCP connection at host:port within `timeoutMs` (closed at once, nothing sent). */
export function tcpAnswers(host: string, port: number, timeoutMs: number): Promise<{ ok: true; ms: number } | { ok: false; code: string }> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const s = createConnection({ host, port });
    const timer = setTimeout(() => {
      s.destroy();
      resolve({ ok: false, code: 'ETIMEDOUT' });
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(timer);
      s.destroy();
      resolve({ ok: true, ms: Math.round(performance.now() - t0) });
    });
    s.once('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve({ ok: false, code: e.code ?? 'error' });
    });
  });
}

/** Listening sockets on `port` in `netstat -ano` text (Windows): the local address, the pid. */
export function parseNetstatListeners(text: string, port: number): PortListener[] {
  const out: PortListener[] = [];
  for (const line of text.split(/\r?\n/)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 4 || f[0].toUpperCase() !== 'TCP') continue;
    const local = f[1];
    const foreign = f[2];
    const pid = Number(f[f.length - 1]);
    const lc = local.lastIndexOf(':');
    if (lc < 0 || Number(local.slice(lc + 1)) !== port) continue;
    if (!/:0$/.test(foreign)) continue; // a connection, not a listener
    out.push({
      address: local.slice(0, lc).replace(/^\[|\]$/g, ''),
      port,
      inode: '',
      ...(Number.isInteger(pid) && pid > 0 ? { pid } : {}),
    });
  }
  return out;
}

/** `tasklist /FO CSV /NH` text → the image name of its first row ("node.exe"), or undefined. */
export function parseTasklistName(text: string): string | undefined {
  return /^"([^"]+)","\d+"/m.exec(text.trim())?.[1];
}

type Exec = (file: string, args: readonly string[], timeoutMs: number) => Promise<{ code: number | null; stdout: string; error?: string }>;

/** Windows: the listeners on `port` from netstat, each with its image name from tasklist; undefined when netstat cannot run. */
export async function windowsListenersOn(exec: Exec, port: number): Promise<PortListener[] | undefined> {
  const [v4, v6] = await Promise.all([exec('netstat', ['-ano', '-p', 'TCP'], 4000), exec('netstat', ['-ano', '-p', 'TCPv6'], 4000)]);
  if (v4.code !== 0 && v6.code !== 0) return undefined;
  const found = [...parseNetstatListeners(v4.stdout, port), ...parseNetstatListeners(v6.stdout, port)];
  await Promise.all(
    [...new Set(found.map((l) => l.pid).filter((p) => p !== undefined))].map(async (pid) => {
      const t = await exec('tasklist', ['/FI', `PID eq ${pid}`, '/FO', 'CSV', '/NH'], 4000);
      const name = t.code === 0 ? parseTasklistName(t.stdout) : undefined;
      if (name) for (const l of found) if (l.pid === pid) l.command = name;
    }),
  );
  return found;
}
