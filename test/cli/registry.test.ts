/** The command registry: usage generated from the commands, per-command strict options, help, dispatch, one name each. */
import { describe, expect, it } from 'vitest';
import { runCli, usageOf, type CliCommand, type CliIo } from '../../cli/index.ts';

function fakeIo() {
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIo = {
    out: (s) => out.push(s),
    err: (s) => err.push(s),
    readFile: () => '',
    loadConfig: () => {
      throw new Error('no config in this test');
    },
  };
  return { io, out, err };
}
const seen: unknown[] = [];
const alpha: CliCommand = {
  name: 'alpha',
  synopsis: 'alpha FILE [--loud]',
  summary: 'Does alpha.\nSecond line.',
  help: 'eyewear-gateway alpha FILE [--loud]\n\nAlpha help.',
  options: { loud: { type: 'boolean' } },
  run: (args) => {
    seen.push(args);
    return 7;
  },
};
const beta: CliCommand = {
  name: 'beta',
  synopsis: 'beta --with-a-very-long-option-name VALUE',
  summary: 'Does beta.',
  help: 'Beta help.',
  run: () => null,
};
const version: CliCommand = {
  name: 'version',
  synopsis: 'version',
  summary: 'Print the version.',
  help: 'Version help.',
  run: (_a, io) => {
    io.out('9.9.9');
    return 0;
  },
};

describe('CLI command registry', () => {
  it('generates the usage from the commands in list order: synopsis, summary lines, help, exit codes and docs', () => {
    expect(usageOf([alpha, beta])).toBe(
      [
        'eyewear-gateway — eyewear-ML edge gateway',
        '',
        'Usage: eyewear-gateway <command> [options]',
        '',
        'Commands:',
        '  alpha FILE [--loud]                Does alpha.',
        '                                     Second line.',
        '  beta --with-a-very-long-option-name VALUE',
        '                                     Does beta.',
        '  help [COMMAND]                     This text; every command also takes --help.',
        '',
        'Exit codes: 0 ok · 1 runtime failure · 2 usage error · 3 invalid config · 4 gateway not reachable · 5 preview found errors · 6/7 doctor found warnings/failures',
        'Docs: README.md, docs/operating.md, config/REFERENCE.md, docs/ERRORS.md',
      ].join('\n'),
    );
  });

  it('runs a command with its positionals, its options and --config; returns its exit code', async () => {
    seen.length = 0;
    const { io } = fakeIo();
    expect(await runCli(['alpha', 'f.txt', '--loud', '-c', 'my.yaml'], io, [alpha])).toBe(7);
    expect(seen).toEqual([{ positionals: ['f.txt'], values: { loud: true, config: 'my.yaml' }, configFile: 'my.yaml' }]);
    expect(await runCli(['beta'], io, [alpha, beta])).toBeNull();
  });

  it("help, --help, -h, help COMMAND and COMMAND --help print the usage or that command's help", async () => {
    for (const argv of [[], ['help'], ['--help'], ['-h'], ['help', 'nosuch']]) {
      const { io, out } = fakeIo();
      expect(await runCli(argv, io, [alpha])).toBe(0);
      expect(out).toEqual([usageOf([alpha])]);
    }
    for (const argv of [
      ['help', 'alpha'],
      ['alpha', '--help'],
      ['alpha', '-h', '--loud'],
    ]) {
      const { io, out } = fakeIo();
      expect(await runCli(argv, io, [alpha])).toBe(0);
      expect(out).toEqual([alpha.help]);
    }
  });

  it('--version runs the version command', async () => {
    const { io, out } = fakeIo();
    expect(await runCli(['--version'], io, [alpha, version])).toBe(0);
    expect(out).toEqual(['9.9.9']);
  });

  it("exits 2 with the usage for an unknown command, and with the command's help for an option it does not take", async () => {
    const u = fakeIo();
    expect(await runCli(['frobnicate'], u.io, [alpha])).toBe(2);
    expect(u.err).toEqual([`unknown command "frobnicate"\n\n${usageOf([alpha])}`]);
    const o = fakeIo();
    expect(await runCli(['beta', '--loud'], o.io, [alpha, beta])).toBe(2);
    expect(o.err[0]).toMatch(/^Unknown option '--loud'/);
    expect(o.err[0]).toContain('\n\nBeta help.');
  });

  it('refuses two commands with one name, and the reserved name help', async () => {
    const { io } = fakeIo();
    await expect(runCli(['alpha'], io, [alpha, { ...beta, name: 'alpha' }])).rejects.toThrow('two CLI commands are named "alpha"');
    await expect(runCli(['x'], io, [{ ...beta, name: 'help' }])).rejects.toThrow('CLI command name "help" is reserved');
  });
});
