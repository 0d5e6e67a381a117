/**
 * tfjs backend selection. Native and GPU backends are optional packages that may be
 * absent (their install downloads libtensorflow); they are imported only when asked for.
 * `wasm+blas` is the wasm backend with its matrix products served by OpenBLAS through the
 * optional addon in native/blas; `wasm` is always the unmodified wasm backend.
 */
import * as tf from '@tensorflow/tfjs';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { loadBlasAddon } from './blas-addon.js';
import { blasKernelsActive, installBlasKernels, removeBlasKernels } from './blas-kernels.js';

export const BACKEND_NAMES = ['auto', 'cuda', 'tfjs-node', 'wasm+blas', 'wasm', 'webgpu', 'cpu'] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];
export type ConcreteBackend = Exclude<BackendName, 'auto'>;

/** Tried in this order by `auto`: expected speed, fastest first. */
export const AUTO_ORDER: ConcreteBackend[] = ['cuda', 'webgpu', 'tfjs-node', 'wasm+blas', 'wasm', 'cpu'];

export class BackendUnavailableError extends Error {
  readonly userFacing = true;
  constructor(
    readonly backend: ConcreteBackend,
    reason: string,
  ) {
    super(`backend '${backend}' cannot load: ${reason}\n  ${INSTALL_HINTS[backend]}`);
  }
}

const INSTALL_HINTS: Record<ConcreteBackend, string> = {
  cuda:
    'It needs the optional package @tensorflow/tfjs-node-gpu (CUDA 11.8 + cuDNN 8). Install it with ' +
    '`npm install @tensorflow/tfjs-node-gpu@4.22.0` on a machine that can download libtensorflow.',
  'tfjs-node':
    'It needs the optional package @tensorflow/tfjs-node. Install it with `npm install @tensorflow/tfjs-node@4.22.0` ' +
    'on a machine that can download libtensorflow.',
  webgpu:
    'It needs a WebGPU adapter: the optional package `webgpu` (Dawn for Node) and a Vulkan/Metal/D3D12 GPU driver. ' +
    'Install it with `npm install webgpu`.',
  'wasm+blas':
    'It needs the optional addon selfflow-wm-blas, built at `npm ci` against OpenBLAS: on Debian/Ubuntu run ' +
    '`apt-get install libopenblas-dev` (and a C++ compiler: build-essential), then `npm ci`. See docs/native-blas.md.',
  wasm: 'It needs @tensorflow/tfjs-backend-wasm (a regular dependency): run `npm ci`.',
  cpu: 'The pure-JS cpu backend ships with @tensorflow/tfjs: run `npm ci`.',
};

/** What to install so that `backend` loads. */
export function installHint(backend: ConcreteBackend): string {
  return INSTALL_HINTS[backend];
}

/** Name tfjs registers for each of our backends. */
const TF_NAME: Record<ConcreteBackend, string> = {
  cuda: 'tensorflow',
  'tfjs-node': 'tensorflow',
  webgpu: 'webgpu',
  'wasm+blas': 'wasm',
  wasm: 'wasm',
  cpu: 'cpu',
};

function errText(e: unknown): string {
  return e instanceof Error ? e.message.split('\n')[0]! : String(e);
}

async function importOptional(pkg: string): Promise<unknown> {
  // A variable specifier keeps bundlers and tsc from resolving packages that may be absent.
  const spec = pkg;
  return import(spec);
}

async function loadNative(backend: 'cuda' | 'tfjs-node'): Promise<void> {
  const pkg = backend === 'cuda' ? '@tensorflow/tfjs-node-gpu' : '@tensorflow/tfjs-node';
  try {
    await importOptional(pkg);
  } catch (e) {
    const missing = (e as { code?: string }).code === 'ERR_MODULE_NOT_FOUND';
    throw new BackendUnavailableError(
      backend,
      missing ? `package ${pkg} is not installed` : `package ${pkg} failed to load (${errText(e)})`,
    );
  }
}

/** Dawn needs a Vulkan loader on Linux; without one it only prints a warning and finds no adapter. */
function hasVulkanLoader(): boolean {
  if (process.platform !== 'linux') return true;
  const dirs = [
    '/usr/lib/x86_64-linux-gnu',
    '/usr/lib/aarch64-linux-gnu',
    '/usr/lib64',
    '/usr/lib',
    '/usr/local/lib',
    ...(process.env.LD_LIBRARY_PATH ?? '').split(':'),
  ];
  return dirs.some((d) => d && existsSync(`${d}/libvulkan.so.1`));
}

async function loadWebgpu(): Promise<void> {
  if (!hasVulkanLoader()) throw new BackendUnavailableError('webgpu', 'no Vulkan loader (libvulkan.so.1) on this machine');
  const nav = (globalThis as { navigator?: { gpu?: unknown } }).navigator;
  if (!nav?.gpu) {
    let mod: { create?: (opts: string[]) => unknown; globals?: object };
    try {
      mod = (await importOptional('webgpu')) as typeof mod;
    } catch (e) {
      throw new BackendUnavailableError('webgpu', `package webgpu is not installed (${errText(e)})`);
    }
    if (!mod.create) throw new BackendUnavailableError('webgpu', 'package webgpu has no create()');
    if (mod.globals) Object.assign(globalThis, mod.globals);
    const gpu = mod.create([]);
    Object.defineProperty(globalThis, 'navigator', { value: { ...(nav ?? {}), gpu }, configurable: true, writable: true });
  }
  const gpu = (globalThis as unknown as { navigator: { gpu: { requestAdapter(): Promise<unknown> } } }).navigator.gpu;
  const adapter = await gpu.requestAdapter().catch(() => null);
  if (!adapter) throw new BackendUnavailableError('webgpu', 'no WebGPU adapter was found (no usable GPU driver)');
  await importOptional('@tensorflow/tfjs-backend-webgpu');
}

async function loadWasm(): Promise<void> {
  await import('@tensorflow/tfjs-backend-wasm');
}

/** The OpenBLAS addon, or BackendUnavailableError('wasm+blas') saying why it cannot load. */
function blasAddon(): ReturnType<typeof loadBlasAddon> {
  try {
    return loadBlasAddon();
  } catch (e) {
    throw new BackendUnavailableError('wasm+blas', errText(e));
  }
}

/**
 * Divides the cores between `computeThreads` threads that each run products (data-parallel
 * training, parallel plan scoring): OpenBLAS, whose thread count holds for the whole process,
 * then uses cores / computeThreads threads per product instead of every core in every thread.
 * Leaves an OPENBLAS_NUM_THREADS the user set alone, and does nothing off wasm+blas. Returns
 * a line saying what it did, or undefined.
 */
export function shareBlasThreads(computeThreads: number): string | undefined {
  if (!blasKernelsActive() || process.env.OPENBLAS_NUM_THREADS) return undefined;
  const perThread = Math.max(1, Math.floor(availableParallelism() / Math.max(1, computeThreads)));
  loadBlasAddon().setThreads(perThread);
  return `OpenBLAS: ${perThread} thread${perThread === 1 ? '' : 's'} per product (${computeThreads} threads computing on ${availableParallelism()} cores)`;
}

/** Returns a line describing the activated backend's native library, where it has one. */
async function activate(backend: ConcreteBackend): Promise<string | undefined> {
  const blas = backend === 'wasm+blas' ? blasAddon() : undefined;
  if (backend === 'cuda' || backend === 'tfjs-node') await loadNative(backend);
  else if (backend === 'webgpu') await loadWebgpu();
  else if (backend === 'wasm' || backend === 'wasm+blas') await loadWasm();
  let ok = false;
  try {
    ok = await tf.setBackend(TF_NAME[backend]);
    await tf.ready();
  } catch (e) {
    throw new BackendUnavailableError(backend, errText(e));
  }
  if (!ok) throw new BackendUnavailableError(backend, `tf.setBackend('${TF_NAME[backend]}') failed`);
  if (backend === 'cuda' && !(await nativeHasGpu())) {
    throw new BackendUnavailableError('cuda', 'libtensorflow loaded but sees no CUDA GPU');
  }
  // The wasm backend's own kernels are set up by now, so they stay available to restore and to fall back on.
  if (blas) {
    installBlasKernels(blas);
    const info = blas.info();
    return `${info.config.split(' ').slice(0, 2).join(' ')}, core ${info.corename}, ${info.threads} thread${info.threads === 1 ? '' : 's'}`;
  }
  if (backend === 'wasm') removeBlasKernels();
  return undefined;
}

async function nativeHasGpu(): Promise<boolean> {
  // tfjs-node-gpu exposes no device query; TF logs the GPU it binds. A GPU build on a
  // machine without CUDA falls back to CPU, which `cuda` must not accept silently.
  const env = process.env.CUDA_VISIBLE_DEVICES;
  if (env !== undefined && env.trim() === '') return false;
  return existsSync('/dev/nvidia0') || existsSync('/proc/driver/nvidia/version');
}

export interface BackendChoice {
  requested: BackendName;
  chosen: ConcreteBackend;
  /** Why each faster backend was passed over (auto only). */
  skipped: { backend: ConcreteBackend; reason: string }[];
  /** The native library behind the chosen backend (wasm+blas: the OpenBLAS build and threads). */
  detail?: string;
}

let current: BackendChoice | undefined;

export function parseBackendName(value: string, source: string): BackendName {
  if ((BACKEND_NAMES as readonly string[]).includes(value)) return value as BackendName;
  throw new Error(`${source}: unknown backend '${value}'; expected one of ${BACKEND_NAMES.join(', ')}`);
}

/**
 * Activate a backend. `requested` defaults to $SELFFLOW_BACKEND, then `auto`.
 * An explicit backend that cannot load throws BackendUnavailableError; `auto` falls through.
 */
export async function initBackend(requested?: string): Promise<BackendChoice> {
  const raw = requested ?? process.env.SELFFLOW_BACKEND ?? 'auto';
  const name = parseBackendName(raw, requested !== undefined ? '--backend' : 'SELFFLOW_BACKEND');
  if (current && (current.requested === name || current.chosen === name)) return current;
  if (name !== 'auto') {
    const detail = await activate(name);
    current = { requested: name, chosen: name, skipped: [], ...(detail ? { detail } : {}) };
    return current;
  }
  const skipped: BackendChoice['skipped'] = [];
  for (const candidate of AUTO_ORDER) {
    try {
      const detail = await activate(candidate);
      current = { requested: 'auto', chosen: candidate, skipped, ...(detail ? { detail } : {}) };
      return current;
    } catch (e) {
      skipped.push({ backend: candidate, reason: errText(e).replace(/^backend '[^']+' cannot load: /, '') });
    }
  }
  throw new Error('no tfjs backend could load (not even cpu)');
}

export function describeChoice(c: BackendChoice): string {
  const chosen = c.detail ? `${c.chosen} [${c.detail}]` : c.chosen;
  if (c.requested !== 'auto') return `backend: ${chosen}`;
  const passed = c.skipped.map((s) => `${s.backend}: ${s.reason}`).join('; ');
  return `backend: ${chosen} (auto${passed ? `; passed over ${passed}` : ''})`;
}
