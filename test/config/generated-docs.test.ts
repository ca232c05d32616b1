import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { generatedDocs } from '../../gateway/generated-docs.ts';

describe('generated documents', () => {
  it.each(Object.entries(generatedDocs()))(
    '%s matches its source (run `npm run docs` after changing the schema or error codes)',
    (path, text) => {
      expect(readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8')).toBe(text);
    },
  );
});
