#!/usr/bin/env node
/**
 * Checks the layering of src/: every folder sits on a floor (FLOORS, lowest first) and may import
 * only from its own folder and from folders on lower floors; no import cycle between files.
 * Reads import/export specifiers as text (static, type-only and literal dynamic imports).
 * Exit 1 with one line per violation. Usage: node scripts/check-layers.mjs [srcDir]
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';

/** Lowest first. Folders on one floor must not import each other. */
export const FLOORS = [
  ['core'],
  ['util'],
  ['backend', 'image', 'checkpoint'],
  ['data', 'model'],
  ['flow', 'sim'],
  ['train', 'robot'],
  ['planner'],
  ['eval', 'service'],
  ['server'],
  ['bench'],
  ['cli'],
];

const IMPORT_RE = /(?:^|[\s;])(?:import|export)\s+(?:type\s+)?(?:[^'";]*?\sfrom\s+)?['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;

function listTs(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...listTs(p));
    else if (/\.(ts|mts)$/.test(name) && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** Relative specifiers of one file's source, comments stripped. */
export function importsOf(source) {
  const text = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
  const specs = [];
  for (const m of text.matchAll(IMPORT_RE)) {
    const s = m[1] ?? m[2];
    if (s.startsWith('.')) specs.push(s);
  }
  return specs;
}

/** Top-level folder of a file under src ('' for files directly in src). */
function folderOf(srcDir, file) {
  const rel = relative(srcDir, file).split(sep);
  return rel.length > 1 ? rel[0] : '';
}

export function checkLayers(srcDir) {
  const files = listTs(srcDir);
  const known = new Set(files);
  const floorOf = new Map(FLOORS.flatMap((names, i) => names.map((n) => [n, i])));
  const problems = [];
  const edges = new Map(files.map((f) => [f, []]));
  for (const file of files) {
    const from = folderOf(srcDir, file);
    if (!floorOf.has(from))
      problems.push(`${relative(srcDir, file)}: folder '${from || 'src'}' has no floor in scripts/check-layers.mjs FLOORS`);
    for (const spec of importsOf(readFileSync(file, 'utf8'))) {
      const target = resolve(dirname(file), spec.replace(/\.js$/, '.ts'));
      if (!known.has(target)) continue;
      edges.get(file).push(target);
      const to = folderOf(srcDir, target);
      if (to === from || !floorOf.has(to) || !floorOf.has(from)) continue;
      if (floorOf.get(to) >= floorOf.get(from))
        problems.push(
          `${relative(srcDir, file)} imports ${relative(srcDir, target)}: '${from}' may not import '${to}' (${floorOf.get(to) > floorOf.get(from) ? 'a higher floor' : 'the same floor'})`,
        );
    }
  }
  for (const cycle of cycles(edges)) problems.push(`import cycle among: ${cycle.map((f) => relative(srcDir, f)).join(', ')}`);
  return problems;
}

/** Strongly connected components of more than one file (Tarjan), each as a file list. */
function cycles(edges) {
  let index = 0;
  const idx = new Map();
  const low = new Map();
  const stack = [];
  const on = new Set();
  const out = [];
  const visit = (v) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of edges.get(v)) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v), idx.get(w)));
    }
    if (low.get(v) === idx.get(v)) {
      const comp = [];
      let w;
      do {
        w = stack.pop();
        on.delete(w);
        comp.push(w);
      } while (w !== v);
      if (comp.length > 1 || edges.get(v).includes(v)) out.push(comp.sort());
    }
  };
  for (const v of edges.keys()) if (!idx.has(v)) visit(v);
  return out;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const src = resolve(process.argv[2] ?? join(dirname(new URL(import.meta.url).pathname), '..', 'src'));
  const problems = checkLayers(src);
  for (const p of problems) console.error(p);
  console.log(problems.length ? `layers: ${problems.length} problem(s)` : 'layers: ok');
  process.exit(problems.length ? 1 : 0);
}
