/**
 * A deterministic 512-d instruction embedding for simulated episodes. The Universal Sentence
 * Encoder RT-1 uses is not available offline, so we hash character trigrams and words of the
 * lower-cased text into 512 signed buckets (FNV-1a) and L2-normalise: equal instructions get
 * equal vectors, similar ones overlap.
 */
export const LANGUAGE_DIM = 512;

function fnv(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

export function embedInstruction(text: string): Float32Array {
  const v = new Float32Array(LANGUAGE_DIM);
  const t = ` ${text.toLowerCase().trim().replace(/\s+/g, ' ')} `;
  const grams = [...Array(Math.max(0, t.length - 2)).keys()]
    .map((i) => `c:${t.slice(i, i + 3)}`)
    .concat(
      t
        .trim()
        .split(' ')
        .map((w) => `w:${w}`),
    );
  for (const g of grams) {
    const h = fnv(g);
    v[h % LANGUAGE_DIM]! += h & 0x80000000 ? -1 : 1;
  }
  const n = Math.hypot(...v) || 1;
  for (let i = 0; i < v.length; i++) v[i]! /= n;
  return v;
}
