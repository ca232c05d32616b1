/**
 * `send`: HL7 messages from files over MLLP, printing each answer's MSA — a technician's check that
 * the listener is reachable and maps. To the configured listener it first checks, through the admin
 * API, that the port is this config's gateway's and its MLLP listener is up; --host/--port send as told.
 */
import type { GatewayConfig } from '../../config/schema.ts';
import { connectMllp, frameMllp, readAck, splitHl7Messages, type MllpClient } from '../../adapters/hl7v2/index.ts';
import type { CliCommand, CliIo } from '../command.ts';
import { ownGatewayStatus } from './status.ts';

const SEND_HELP = `eyewear-gateway send FILE... [--host H] [--port P] [--config FILE]

Sends every HL7 message in FILE(s) over MLLP (default: the configured listener, 127.0.0.1:2575)
and prints one line per answer: control id, MSA-1 code, and the ERR text if any. Exit 1 if any
answer was not AA/CA or none came.
To the configured listener it first asks the admin API, as status does, that this config's gateway
runs there and its MLLP listener (adapter hl7v2) is up; if not, it says why and exits 4, sending
nothing. With --host or --port it sends where told, without that check.`;

export const sendCommand: CliCommand = {
  name: 'send',
  synopsis: 'send FILE... [--host H] [--port P]',
  summary: `Send the HL7 messages in FILE(s) over MLLP and print each answer's MSA
(a technician's check that the listener is reachable and maps).`,
  help: SEND_HELP,
  options: { host: { type: 'string' }, port: { type: 'string' } },
  run: ({ positionals, values, configFile }, io) =>
    send(positionals, { host: values.host as string | undefined, port: values.port as string | undefined, configFile }, io),
};

async function send(files: string[], o: { host?: string; port?: string; configFile?: string }, io: CliIo): Promise<number> {
  if (files.length === 0) {
    io.err(`send needs at least one FILE\n\n${SEND_HELP}`);
    return 2;
  }
  const config = io.loadConfig(o.configFile);
  let host = o.host ?? (config.hl7.host === '0.0.0.0' ? '127.0.0.1' : config.hl7.host);
  let port = o.port !== undefined ? Number(o.port) : config.hl7.port;
  if (!Number.isInteger(port) || port <= 0 || port > 65535) {
    io.err(`--port must be 1-65535, got ${o.port}`);
    return 2;
  }
  if (o.host === undefined && o.port === undefined) {
    const own = await ownListener(config, o.configFile, io);
    if (typeof own === 'number') return own;
    port = own.port;
    host = own.host;
  }
  let client: MllpClient;
  try {
    client = await connectMllp(host, port);
  } catch (e) {
    io.err(
      `cannot connect to ${host}:${port} (${(e as NodeJS.ErrnoException).code ?? 'error'}) — is the gateway running and is the port right?`,
    );
    return 4;
  }
  let bad = 0;
  try {
    for (const file of files) {
      for (const m of splitHl7Messages(io.readFile(file))) {
        // enhanced mode (MSH-15/16 valued) may answer twice (CA, then AA) or not at all (NE, ER)
        const msh = (m.split(/\r\n|\r|\n/)[0] ?? '').split(m[3] ?? '|');
        const enhanced = Boolean(msh[14] || msh[15]);
        const firstWait = !enhanced || ['', 'AL', 'SU'].includes((msh[14] ?? '').toUpperCase()) ? 15_000 : 2_000;
        client.writeRaw(frameMllp(m));
        const answers: string[] = [];
        try {
          answers.push(await client.nextAnswer(firstWait));
          if (enhanced) answers.push(await client.nextAnswer(500));
        } catch {
          /* no (further) answer */
        }
        if (answers.length === 0) {
          if (enhanced) io.out(`${msh[9] ?? '?'} no answer (MSH-15/16 allow none)`);
          else {
            bad++;
            io.out(`${msh[9] ?? '?'} no answer within ${firstWait / 1000} s`);
          }
        }
        for (const a of answers) {
          const ack = readAck(a);
          if (ack.code !== 'AA' && ack.code !== 'CA') bad++;
          io.out(`${ack.controlId || '?'} ${ack.code}${ack.err ? ` ${ack.err}` : ''}`);
        }
      }
    }
  } finally {
    await client.close();
  }
  return bad ? 1 : 0;
}

/**
 * The configured MLLP listener, once the admin API has shown that this config's gateway runs and
 * its hl7v2 adapter is up (so the messages do not go to another program holding the port, or to
 * another gateway); else exit 4 after saying why.
 */
async function ownListener(
  config: GatewayConfig,
  configFile: string | undefined,
  io: CliIo,
): Promise<{ host: string; port: number } | number> {
  const host = config.hl7.host === '0.0.0.0' ? '127.0.0.1' : config.hl7.host;
  const sendAnyway = `To send to ${host}:${config.hl7.port} without this check, give --host and --port.`;
  if (!config.hl7.enabled) {
    io.err(
      `the MLLP listener is off in this config (hl7.enabled: false): nothing of this gateway listens. Enable it, or name the listener with --host and --port.`,
    );
    return 4;
  }
  if (!config.admin.enabled) {
    io.err(
      `the admin API is off in this config (admin.enabled: false), so send cannot check that ${host}:${config.hl7.port} is this gateway's listener. ${sendAnyway}`,
    );
    return 4;
  }
  const got = await ownGatewayStatus(config, configFile, io);
  if ('exit' in got) {
    io.err(`nothing was sent. ${sendAnyway}`);
    return 4;
  }
  const adapter = (got.status.adapters as Record<string, { status?: string; detail?: { port?: unknown } }> | undefined)?.hl7v2;
  if (adapter?.status !== 'up') {
    const reasons = (got.status.ready as { reasons?: string[] } | undefined)?.reasons ?? [];
    io.err(
      `this config's gateway runs, but its MLLP listener (adapter hl7v2) is ${adapter ? `not up (${String(adapter.status)})` : 'not running'}${reasons.length ? `: ${reasons.join('; ')}` : ''}. Nothing was sent; see \`eyewear-gateway status\`${configFile ? ` --config ${configFile}` : ''}.`,
    );
    return 4;
  }
  // the port it is bound to (the config may say 0: any free port)
  return { host, port: typeof adapter.detail?.port === 'number' ? adapter.detail.port : config.hl7.port };
}
