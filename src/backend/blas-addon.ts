/**
 * The optional OpenBLAS addon (package `selfflow-wm-blas`, built from native/blas at `npm ci`).
 * Loading it never throws past this module without a reason a person can act on.
 */
import { createRequire } from 'node:module';

export const BLAS_PACKAGE = 'selfflow-wm-blas';

/** Byte offsets and strides address float32 data inside `heap` (the wasm memory's HEAPU8 view). */
export interface BlasAddon {
  gemm(
    heap: Uint8Array,
    transA: boolean,
    transB: boolean,
    m: number,
    n: number,
    k: number,
    batch: number,
    aOffset: number,
    aStride: number,
    bOffset: number,
    bStride: number,
    cOffset: number,
  ): void;
  epilogue(
    heap: Uint8Array,
    cOffset: number,
    count: number,
    biasOffset: number,
    biasSize: number,
    activation: number,
    alpha: number,
    preluOffset: number,
    preluSize: number,
  ): void;
  /** Optimizer updates in place (src/backend/blas-updates.ts); absent from addons built before them. */
  sumSquares?(heap: Uint8Array, offset: number, count: number): number;
  adamw?(
    heap: Uint8Array,
    count: number,
    pOffset: number,
    gOffset: number,
    mOffset: number,
    vOffset: number,
    gradToM: number,
    gradSqToV: number,
    beta1: number,
    beta2: number,
    invBc2: number,
    eps: number,
    stepSize: number,
    keep: number,
  ): void;
  ema?(heap: Uint8Array, count: number, tOffset: number, sOffset: number, decay: number): void;
  info(): { config: string; corename: string; threads: number };
  /** OpenBLAS threads per product, for the whole process (worker threads included). */
  setThreads(n: number): void;
}

export class BlasUnavailableError extends Error {}

type Loader = () => BlasAddon;

function errText(e: unknown): string {
  return e instanceof Error ? e.message.split('\n')[0]! : String(e);
}

function loadInstalledAddon(): BlasAddon {
  const require = createRequire(import.meta.url);
  let entry: string;
  try {
    entry = require.resolve(BLAS_PACKAGE);
  } catch {
    throw new BlasUnavailableError(`package ${BLAS_PACKAGE} is not installed (its build failed or was skipped at npm ci)`);
  }
  let addon: Partial<BlasAddon>;
  try {
    addon = require(entry) as Partial<BlasAddon>;
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'MODULE_NOT_FOUND')
      throw new BlasUnavailableError(
        `package ${BLAS_PACKAGE} is installed but its addon was not built (no libopenblas-dev or no C++ compiler at npm ci)`,
      );
    throw new BlasUnavailableError(`the ${BLAS_PACKAGE} addon failed to load (${errText(e)})`);
  }
  if (
    typeof addon.gemm !== 'function' ||
    typeof addon.epilogue !== 'function' ||
    typeof addon.info !== 'function' ||
    typeof addon.setThreads !== 'function'
  ) {
    throw new BlasUnavailableError(`the ${BLAS_PACKAGE} addon lacks gemm/epilogue/info/setThreads; rebuild it with npm ci`);
  }
  return addon as BlasAddon;
}

let loader: Loader = loadInstalledAddon;
let loaded: BlasAddon | undefined;

/** The addon, or BlasUnavailableError saying why not. A failure is retried on the next call. */
export function loadBlasAddon(): BlasAddon {
  if (process.env.SELFFLOW_BLAS === 'off') throw new BlasUnavailableError('disabled by SELFFLOW_BLAS=off');
  loaded ??= loader();
  return loaded;
}

/** Replaces how the addon is found (tests simulate a machine without it); no argument restores the default. */
export function setBlasLoader(custom?: Loader): void {
  loader = custom ?? loadInstalledAddon;
  loaded = undefined;
}
