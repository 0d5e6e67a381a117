import { describe, expect, it } from 'vitest';
import { SUITES } from '../../src/cli/bench-suites.js';

describe('bench suite registry', () => {
  it('names each suite once and every one loads a runnable suite from src/bench/', async () => {
    const names = SUITES.map((s) => s.name);
    expect(new Set(names).size).toBe(names.length);
    expect(names).toEqual(expect.arrayContaining(['planner', 'optimizer', 'sim', 'data', 'model', 'action-toy', 'service']));
    for (const s of SUITES) expect([s.name, typeof (await s.load())]).toEqual([s.name, 'function']);
  });
});
