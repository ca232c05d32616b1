/**
 * Step 1 of setup: what can be seen from this machine without credentials — whether something
 * already listens on the usual MLLP port, and which database servers answer on loopback's usual
 * ports. Each finding is a hint ("something answers on 127.0.0.1:5432, PostgreSQL's usual port"),
 * never a vendor named as fact: a port says nothing sure about what is behind it.
 */
import { connect } from 'node:net';
import { DB_PORTS, type DbEngine } from './setup-plan.ts';

export interface Hint {
  readonly what: string;
  /** The value a prompt may offer as its default because of this hint. */
  readonly suggests?:
    | { readonly kind: 'db'; readonly engine: DbEngine; readonly port: number }
    | { readonly kind: 'hl7-port-taken'; readonly port: number };
}

/** Resolves true when a TCP connection to host:port is accepted within `timeoutMs`. */
export function answers(host: string, port: number, timeoutMs = 800): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    const done = (ok: boolean) => {
      clearTimeout(t);
      s.destroy();
      resolve(ok);
    };
    const t = setTimeout(() => done(false), timeoutMs);
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

export interface DetectOptions {
  readonly host?: string;
  /** The MLLP port to look at (default 2575, the IANA-registered HL7 port). */
  readonly hl7Port?: number;
  /** Ports per engine (default: the engines' usual ones); tests point these at their own servers. */
  readonly dbPorts?: Partial<Record<Exclude<DbEngine, 'sqlite'>, number>>;
}

export async function detect(o: DetectOptions = {}): Promise<Hint[]> {
  const host = o.host ?? '127.0.0.1';
  const hl7Port = o.hl7Port ?? 2575;
  const ports = { ...DB_PORTS, ...o.dbPorts };
  const names: Record<Exclude<DbEngine, 'sqlite'>, string> = { postgres: 'PostgreSQL', mariadb: 'MariaDB/MySQL', mssql: 'SQL Server' };
  const [hl7, ...dbs] = await Promise.all([
    answers(host, hl7Port),
    ...(Object.keys(ports) as Array<keyof typeof ports>).map(async (engine) => ({
      engine,
      port: ports[engine],
      up: await answers(host, ports[engine]),
    })),
  ]);
  const hints: Hint[] = [];
  if (hl7)
    hints.push({
      what: `something already listens on ${host}:${hl7Port}, the usual HL7 MLLP port (another gateway or an interface engine?): this gateway will need another port, or that program stopped`,
      suggests: { kind: 'hl7-port-taken', port: hl7Port },
    });
  for (const d of dbs as Array<{ engine: Exclude<DbEngine, 'sqlite'>; port: number; up: boolean }>)
    if (d.up)
      hints.push({
        what: `something answers on ${host}:${d.port}, ${names[d.engine]}'s usual port (perhaps the PMS database; only a login will tell)`,
        suggests: { kind: 'db', engine: d.engine, port: d.port },
      });
  return hints;
}
