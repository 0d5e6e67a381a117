/** The training loop's view of its data: windows of context + future frames and the actions between them. */

/** What the loop needs of a training window (src/data/windows.ts produces these). */
export interface WindowLike {
  /** (K+H) x h x w x 3 in [-1, 1]. */
  frames: Float32Array;
  /** H x A normalised: row j leads from frame K-1+j to K+j. */
  actions: Float32Array;
  language?: Float32Array;
}

export interface WindowSource {
  /** Training windows in a seeded order; `skip` windows are dropped first (resume). */
  train(skip: number): AsyncIterable<WindowLike>;
  /** A fixed set of validation windows. */
  val(count: number): Promise<WindowLike[]>;
}
