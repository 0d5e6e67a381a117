import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
// @ts-expect-error: a plain .mjs script without type declarations
import { checkLayers, importsOf } from '../scripts/check-layers.mjs';

const check = checkLayers as (src: string) => string[];
const dirs: string[] = [];

function tree(files: Record<string, string>): string {
  const src = mkdtempSync(join(tmpdir(), 'layers-'));
  dirs.push(src);
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(dirname(join(src, name)), { recursive: true });
    writeFileSync(join(src, name), text);
  }
  return src;
}

afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

describe('layering of src/', () => {
  it('no folder imports a higher or same floor, and no import cycle exists', () => {
    expect(check(join(__dirname, '..', 'src'))).toEqual([]);
  });

  it('reports an import from a higher floor', () => {
    const src = tree({ 'core/a.ts': "import { b } from '../cli/b.js';\nexport const a = b;\n", 'cli/b.ts': 'export const b = 1;\n' });
    expect(check(src)).toEqual(["core/a.ts imports cli/b.ts: 'core' may not import 'cli' (a higher floor)"]);
  });

  it('reports a cycle inside one folder, type-only imports included', () => {
    const src = tree({
      'core/a.ts': "import type { B } from './b.js';\nexport type A = B;\n",
      'core/b.ts': "import type { A } from './a.js';\nexport type B = A | 1;\n",
    });
    expect(check(src)).toEqual(['import cycle among: core/a.ts, core/b.ts']);
  });

  it('reports a folder that has no floor', () => {
    const src = tree({ 'attic/x.ts': 'export const x = 1;\n' });
    expect(check(src)[0]).toMatch(/folder 'attic' has no floor/);
  });

  it('reads static, re-exported and literal dynamic imports, not those in comments', () => {
    const text =
      "import a from './a.js';\nexport { b } from '../b.js';\n// import c from './c.js';\nconst d = await import('./d.js');\nimport 'node:fs';\n";
    expect(importsOf(text)).toEqual(['./a.js', '../b.js', './d.js']);
  });
});
