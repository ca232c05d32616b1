/**
 * The command registry: the usage text, argument parsing and dispatch, built from a list of
 * `CliCommand`s (the list `bin/eyewear-gateway.js` assembles). `runCli` returns the exit code, or
 * null for a command that keeps running.
 */
import { parseArgs, type ParseArgsOptionsConfig } from 'node:util';
import type { CliCommand, CliIo } from './command.ts';

const COMMON: ParseArgsOptionsConfig = { help: { type: 'boolean', short: 'h' }, config: { type: 'string', short: 'c' } };
const COLUMN = 35;
const HELP_ROW = { synopsis: 'help [COMMAND]', summary: 'This text; every command also takes --help.' };
const FOOTER = `Exit codes: 0 ok · 1 runtime failure · 2 usage error · 3 invalid config · 4 gateway not reachable · 5 preview found errors · 6/7 doctor found warnings/failures
Docs: README.md, docs/operating.md, config/REFERENCE.md, docs/ERRORS.md`;

/** The commands by name; two with one name is a programming error, thrown at once. */
function byName(commands: readonly CliCommand[]): Map<string, CliCommand> {
  const map = new Map<string, CliCommand>();
  for (const c of commands) {
    if (c.name === 'help' || c.name.startsWith('-')) throw new Error(`CLI command name "${c.name}" is reserved (help, options)`);
    if (map.has(c.name))
      throw new Error(`two CLI commands are named "${c.name}": each name once in the list bin/eyewear-gateway.js assembles`);
    map.set(c.name, c);
  }
  return map;
}

/** The usage text: one row per command in list order (synopsis, then its summary lines), then help and the footer. */
export function usageOf(commands: readonly CliCommand[]): string {
  const rows = [...commands, HELP_ROW].flatMap(({ synopsis, summary }) => {
    const lines = summary.split('\n');
    const pad = ' '.repeat(2 + COLUMN);
    if (synopsis.length + 1 > COLUMN) return [`  ${synopsis}`, ...lines.map((l) => pad + l)];
    return [`  ${synopsis.padEnd(COLUMN)}${lines[0]}`, ...lines.slice(1).map((l) => pad + l)];
  });
  return `eyewear-gateway — eyewear-ML edge gateway\n\nUsage: eyewear-gateway <command> [options]\n\nCommands:\n${rows.join('\n')}\n\n${FOOTER}`;
}

export async function runCli(argv: readonly string[], io: CliIo, commands: readonly CliCommand[]): Promise<number | null> {
  const map = byName(commands);
  const usage = usageOf(commands);
  const [first = 'help', ...rest] = argv;
  if (first === 'help' || first === '--help' || first === '-h') {
    const asked = rest[0] !== undefined ? map.get(rest[0]) : undefined;
    io.out(asked ? asked.help : usage);
    return 0;
  }
  const command = map.get(first === '--version' ? 'version' : first);
  if (!command) {
    io.err(`unknown command "${first}"\n\n${usage}`);
    return 2;
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: [...rest], allowPositionals: true, strict: true, options: { ...command.options, ...COMMON } });
  } catch (e) {
    io.err(`${(e as Error).message}\n\n${command.help}`);
    return 2;
  }
  const values = parsed.values as Record<string, string | boolean | undefined>;
  if (values.help) {
    io.out(command.help);
    return 0;
  }
  const configFile = typeof values.config === 'string' ? values.config : undefined;
  return command.run({ positionals: parsed.positionals, values, ...(configFile !== undefined ? { configFile } : {}) }, io);
}
