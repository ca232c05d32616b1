/**
 * Every relative link in the docs a newcomer reads (README.md, docs/*.md, docs/integrations/*.md,
 * the top-level Markdown files and the folders' READMEs) names a file that exists, and a `#fragment` names a heading in
 * it (GitHub's slugs). Links into ../shared (the architecture beside the clone, as CI has it) are
 * checked when that folder is there.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const shared = resolve(root, '..', 'shared');

function docs(): string[] {
  const top = readdirSync(root).filter((f) => f.endsWith('.md'));
  const inDocs = existsSync(join(root, 'docs'))
    ? readdirSync(join(root, 'docs'))
        .filter((f) => f.endsWith('.md'))
        .map((f) => `docs/${f}`)
    : [];
  const folders = readdirSync(root).filter((d) => !d.startsWith('.') && d !== 'node_modules' && statSync(join(root, d)).isDirectory());
  const readmes = folders.map((d) => `${d}/README.md`).filter((f) => existsSync(join(root, f)));
  const samples = existsSync(join(root, 'examples/samples/README.md')) ? ['examples/samples/README.md'] : [];
  const guides = existsSync(join(root, 'docs/integrations'))
    ? readdirSync(join(root, 'docs/integrations'))
        .filter((f) => f.endsWith('.md'))
        .map((f) => `docs/integrations/${f}`)
    : [];
  return [...top, ...inDocs, ...readmes, ...samples, ...guides].sort();
}

/** The Markdown text with fenced code blocks and inline code spans blanked out (links there are examples, not links). */
function prose(text: string): string {
  return text.replace(/^```[^\n]*\n[\s\S]*?^```[^\n]*$/gm, '').replace(/`[^`\n]*`/g, '');
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens; repeats get -1, -2. */
function anchors(text: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const m of prose(text).matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)) {
    const base = m[1]
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

interface Link {
  from: string;
  target: string;
}

function links(file: string): Link[] {
  const text = prose(readFileSync(join(root, file), 'utf8'));
  const found: Link[] = [];
  for (const m of text.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
    const target = m[1];
    if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // http:, https:, mailto:
    found.push({ from: file, target });
  }
  return found;
}

/** Why a link does not resolve, or undefined when it does. */
function broken(link: Link): string | undefined {
  const [path, fragment] = link.target.split('#', 2);
  const file = path === '' ? join(root, link.from) : resolve(root, dirname(link.from), decodeURIComponent(path));
  if (!existsSync(file)) return `no such file: ${relative(root, file)}`;
  if (fragment === undefined || fragment === '') return undefined;
  if (statSync(file).isDirectory() || !file.endsWith('.md'))
    return `a #fragment on something that is not a Markdown file: ${relative(root, file)}`;
  const names = anchors(readFileSync(file, 'utf8'));
  return names.has(fragment) ? undefined : `no heading #${fragment} in ${relative(root, file)} (headings: ${[...names].join(', ')})`;
}

const outsideRepo = (link: Link): boolean => {
  const [path] = link.target.split('#', 1);
  return path !== '' && relative(root, resolve(root, dirname(link.from), path)).startsWith('..');
};

describe('docs links', () => {
  const all = docs().flatMap(links);

  it('finds the docs and their links (README.md, docs/, the folder READMEs)', () => {
    const files = new Set(all.map((l) => l.from));
    expect(files.has('README.md'), 'README.md has no relative links: the walk is reading nothing').toBe(true);
    expect(
      [...files].some((f) => f.startsWith('docs/')),
      'no links found in docs/*.md',
    ).toBe(true);
  });

  it('every relative link inside the repository names a file (and a heading) that exists', () => {
    const bad = all
      .filter((l) => !outsideRepo(l))
      .map((l) => ({ ...l, why: broken(l) }))
      .filter((l) => l.why !== undefined);
    expect(
      bad.map((l) => `${l.from}: (${l.target}) — ${l.why}`),
      'fix the link or the file it names',
    ).toEqual([]);
  });

  it.skipIf(!existsSync(shared))('every link into ../shared names a file that exists (skipped: no ../shared beside this clone)', () => {
    const bad = all
      .filter(outsideRepo)
      .map((l) => ({ ...l, why: broken(l) }))
      .filter((l) => l.why !== undefined);
    expect(
      bad.map((l) => `${l.from}: (${l.target}) — ${l.why}`),
      'fix the link or the file it names',
    ).toEqual([]);
  });

  it('the anchor rule matches GitHub on the headings these docs use', () => {
    expect([
      ...anchors('## Cloud contract (as implemented)\n## HL7 v2 over MLLP\n## Tests and CI\n## Tests and CI\n```\n# not a heading\n```\n'),
    ]).toEqual(['cloud-contract-as-implemented', 'hl7-v2-over-mllp', 'tests-and-ci', 'tests-and-ci-1']);
  });
});
