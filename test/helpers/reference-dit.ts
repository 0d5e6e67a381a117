/**
 * A deliberately naive float64 re-statement of the official SelfFlowPerTokenDiT.forward()
 * (plain loops over host arrays, no tfjs), used to check the tfjs model on configs the PyTorch
 * fixture does not cover. Written from src/model.py, independently of src/model/.
 */
import type { DiTConfig } from '../../src/core/model-config.js';

type Weights = Map<string, { shape: number[]; data: Float32Array }>;

function lin(w: Weights, name: string, x: number[]): number[] {
  const W = w.get(`${name}.weight`)!;
  const b = w.get(`${name}.bias`);
  const [out, inn] = W.shape as [number, number];
  const y = new Array<number>(out).fill(0);
  for (let o = 0; o < out; o++) {
    let s = b ? b.data[o]! : 0;
    for (let i = 0; i < inn; i++) s += W.data[o * inn + i]! * x[i]!;
    y[o] = s;
  }
  return y;
}
const silu = (v: number[]) => v.map((a) => a / (1 + Math.exp(-a)));
const gelu = (v: number[]) => v.map((a) => 0.5 * a * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (a + 0.044715 * a ** 3))));
function norm(v: number[]): number[] {
  const m = v.reduce((a, b) => a + b, 0) / v.length;
  const va = v.reduce((a, b) => a + (b - m) ** 2, 0) / v.length;
  return v.map((a) => (a - m) / Math.sqrt(va + 1e-6));
}
function temb(w: Weights, t: number): number[] {
  const half = 128;
  const f: number[] = [];
  for (let i = 0; i < half; i++) f.push(Math.cos(t * Math.exp((-Math.log(10000) * i) / half)));
  for (let i = 0; i < half; i++) f.push(Math.sin(t * Math.exp((-Math.log(10000) * i) / half)));
  return lin(w, 't_embedder.mlp.2', silu(lin(w, 't_embedder.mlp.0', f)));
}

/** x: [T][p*p*C], t: per token [T] (forward convention), y: class. Returns [T][p*p*C] and optional features. */
export function referenceForward(
  w: Weights,
  c: DiTConfig,
  x: number[][],
  t: number[],
  y: number,
  featuresLayer?: number,
  rawLayer?: number,
): { out: number[][]; features?: number[][] } {
  const d = c.hidden_size;
  const heads = c.num_heads;
  const hd = d / heads;
  const pos = w.get('pos_embed')!.data;
  const yTable = w.get('y_embedder.embedding_table.weight')!.data;
  let h = x.map((xi, n) => lin(w, 'x_embedder.proj', xi).map((v, k) => v + pos[n * d + k]!));
  const cond = t.map((ti) => temb(w, 1 - ti).map((v, k) => v + yTable[y * d + k]!));
  let features: number[][] | undefined;
  for (let b = 0; b < c.depth; b++) {
    const mod = cond.map((ci) => lin(w, `blocks.${b}.adaLN_modulation.1`, silu(ci)));
    const chunk = (n: number, j: number) => mod[n]!.slice(j * d, (j + 1) * d);
    const a = h.map((hn, n) => norm(hn).map((v, k) => v * (1 + chunk(n, 1)[k]!) + chunk(n, 0)[k]!));
    const qkv = a.map((an) => lin(w, `blocks.${b}.attn.qkv`, an));
    const att = h.map(() => new Array<number>(d).fill(0));
    for (let hh = 0; hh < heads; hh++) {
      for (let i = 0; i < h.length; i++) {
        const s = h.map((_, j) => {
          let dot = 0;
          for (let k = 0; k < hd; k++) dot += qkv[i]![hh * hd + k]! * qkv[j]![d + hh * hd + k]!;
          return dot / Math.sqrt(hd);
        });
        const mx = Math.max(...s);
        const e = s.map((v) => Math.exp(v - mx));
        const z = e.reduce((p, q) => p + q, 0);
        for (let j = 0; j < h.length; j++)
          for (let k = 0; k < hd; k++) att[i]![hh * hd + k]! += (e[j]! / z) * qkv[j]![2 * d + hh * hd + k]!;
      }
    }
    h = h.map((hn, n) => {
      const o = lin(w, `blocks.${b}.attn.proj`, att[n]!);
      return hn.map((v, k) => v + chunk(n, 2)[k]! * o[k]!);
    });
    h = h.map((hn, n) => {
      const m = norm(hn).map((v, k) => v * (1 + chunk(n, 4)[k]!) + chunk(n, 3)[k]!);
      const o = lin(w, `blocks.${b}.mlp.fc2`, gelu(lin(w, `blocks.${b}.mlp.fc1`, m)));
      return hn.map((v, k) => v + chunk(n, 5)[k]! * o[k]!);
    });
    if (featuresLayer === b + 1) features = h.map((hn) => lin(w, 'projector.linear2', silu(lin(w, 'projector.linear1', hn))));
    if (rawLayer === b + 1) features = h.map((hn) => [...hn]);
  }
  const p = c.patch_size;
  const outC = c.learn_sigma ? 2 * c.in_channels : c.in_channels;
  const out = h.map((hn, n) => {
    const m = lin(w, 'final_layer.adaLN_modulation.1', silu(cond[n]!));
    const v = lin(
      w,
      'final_layer.linear',
      norm(hn).map((a, k) => a * (1 + m[d + k]!) + m[k]!),
    );
    // (p q c) -> (c p q), keep the first in_channels, negate.
    const r: number[] = [];
    for (let ch = 0; ch < c.in_channels; ch++) for (let i = 0; i < p; i++) for (let j = 0; j < p; j++) r.push(-v[(i * p + j) * outC + ch]!);
    return r;
  });
  return { out, features };
}
