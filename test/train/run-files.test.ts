import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { latestCheckpoint } from '../../src/train/run-files.js';
import { readRunManifest } from '../../src/core/run-manifest.js';
import { UserError } from '../../src/core/errors.js';
import { worldModelConfig } from '../../src/core/model-config.js';

function runDir(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'sfwm-runfiles-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

const zeros7 = [0, 0, 0, 0, 0, 0, 0];
const ones7 = [1, 1, 1, 1, 1, 1, 1];
const manifest = {
  format: 'selfflow-wm/run@1',
  model: worldModelConfig('tiny', { imageHeight: 32, imageWidth: 40, actionDim: 7, languageDim: 0 }),
  configName: 'tiny',
  data: { card: {}, cardName: 'rt1', dataDir: 'd' },
  actionStats: {
    names: ['x', 'y', 'z', 'roll', 'pitch', 'yaw', 'grip'],
    count: 1,
    mean: zeros7,
    std: ones7,
    min: zeros7,
    max: ones7,
    q01: zeros7,
    q99: ones7,
  },
  contextFrames: 2,
  futureFrames: 2,
  training: {},
};

describe('run files from disk', () => {
  it('run.json that is not JSON, or has a missing or mistyped field, is a UserError naming the file and field', () => {
    const bad = runDir({ 'run.json': '{"format": "selfflow-wm/run@1", ' });
    expect(() => readRunManifest(bad)).toThrow(UserError);
    expect(() => readRunManifest(bad)).toThrow(new RegExp(`^${join(bad, 'run.json')}: run manifest is not valid JSON`));
    const list = runDir({ 'run.json': '[]' });
    expect(() => readRunManifest(list)).toThrow(`${join(list, 'run.json')}: run manifest must be a JSON object`);
    for (const [field, patch] of [
      ['model', { model: 'tiny' }],
      ['model.imageHeight', { model: { ...manifest.model, imageHeight: -1 } }],
      ['contextFrames', { contextFrames: '2' }],
      ['actionStats', { actionStats: null }],
    ] as const) {
      const dir = runDir({ 'run.json': JSON.stringify({ ...manifest, ...patch }) });
      expect(() => readRunManifest(dir)).toThrow(new RegExp(`^${join(dir, 'run.json')}: field '${field.replace('.', '\\.')}' must be`));
    }
    expect(readRunManifest(runDir({ 'run.json': JSON.stringify(manifest) })).configName).toBe('tiny');
  });

  it('latest.json that is not JSON or lacks its fields names the file and field', () => {
    const broken = runDir({ 'latest.json': '{"step": 5' });
    expect(() => latestCheckpoint(broken)).toThrow(
      new RegExp(`^${join(broken, 'latest.json')}: latest-checkpoint pointer is not valid JSON`),
    );
    const noDir = runDir({ 'latest.json': '{"step": 5}' });
    expect(() => latestCheckpoint(noDir)).toThrow(`${join(noDir, 'latest.json')}: field 'dir' must be a non-empty path`);
    const ok = runDir({ 'latest.json': '{"step": 5, "dir": "checkpoints/step-0000005"}' });
    mkdirSync(join(ok, 'checkpoints'));
    expect(latestCheckpoint(ok)).toEqual({ step: 5, dir: join(ok, 'checkpoints/step-0000005') });
  });
});
