// OpenBLAS single-precision matrix products on memory owned by JavaScript (the wasm heap).
// Operands and results are addressed by byte offsets into one buffer, so nothing is copied.
// Thread count and core type come from OpenBLAS's own environment variables.
#include <napi.h>

#include <cblas.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

namespace {

// Must match FUSED_ACTIVATIONS in src/backend/blas-kernels.ts.
enum Activation { LINEAR = 0, RELU = 1, RELU6 = 2, PRELU = 3, LEAKYRELU = 4, SIGMOID = 5, ELU = 6 };

struct Heap {
  uint8_t* data = nullptr;
  size_t length = 0;
};

// The heap argument: a Uint8Array over the wasm memory (ArrayBuffer- or SharedArrayBuffer-backed),
// or an ArrayBuffer.
bool ReadHeap(const Napi::Env& env, const Napi::Value& v, Heap* heap) {
  if (v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_uint8_array) {
    Napi::Uint8Array bytes = v.As<Napi::Uint8Array>();
    heap->data = bytes.Data();
    heap->length = bytes.ByteLength();
    return true;
  }
  if (v.IsArrayBuffer()) {
    Napi::ArrayBuffer ab = v.As<Napi::ArrayBuffer>();
    heap->data = static_cast<uint8_t*>(ab.Data());
    heap->length = ab.ByteLength();
    return true;
  }
  Napi::TypeError::New(env, "heap must be a Uint8Array or an ArrayBuffer").ThrowAsJavaScriptException();
  return false;
}

double Num(const Napi::CallbackInfo& info, size_t i) { return info[i].As<Napi::Number>().DoubleValue(); }

size_t Size(const Napi::CallbackInfo& info, size_t i) {
  const double v = Num(info, i);
  return v > 0 ? static_cast<size_t>(v) : 0;
}

// A float32 region [offset, offset + count * 4) inside the heap, 4-byte aligned.
bool CheckRegion(const Napi::Env& env, const Heap& heap, double offset, double count, const char* what) {
  const double end = offset + count * 4.0;
  if (offset < 0 || count < 0 || end > static_cast<double>(heap.length) || std::fmod(offset, 4.0) != 0) {
    Napi::RangeError::New(env, std::string(what) + " lies outside the heap or is misaligned").ThrowAsJavaScriptException();
    return false;
  }
  return true;
}

float* At(const Heap& heap, size_t byteOffset) { return reinterpret_cast<float*>(heap.data + byteOffset); }

// gemm(heap, transA, transB, m, n, k, batch, aOffset, aStride, bOffset, bStride, cOffset)
// For each batch i: C_i[m x n] = op(A_i) * op(B_i), row-major, where A_i starts at
// aOffset + i * aStride bytes (a stride of 0 repeats one matrix for every batch), likewise B_i,
// and the C_i follow each other from cOffset.
Napi::Value Gemm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 12) {
    Napi::TypeError::New(env, "gemm expects 12 arguments").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Heap heap;
  if (!ReadHeap(env, info[0], &heap)) return env.Undefined();
  const bool transA = info[1].ToBoolean();
  const bool transB = info[2].ToBoolean();
  const size_t m = Size(info, 3), n = Size(info, 4), k = Size(info, 5), batch = Size(info, 6);
  const double aOffset = Num(info, 7), aStride = Num(info, 8);
  const double bOffset = Num(info, 9), bStride = Num(info, 10);
  const double cOffset = Num(info, 11);
  if (batch == 0 || m == 0 || n == 0) return env.Undefined();
  const double last = static_cast<double>(batch - 1);
  if (!CheckRegion(env, heap, aOffset, 0, "A") || !CheckRegion(env, heap, aOffset + last * aStride, double(m) * k, "A") ||
      !CheckRegion(env, heap, bOffset, 0, "B") || !CheckRegion(env, heap, bOffset + last * bStride, double(k) * n, "B") ||
      !CheckRegion(env, heap, cOffset, double(batch) * m * n, "C") || std::fmod(aStride, 4.0) != 0 || std::fmod(bStride, 4.0) != 0) {
    if (!env.IsExceptionPending()) Napi::RangeError::New(env, "misaligned batch stride").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const int lda = static_cast<int>(transA ? m : k);
  const int ldb = static_cast<int>(transB ? k : n);
  for (size_t i = 0; i < batch; ++i) {
    const float* a = At(heap, static_cast<size_t>(aOffset + i * aStride));
    const float* b = At(heap, static_cast<size_t>(bOffset + i * bStride));
    float* c = At(heap, static_cast<size_t>(cOffset) + i * m * n * sizeof(float));
    if (k == 0) {
      for (size_t j = 0; j < m * n; ++j) c[j] = 0.0f;
      continue;
    }
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans, static_cast<int>(m),
                static_cast<int>(n), static_cast<int>(k), 1.0f, a, lda, b, ldb, 0.0f, c, static_cast<int>(n));
  }
  return env.Undefined();
}

float Activate(float x, int activation, float alpha, const float* prelu, size_t preluSize, size_t index) {
  switch (activation) {
    case RELU:
      return x < 0.0f ? 0.0f : x;
    case RELU6:
      return x < 0.0f ? 0.0f : (x > 6.0f ? 6.0f : x);
    case PRELU:
      return x < 0.0f ? x * prelu[index % preluSize] : x;
    case LEAKYRELU:
      return x < 0.0f ? x * alpha : x;
    case SIGMOID:
      return 1.0f / (1.0f + std::exp(-x));
    case ELU:
      return x < 0.0f ? std::expm1(x) : x;
    default:
      return x;
  }
}

// epilogue(heap, cOffset, count, biasOffset, biasSize, activation, alpha, preluOffset, preluSize)
// In place over C[count]: adds bias[j % biasSize] (biasOffset < 0: no bias), then the
// activation; prelu reads its weights as preluWeights[j % preluSize] like the wasm backend.
Napi::Value Epilogue(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 9) {
    Napi::TypeError::New(env, "epilogue expects 9 arguments").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Heap heap;
  if (!ReadHeap(env, info[0], &heap)) return env.Undefined();
  const double cOffset = Num(info, 1);
  const size_t count = Size(info, 2);
  const double biasOffset = Num(info, 3);
  const size_t biasSize = Size(info, 4);
  const int activation = static_cast<int>(Num(info, 5));
  const float alpha = static_cast<float>(Num(info, 6));
  const double preluOffset = Num(info, 7);
  const size_t preluSize = Size(info, 8);
  if (activation < LINEAR || activation > ELU) {
    Napi::RangeError::New(env, "unknown activation code").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (!CheckRegion(env, heap, cOffset, double(count), "C")) return env.Undefined();
  const bool hasBias = biasOffset >= 0;
  if (hasBias && (biasSize == 0 || !CheckRegion(env, heap, biasOffset, double(biasSize), "bias"))) {
    if (!env.IsExceptionPending()) Napi::RangeError::New(env, "empty bias").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (activation == PRELU && (preluOffset < 0 || preluSize == 0 || !CheckRegion(env, heap, preluOffset, double(preluSize), "prelu weights"))) {
    if (!env.IsExceptionPending()) Napi::RangeError::New(env, "prelu needs its weights").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  float* c = At(heap, static_cast<size_t>(cOffset));
  const float* bias = hasBias ? At(heap, static_cast<size_t>(biasOffset)) : nullptr;
  const float* prelu = activation == PRELU ? At(heap, static_cast<size_t>(preluOffset)) : nullptr;
  for (size_t i = 0; i < count; ++i) {
    float x = c[i];
    if (bias) x += bias[i % biasSize];
    c[i] = Activate(x, activation, alpha, prelu, preluSize, i);
  }
  return env.Undefined();
}

// Checks a float32 region for the update functions; throws (and returns nullptr) when it is not in the heap.
float* Region(const Napi::Env& env, const Heap& heap, double offset, size_t count, const char* what) {
  if (!CheckRegion(env, heap, offset, double(count), what)) return nullptr;
  return At(heap, static_cast<size_t>(offset));
}

// sumSquares(heap, offset, count): the sum of x^2 over a float32 region, accumulated in double
// (a gradient's share of the global norm that AdamW clips by).
Napi::Value SumSquares(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 3) {
    Napi::TypeError::New(env, "sumSquares expects 3 arguments").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Heap heap;
  if (!ReadHeap(env, info[0], &heap)) return env.Undefined();
  const size_t count = Size(info, 2);
  const float* x = Region(env, heap, Num(info, 1), count, "x");
  if (!x) return env.Undefined();
  double sum = 0;
  for (size_t i = 0; i < count; ++i) sum += double(x[i]) * double(x[i]);
  return Napi::Number::New(env, sum);
}

// adamw(heap, count, pOffset, gOffset, mOffset, vOffset, gradToM, gradSqToV, beta1, beta2, invBc2, eps, stepSize, keep)
// One AdamW step in place over float32 regions, with the scalar factors src/train/adamw.ts folds:
//   m = beta1 m + gradToM g;  v = beta2 v + gradSqToV g^2;  p = keep p - stepSize m / (sqrt(invBc2 v) + eps)
// in float32, in the order the tensor-op version computes it.
Napi::Value AdamW(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 14) {
    Napi::TypeError::New(env, "adamw expects 14 arguments").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Heap heap;
  if (!ReadHeap(env, info[0], &heap)) return env.Undefined();
  const size_t count = Size(info, 1);
  float* p = Region(env, heap, Num(info, 2), count, "p");
  if (!p) return env.Undefined();
  const float* g = Region(env, heap, Num(info, 3), count, "g");
  if (!g) return env.Undefined();
  float* m = Region(env, heap, Num(info, 4), count, "m");
  if (!m) return env.Undefined();
  float* v = Region(env, heap, Num(info, 5), count, "v");
  if (!v) return env.Undefined();
  const float gradToM = float(Num(info, 6)), gradSqToV = float(Num(info, 7)), beta1 = float(Num(info, 8)), beta2 = float(Num(info, 9));
  const float invBc2 = float(Num(info, 10)), eps = float(Num(info, 11)), stepSize = float(Num(info, 12)), keep = float(Num(info, 13));
  for (size_t i = 0; i < count; ++i) {
    const float gi = g[i];
    const float mi = m[i] * beta1 + gi * gradToM;
    const float vi = v[i] * beta2 + (gi * gi) * gradSqToV;
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i] * keep - (mi / (std::sqrt(vi * invBc2) + eps)) * stepSize;
  }
  return env.Undefined();
}

// ema(heap, count, tOffset, sOffset, decay): t = decay t + (1 - decay) s in place (the EMA teacher).
Napi::Value Ema(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 5) {
    Napi::TypeError::New(env, "ema expects 5 arguments").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Heap heap;
  if (!ReadHeap(env, info[0], &heap)) return env.Undefined();
  const size_t count = Size(info, 1);
  float* t = Region(env, heap, Num(info, 2), count, "t");
  if (!t) return env.Undefined();
  const float* s = Region(env, heap, Num(info, 3), count, "s");
  if (!s) return env.Undefined();
  const float decay = float(Num(info, 4)), rest = float(1.0 - Num(info, 4));
  for (size_t i = 0; i < count; ++i) t[i] = t[i] * decay + s[i] * rest;
  return env.Undefined();
}

// info(): which OpenBLAS this is and how many threads it uses.
Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("config", Napi::String::New(env, openblas_get_config()));
  out.Set("corename", Napi::String::New(env, openblas_get_corename()));
  out.Set("threads", Napi::Number::New(env, openblas_get_num_threads()));
  return out;
}

// setThreads(n): how many threads OpenBLAS uses for each product, for the whole process.
Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    Napi::TypeError::New(env, "setThreads(n) needs a thread count").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int n = info[0].As<Napi::Number>().Int32Value();
  if (n < 1) {
    Napi::RangeError::New(env, "setThreads(n): n must be at least 1").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  openblas_set_num_threads(n);
  return env.Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("gemm", Napi::Function::New(env, Gemm, "gemm"));
  exports.Set("epilogue", Napi::Function::New(env, Epilogue, "epilogue"));
  exports.Set("sumSquares", Napi::Function::New(env, SumSquares, "sumSquares"));
  exports.Set("adamw", Napi::Function::New(env, AdamW, "adamw"));
  exports.Set("ema", Napi::Function::New(env, Ema, "ema"));
  exports.Set("info", Napi::Function::New(env, Info, "info"));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads, "setThreads"));
  return exports;
}

}  // namespace

NODE_API_MODULE(blas, Init)
