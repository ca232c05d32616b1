/**
 * Who listens on a TCP port, from Linux's own tables: /proc/net/tcp and tcp6 list the listening
 * sockets (state 0A) with their inode, and /proc/<pid>/fd links name the socket inodes each process
 * holds. No native addon, no `ss`/`lsof` to depend on. A process of another user is invisible to a
 * non-root caller: its socket is then listed with no pid. Elsewhere (Windows, macOS) the tables do
 * not exist and the caller falls back to a connection attempt.
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
