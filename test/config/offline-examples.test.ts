/** `check-config --offline`: the shipped example configs validate out of the box, secrets unread. */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, loadConfigReport } from '../../config/load.ts';

const root = new URL('../../', import.meta.url).pathname;

/** Every YAML file under config/examples and examples/, at any depth. */
function yamlFiles(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names.flatMap((n) => {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) return yamlFiles(p);
    return /\.ya?ml$/.test(n) ? [p] : [];
  });
}

const examples = [...yamlFiles(join(root, 'config/examples')), ...yamlFiles(join(root, 'examples'))];

describe('check-config --offline', () => {
  it('finds the shipped example configs', () => {
    expect(examples.map((p) => p.slice(root.length)).sort()).toEqual(
      expect.arrayContaining(['config/examples/practice-https.yaml', 'config/examples/practice-mqtt.yaml']),
    );
  });

  it.each(examples.map((p) => [p.slice(root.length), p]))(
    '%s validates offline, its secret references listed as not checked',
    (_name, file) => {
      const r = loadConfigReport({ file, env: {}, offline: true });
      expect(r.config.version).toBe(2);
      expect(r.warnings).toEqual([]);
      expect(r.unchecked).toContain('cloud.publicKey');
    },
  );

  it('lists exactly the fields that hold references, and leaves them as written', () => {
    const r = loadConfigReport({ file: join(root, 'config/examples/practice-mqtt.yaml'), env: {}, offline: true });
    expect(r.unchecked).toEqual(['mqtt.ca', 'mqtt.cert', 'mqtt.key', 'cloud.publicKey']);
    expect(r.config.cloud.publicKey).toBe('${file:/etc/eyewear-gateway/cloud-public.pem}');
  });

  it('online, the same file needs its secret files (and says which)', () => {
    try {
      loadConfig({ file: join(root, 'config/examples/practice-https.yaml'), env: {} });
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      expect((e as ConfigError).code).toBe('GW_SECRET_MISSING');
      expect((e as ConfigError).problems.map((p) => p.path)).toEqual(['https.token', 'cloud.publicKey']);
      return;
    }
    throw new Error('expected GW_SECRET_MISSING');
  });

  it('still applies every rule to values that are not references', () => {
    try {
      loadConfigReport({
        env: {},
        offline: true,
        overrides: { gateway: { timezone: 'Mars/Olympus' }, cloud: { publicKey: '${file:/nowhere.pem}' }, relay: { sink: 'mqtt' } },
      });
    } catch (e) {
      expect((e as ConfigError).problems.map((p) => p.path)).toEqual(['gateway.timezone']);
      return;
    }
    throw new Error('expected the time zone refused');
  });
});
