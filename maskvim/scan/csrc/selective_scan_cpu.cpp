// Selective scan (Mamba S6) forward and backward for CPU tensors, float32 and float64.
//
//   dt_t = softplus(delta_t + bias)            (or delta_t + bias without softplus)
//   h_t  = exp(dt_t A) * h_{t-1} + dt_t u_t B_t     (per channel, n states)
//   y_t  = C_t . h_t + D u_t
//
// Built by maskvim/scan/cpu.py through torch.utils.cpp_extension.load. The module talks to Python
// through plain integers (data pointers, sizes), so it includes no torch headers and compiles in
// seconds; cpu.py validates shapes, dtypes and contiguity and allocates every buffer.
//
// Layouts (all contiguous): u, delta, y, dy, du, ddelta (b,d,l); A (d,n); dA_part (b,d,n);
// B, C (b,g,n,l); dB, dC (splits,b,g,n,l); D, bias (d); dD_part, dbias_part (b,d); ckpt: opaque,
// ckpt_numel() values.
//
// Vectorisation: the channels of one group share B_t and C_t, so W = 8 channels of a group (a
// "block") run in the 8 lanes of a vector, each lane its own channel: the state is n vectors of W
// lanes, B_t[i] and C_t[i] are broadcast, and the sums over n (y_t; d dt_t and d u_t in the
// backward) are plain vector accumulations, with no horizontal sums. Per chunk, each block's
// inputs are computed along rows (softplus vectorised over t) and transposed to step-major
// (t, lane) buffers, and the chunk of B, C to (t, state) (8x8 register transposes); outputs go
// back the same way. With AVX2 + FMA the
// two exp-heavy loops use intrinsics (exp2_8); everywhere else the compiler vectorises plain loops,
// so the file also builds, slower, for any other CPU. Lanes past the end of a group carry zeros.
//
// Work split: one task = (batch, group, a range of blocks), run in parallel with OpenMP. A task
// walks time in chunks of K steps and runs all its blocks over one chunk while that chunk of B, C
// (and dB, dC) stays in cache. The forward keeps only the state at the start of every chunk (the
// checkpoints: b*g*blocks*8*ceil(l/K)*n values with K >= 4n, a quarter of u's size when d/g is a
// multiple of 8); the backward restarts each chunk from its checkpoint, recomputes its K states
// and decays into a buffer and runs the adjoint recurrence backwards through them, so memory stays
// linear in l without a factor n. dB and dC sum over the channels of a group: a task accumulates
// them per lane and adds them, once per chunk, into its own slot (the caller sums the slots).
#ifndef MASKVIM_NO_PYTHON  // defined only by standalone benchmarks of the kernels
#include <Python.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <type_traits>

#if defined(__SSE__) || defined(__x86_64__) || defined(_M_X64)
#include <xmmintrin.h>
#define MASKVIM_HAVE_MXCSR 1
#endif
#if defined(__AVX__)
#include <immintrin.h>
#endif

namespace {

// ---------------------------------------------------------------------------------------------
// math: the float versions are branch-free so that loops over them vectorise; double uses libm.

inline float bits_to_float(uint32_t b) {
  float f;
  std::memcpy(&f, &b, sizeof f);
  return f;
}

// exp with ~2 ulp error (Cephes expf polynomial), the argument clamped to [-87.3, 88]; a NaN
// argument is passed through at the end (the clamps alone would turn it into a number).
inline float exp_(float x) {
  float xc = x > -87.3365f ? x : -87.3365f;
  xc = xc < 88.0f ? xc : 88.0f;
  const float k = std::floor(xc * 1.44269504088896341f + 0.5f);
  float r = xc - k * 0.693359375f;
  r = r + k * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + r + 1.0f;
  const float e = k + 127.0f;  // in [1, 254]
  const float v = p * bits_to_float(static_cast<uint32_t>(static_cast<int32_t>(e)) << 23);
  return x == x ? v : x;
}
inline double exp_(double x) { return std::exp(x); }

// log1p(z) for z in [0, 1]: 2 atanh(s), s = z / (2 + z) <= 1/3; series error < 2e-9 relative.
inline float log1p01_(float z) {
  const float s = z / (2.0f + z);
  const float s2 = s * s;
  float p = 1.0f / 15.0f;
  p = p * s2 + 1.0f / 13.0f;
  p = p * s2 + 1.0f / 11.0f;
  p = p * s2 + 1.0f / 9.0f;
  p = p * s2 + 1.0f / 7.0f;
  p = p * s2 + 1.0f / 5.0f;
  p = p * s2 + 1.0f / 3.0f;
  p = p * s2 + 1.0f;
  return 2.0f * s * p;
}
inline double log1p01_(double z) { return std::log1p(z); }

// torch.nn.functional.softplus (beta 1, threshold 20) and its derivative.
inline float softplus_(float x) {
  const float z = exp_(-std::fabs(x));
  const float sp = (x > 0.0f ? x : 0.0f) + log1p01_(z);
  return x > 20.0f ? x : sp;
}
inline float softplus_grad_(float x) {
  const float z = exp_(-std::fabs(x));
  const float s = (x >= 0.0f ? 1.0f : z) / (1.0f + z);
  return x > 20.0f ? 1.0f : s;
}
inline double softplus_(double x) { return x > 20.0 ? x : std::log1p(std::exp(x)); }
inline double softplus_grad_(double x) {
  if (x > 20.0) return 1.0;
  const double z = std::exp(-std::fabs(x));
  return (x >= 0.0 ? 1.0 : z) / (1.0 + z);
}

// Lanes per block: 8 channels (one AVX2 register of floats, two of doubles).
template <typename T>
constexpr int lanes() {
  return 8;
}

#if defined(__AVX2__) && defined(__FMA__)
#define MASKVIM_AVX2 1
// 2^x on 8 floats (so exp(dt A) = exp2_8(dt * A log2 e), with A log2 e precomputed per block): a
// degree-5 polynomial for 2^f, f in [-0.5, 0.5] (near-minimax, relative error < 1e-7), the argument
// clamped to [-126, 127]. k = round(x) comes from adding 1.5 * 2^23 + 127, whose low mantissa bits
// are then k + 127: shifted into the exponent field they are 2^k (no round / convert). The max/min
// operand order keeps a NaN argument NaN (and the product with the NaN polynomial too).
#define MASKVIM_EXP2_C5 1.3264727867062405e-3f
#define MASKVIM_EXP2_C4 9.671512924811502e-3f
#define MASKVIM_EXP2_C3 5.550733743386829e-2f
#define MASKVIM_EXP2_C2 2.4022242080784517e-1f
#define MASKVIM_EXP2_C1 6.931469775981463e-1f
#define MASKVIM_EXP2_MAGIC 12583039.0f  // 1.5 * 2^23 + 127
inline __m256 exp2_8(__m256 x) {
  const __m256 xc = _mm256_min_ps(_mm256_set1_ps(127.0f), _mm256_max_ps(_mm256_set1_ps(-126.0f), x));
  const __m256 j = _mm256_add_ps(xc, _mm256_set1_ps(MASKVIM_EXP2_MAGIC));
  const __m256 f = _mm256_sub_ps(xc, _mm256_sub_ps(j, _mm256_set1_ps(MASKVIM_EXP2_MAGIC)));
  __m256 p = _mm256_fmadd_ps(_mm256_set1_ps(MASKVIM_EXP2_C5), f, _mm256_set1_ps(MASKVIM_EXP2_C4));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(MASKVIM_EXP2_C3));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(MASKVIM_EXP2_C2));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(MASKVIM_EXP2_C1));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f));
  return _mm256_mul_ps(p, _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_castps_si256(j), 23)));
}
#endif

// Denormals make decaying states crawl: flush them in our float tasks only (float64 stays exact).
struct FlushDenormals {
#ifdef MASKVIM_HAVE_MXCSR
  unsigned int saved;
  bool active;
  explicit FlushDenormals(bool on) : saved(_mm_getcsr()), active(on) {
    if (active) _mm_setcsr(saved | 0x8040u);  // FTZ | DAZ
  }
  ~FlushDenormals() {
    if (active) _mm_setcsr(saved);
  }
#else
  explicit FlushDenormals(bool) {}
#endif
};

// 64-byte aligned scratch, freed on scope exit.
template <typename T>
struct Scratch {
  T* p = nullptr;
  explicit Scratch(int64_t count) {
    const size_t bytes = ((static_cast<size_t>(count) * sizeof(T) + 63) / 64) * 64;
    p = static_cast<T*>(std::aligned_alloc(64, bytes > 0 ? bytes : 64));
    if (!p) throw std::bad_alloc();
    std::memset(p, 0, bytes > 0 ? bytes : 64);
  }
  ~Scratch() { std::free(p); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  T* get() const { return p; }
};

struct Problem {
  int64_t b, d, l, g, n, K, nchunk, splits;
  bool softplus;
  int64_t dg() const { return d / g; }
};

template <typename T>
int64_t blocks_per_group(const Problem& p) {
  return (p.dg() + lanes<T>() - 1) / lanes<T>();
}

// checkpoint layout: (b, g, block, chunk, n, W)
template <typename T>
int64_t ckpt_numel(const Problem& p) {
  return p.b * p.g * blocks_per_group<T>(p) * p.nchunk * p.n * lanes<T>();
}

// A task's blocks [k0, k1) of group gg in batch bb.
template <typename T>
void task_range(const Problem& p, int64_t task, int64_t& bb, int64_t& gg, int64_t& k0, int64_t& k1) {
  const int64_t nb = blocks_per_group<T>(p);
  const int64_t s = task % p.splits;
  const int64_t bg = task / p.splits;
  bb = bg / p.g;
  gg = bg % p.g;
  k0 = (nb * s) / p.splits;
  k1 = (nb * (s + 1)) / p.splits;
}

// Per-block constants, lane-major: A as (n, W), D and bias as (W); dead lanes are zero.
// A task's per-lane float64 sums of dA (n, W per block), dD and dbias (W per block) -> this batch's
// (d, n) / (d) partial rows (the caller sums over the batch).
template <typename T>
void store_block_grads(const Problem& p, int64_t bb, int64_t gg, int64_t k0, int64_t k1, int64_t n,
                       const double* dA_acc, const double* dD_acc, const double* dbias_acc, T* dA_part, T* dD_part,
                       T* dbias_part) {
  constexpr int W = lanes<T>();
  for (int64_t kb = k0; kb < k1; ++kb) {
    const int64_t cnt = std::min<int64_t>(W, p.dg() - kb * W);
    for (int64_t k = 0; k < cnt; ++k) {
      const int64_t c = gg * p.dg() + kb * W + k;
      for (int64_t i = 0; i < n; ++i) dA_part[(bb * p.d + c) * n + i] = static_cast<T>(dA_acc[((kb - k0) * n + i) * W + k]);
      dD_part[bb * p.d + c] = static_cast<T>(dD_acc[(kb - k0) * W + k]);
      dbias_part[bb * p.d + c] = static_cast<T>(dbias_acc[(kb - k0) * W + k]);
    }
  }
}

// Lane-major constants of a task's blocks [k0, k1) of group gg: Ab (block, n, W), Db and biasb (block, W).
template <typename T>
void load_task_params(const Problem& p, int64_t gg, int64_t k0, int64_t k1, const T* A, const T* D, const T* bias,
                      T* Ab, T* Db, T* biasb) {
  constexpr int W = lanes<T>();
  for (int64_t kb = k0; kb < k1; ++kb) {
    const int64_t c0 = gg * p.dg() + kb * W;
    const int64_t cnt = std::min<int64_t>(W, p.dg() - kb * W);
    T* Ak = Ab + (kb - k0) * p.n * W;
    T* Dk = Db + (kb - k0) * W;
    T* bk = biasb + (kb - k0) * W;
    for (int64_t i = 0; i < p.n * W; ++i) Ak[i] = T(0);
    for (int k = 0; k < W; ++k) Dk[k] = bk[k] = T(0);
    for (int64_t k = 0; k < cnt; ++k) {
      for (int64_t i = 0; i < p.n; ++i) Ak[i * W + k] = A[(c0 + k) * p.n + i];
      Dk[k] = D ? D[c0 + k] : T(0);
      bk[k] = bias ? bias[c0 + k] : T(0);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Transposes between the tensors' row layouts and the step-major chunk buffers the loops read:
// (W rows of a block) -> (t, lane), (n rows of B, C) -> (t, state), and back for y, du, ddelta,
// dB, dC. Chunk-sized, in cache; 8x8 tiles in AVX registers where available.

#if defined(__AVX__)
inline void transpose8x8(__m256 r0, __m256 r1, __m256 r2, __m256 r3, __m256 r4, __m256 r5, __m256 r6, __m256 r7,
                         float* out, int64_t ldo) {
  const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
  const __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
  const __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
  const __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
  const __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  _mm256_storeu_ps(out + 0 * ldo, _mm256_permute2f128_ps(s0, s4, 0x20));
  _mm256_storeu_ps(out + 1 * ldo, _mm256_permute2f128_ps(s1, s5, 0x20));
  _mm256_storeu_ps(out + 2 * ldo, _mm256_permute2f128_ps(s2, s6, 0x20));
  _mm256_storeu_ps(out + 3 * ldo, _mm256_permute2f128_ps(s3, s7, 0x20));
  _mm256_storeu_ps(out + 4 * ldo, _mm256_permute2f128_ps(s0, s4, 0x31));
  _mm256_storeu_ps(out + 5 * ldo, _mm256_permute2f128_ps(s1, s5, 0x31));
  _mm256_storeu_ps(out + 6 * ldo, _mm256_permute2f128_ps(s2, s6, 0x31));
  _mm256_storeu_ps(out + 7 * ldo, _mm256_permute2f128_ps(s3, s7, 0x31));
}
#endif

// out[c * ldo + r] = in[r * ldi + c] for r < rows, c < cols (float: 8x8 tiles in registers).
template <typename T>
void transpose(const T* __restrict in, int64_t ldi, int64_t rows, int64_t cols, T* __restrict out, int64_t ldo) {
  int64_t done = 0;  // rows handled in 8-row tiles
#if defined(__AVX__)
  if constexpr (sizeof(T) == 4) {
    done = rows - rows % 8;
    const int64_t cols8 = cols - cols % 8;
    for (int64_t r0 = 0; r0 < done; r0 += 8) {
      for (int64_t c0 = 0; c0 < cols8; c0 += 8) {
        const float* q = in + r0 * ldi + c0;
        transpose8x8(_mm256_loadu_ps(q), _mm256_loadu_ps(q + ldi), _mm256_loadu_ps(q + 2 * ldi),
                     _mm256_loadu_ps(q + 3 * ldi), _mm256_loadu_ps(q + 4 * ldi), _mm256_loadu_ps(q + 5 * ldi),
                     _mm256_loadu_ps(q + 6 * ldi), _mm256_loadu_ps(q + 7 * ldi), out + c0 * ldo + r0, ldo);
      }
      for (int64_t c = cols8; c < cols; ++c)
        for (int64_t r = r0; r < r0 + 8; ++r) out[c * ldo + r] = in[r * ldi + c];
    }
  }
#endif
  for (int64_t r = done; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) out[c * ldo + r] = in[r * ldi + c];
}

// One chunk of one block in the step-major layout (len, W): dt, dt*u, u and, for the backward,
// d softplus / dx and dy. Computed along rows (vectorised over t) into `rows` (5 x W x K), then
// transposed. Dead lanes (past the end of the group) are zeros. The rows of the chunk this block
// runs next (starting at step offset `next`, 0 for none) are prefetched: each visit reads only K
// steps of a row, too short a run for the hardware prefetchers to pick up.
template <typename T>
void prepare_chunk(const Problem& p, int64_t row0, int64_t cnt, int64_t len, int64_t next, const T* delta,
                   const T* u, const T* dy, const T* biasb, T* rows, T* dtb, T* dtub, T* ub, T* dspb, T* dyb) {
  constexpr int W = lanes<T>();
  const int64_t K = p.K;
  if (next != 0) {
    constexpr int64_t line = 64 / sizeof(T);
    for (int64_t k = 0; k < cnt; ++k)
      for (int64_t o = 0; o < K; o += line) {
        const int64_t at = row0 + k * p.l + next + o;
        __builtin_prefetch(delta + at, 0, 1);
        __builtin_prefetch(u + at, 0, 1);
        if (dy) __builtin_prefetch(dy + at, 0, 1);
      }
  }
  T* rdt = rows;
  T* rdtu = rows + W * K;
  T* ru = rows + 2 * W * K;
  T* rdsp = rows + 3 * W * K;
  T* rdy = rows + 4 * W * K;
  const bool bwd = dspb != nullptr;
  for (int64_t k = 0; k < W; ++k) {
    T* __restrict a = rdt + k * K;
    T* __restrict au = rdtu + k * K;
    T* __restrict uu = ru + k * K;
    T* __restrict sg = rdsp + k * K;
    T* __restrict yy = rdy + k * K;
    if (k >= cnt) {
      std::memset(a, 0, sizeof(T) * len);
      std::memset(au, 0, sizeof(T) * len);
      std::memset(uu, 0, sizeof(T) * len);
      if (bwd) {
        std::memset(sg, 0, sizeof(T) * len);
        std::memset(yy, 0, sizeof(T) * len);
      }
      continue;
    }
    const T* __restrict dr = delta + row0 + k * p.l;
    const T* __restrict ur = u + row0 + k * p.l;
    const T bk = biasb[k];
    if (p.softplus && bwd) {
#pragma omp simd
      for (int64_t t = 0; t < len; ++t) {
        const T x = dr[t] + bk;
        const T z = exp_(-std::fabs(x));
        const T sp = (x > T(0) ? x : T(0)) + log1p01_(z);
        const T gr = (x >= T(0) ? T(1) : z) / (T(1) + z);
        a[t] = x > T(20) ? x : sp;
        sg[t] = x > T(20) ? T(1) : gr;
      }
    } else if (p.softplus) {
#pragma omp simd
      for (int64_t t = 0; t < len; ++t) a[t] = softplus_(dr[t] + bk);
    } else {
#pragma omp simd
      for (int64_t t = 0; t < len; ++t) a[t] = dr[t] + bk;
      if (bwd)
        for (int64_t t = 0; t < len; ++t) sg[t] = T(1);
    }
#pragma omp simd
    for (int64_t t = 0; t < len; ++t) {
      uu[t] = ur[t];
      au[t] = a[t] * ur[t];
    }
    if (bwd) std::memcpy(yy, dy + row0 + k * p.l, sizeof(T) * len);
  }
  transpose<T>(rdt, K, W, len, dtb, W);
  transpose<T>(rdtu, K, W, len, dtub, W);
  transpose<T>(ru, K, W, len, ub, W);
  if (bwd) {
    transpose<T>(rdsp, K, W, len, dspb, W);
    transpose<T>(rdy, K, W, len, dyb, W);
  }
}

#ifdef MASKVIM_AVX2
// ---------------------------------------------------------------------------------------------
// The float AVX2 path for n known at compile time (4, 8, 16, 32): the n states (forward) and the
// adjoint carry (backward) stay in registers through a chunk, the inputs of a chunk are transposed
// in 8x8 register tiles straight from the rows and softplus'ed in the step-major layout (one pass),
// and outputs are transposed straight back into the rows.

inline void transpose8x8_inplace(__m256 (&r)[8]) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
  r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
  r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
  r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
  r[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
  r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
  r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
  r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

// r[k] = src[k * ld + 0..cols) for k < rows, zeros elsewhere.
__attribute__((always_inline)) inline void load_tile8(const float* src, int64_t ld, int64_t rows, int64_t cols, __m256 (&r)[8]) {
  if (rows == 8 && cols == 8) {
    for (int k = 0; k < 8; ++k) r[k] = _mm256_loadu_ps(src + k * ld);
    return;
  }
  alignas(32) float tmp[8][8];
  for (int k = 0; k < 8; ++k)
    for (int c = 0; c < 8; ++c) tmp[k][c] = (k < rows && c < cols) ? src[k * ld + c] : 0.0f;
  for (int k = 0; k < 8; ++k) r[k] = _mm256_load_ps(tmp[k]);
}

// dst[k * ld + 0..cols) = r[k][0..cols) for k < rows.
__attribute__((always_inline)) inline void store_tile8(float* dst, int64_t ld, int64_t rows, int64_t cols, const __m256 (&r)[8]) {
  if (rows == 8 && cols == 8) {
    for (int k = 0; k < 8; ++k) _mm256_storeu_ps(dst + k * ld, r[k]);
    return;
  }
  alignas(32) float tmp[8][8];
  for (int k = 0; k < 8; ++k) _mm256_store_ps(tmp[k], r[k]);
  for (int64_t k = 0; k < rows; ++k)
    for (int64_t c = 0; c < cols; ++c) dst[k * ld + c] = tmp[k][c];
}

// exp2_8 on M vectors at once, step by step across them: one exp is a ~40-cycle dependency chain,
// and the scheduler only overlaps a few chains written one after the other.
template <int M>
inline void exp2_8xM(const __m256* x, __m256* out) {
  __m256 f[M], p[M], j[M];
#pragma GCC unroll 8
  for (int q = 0; q < M; ++q) {
    const __m256 xc = _mm256_min_ps(_mm256_set1_ps(127.0f), _mm256_max_ps(_mm256_set1_ps(-126.0f), x[q]));
    j[q] = _mm256_add_ps(xc, _mm256_set1_ps(MASKVIM_EXP2_MAGIC));
    f[q] = _mm256_sub_ps(xc, _mm256_sub_ps(j[q], _mm256_set1_ps(MASKVIM_EXP2_MAGIC)));
    p[q] = _mm256_fmadd_ps(_mm256_set1_ps(MASKVIM_EXP2_C5), f[q], _mm256_set1_ps(MASKVIM_EXP2_C4));
  }
#pragma GCC unroll 8
  for (int q = 0; q < M; ++q) p[q] = _mm256_fmadd_ps(p[q], f[q], _mm256_set1_ps(MASKVIM_EXP2_C3));
#pragma GCC unroll 8
  for (int q = 0; q < M; ++q) p[q] = _mm256_fmadd_ps(p[q], f[q], _mm256_set1_ps(MASKVIM_EXP2_C2));
#pragma GCC unroll 8
  for (int q = 0; q < M; ++q) p[q] = _mm256_fmadd_ps(p[q], f[q], _mm256_set1_ps(MASKVIM_EXP2_C1));
#pragma GCC unroll 8
  for (int q = 0; q < M; ++q) p[q] = _mm256_fmadd_ps(p[q], f[q], _mm256_set1_ps(1.0f));
#pragma GCC unroll 8
  for (int q = 0; q < M; ++q)
    out[q] = _mm256_mul_ps(p[q], _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_castps_si256(j[q]), 23)));
}

// ab[(t * n + i) * 8] = exp(dt_t A_i) = exp2_8(dt_t * A2[i]) for t < len, i < n (n a multiple of 4),
// 4 exps interleaved.
template <int n>
inline void decays_chunk8(const float* dtb, const float* A2k, int64_t len, float* ab) {
  for (int64_t t = 0; t < len; ++t) {
    const __m256 dt = _mm256_load_ps(dtb + t * 8);
#pragma GCC unroll 8
    for (int i = 0; i < n; i += 4) {
      __m256 x[4], a[4];
#pragma GCC unroll 4
      for (int q = 0; q < 4; ++q) x[q] = _mm256_mul_ps(dt, _mm256_load_ps(A2k + (i + q) * 8));
      exp2_8xM<4>(x, a);
#pragma GCC unroll 4
      for (int q = 0; q < 4; ++q) _mm256_store_ps(ab + (t * n + i + q) * 8, a[q]);
    }
  }
}

// softplus (threshold 20) of 8 floats and, if grad, its derivative (the logistic function), with
// no division: log1p(z) = z q(z) for z = exp(-|x|) in (0, 1], q a near-minimax degree-8 polynomial
// (relative error < 1e-7), and 1 / (1 + z) from rcp and one Newton step (~23 bits).
inline __m256 softplus8(__m256 x, __m256* grad) {
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 ax = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x);
  const __m256 z = exp2_8(_mm256_mul_ps(ax, _mm256_set1_ps(-1.44269504088896341f)));  // exp(-|x|)
  __m256 q = _mm256_set1_ps(0.005105420416638334f);
  q = _mm256_fmadd_ps(q, z, _mm256_set1_ps(-0.028990300339056446f));
  q = _mm256_fmadd_ps(q, z, _mm256_set1_ps(0.07737795573383537f));
  q = _mm256_fmadd_ps(q, z, _mm256_set1_ps(-0.1359035238883751f));
  q = _mm256_fmadd_ps(q, z, _mm256_set1_ps(0.1907118396302322f));
  q = _mm256_fmadd_ps(q, z, _mm256_set1_ps(-0.24833909357155398f));
  q = _mm256_fmadd_ps(q, z, _mm256_set1_ps(0.3331792882037151f));
  q = _mm256_fmadd_ps(q, z, _mm256_set1_ps(-0.49999435313608415f));
  q = _mm256_fmadd_ps(q, z, _mm256_set1_ps(0.9999999650844058f));
  // max(x, 0) with x second: a NaN x gives 0 here, and NaN through log1p(exp(-|NaN|))
  const __m256 sp = _mm256_fmadd_ps(z, q, _mm256_max_ps(_mm256_setzero_ps(), x));
  const __m256 big = _mm256_cmp_ps(x, _mm256_set1_ps(20.0f), _CMP_GT_OQ);
  if (grad) {
    const __m256 den = _mm256_add_ps(one, z);
    __m256 r = _mm256_rcp_ps(den);
    r = _mm256_fmadd_ps(r, _mm256_fnmadd_ps(den, r, one), r);
    const __m256 num = _mm256_blendv_ps(z, one, _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GE_OQ));
    *grad = _mm256_blendv_ps(_mm256_mul_ps(num, r), one, big);
  }
  return _mm256_blendv_ps(sp, x, big);
}

// One chunk of one block, step-major (len, 8): dt, dt*u, u and, if dspb, d softplus/dx and dy.
// The chunk the task runs next (rows nrow0 + k * l, k < ncnt, nlen steps; nrow0 < 0: none) is
// prefetched: often the first of the next block or span, whose rows would otherwise come cold.
// Rows k >= cnt (past the end of the group) read as zeros. Each row is read 16 steps (a cache
// line) at a time, all of it at once: rows l apart often share one L1 set.
inline void prepare_chunk8(const Problem& p, int64_t row0, int64_t cnt, int64_t len, int64_t nrow0, int64_t ncnt,
                           int64_t nlen, const float* delta,
                           const float* u, const float* dy, const float* biasb, float* dtb, float* dtub, float* ub,
                           float* dspb, float* dyb, float* out0, float* out1) {
  // Prefetch the next chunk into L2 only: its rows lie l apart and share few L1 sets. The output
  // rows are prefetched for writing (their stores would otherwise wait on each line's read).
  if (nrow0 >= 0) {
    for (int64_t k = 0; k < ncnt; ++k)
      for (int64_t o = 0; o < nlen; o += 16) {
        const int64_t at = nrow0 + k * p.l + o;
        __builtin_prefetch(delta + at, 0, 2);
        __builtin_prefetch(u + at, 0, 2);
        if (dy) __builtin_prefetch(dy + at, 0, 2);
        if (out0) __builtin_prefetch(out0 + at, 1, 2);
        if (out1) __builtin_prefetch(out1 + at, 1, 2);
      }
  }
  const __m256 bv = _mm256_load_ps(biasb);
  for (int64_t tt = 0; tt < len; tt += 16) {
    const int64_t c0 = std::min<int64_t>(8, len - tt), c1 = std::max<int64_t>(0, std::min<int64_t>(8, len - tt - 8));
    __m256 X[8], Z[8];
    load_tile8(delta + row0 + tt, p.l, cnt, c0, X);
    if (c1 > 0) load_tile8(delta + row0 + tt + 8, p.l, cnt, c1, Z);
    transpose8x8_inplace(X);
    if (c1 > 0) transpose8x8_inplace(Z);
    const int64_t ns = c1 > 0 ? 16 : 8;
    for (int s = 0; s < ns; ++s) {
      const __m256 x = _mm256_add_ps(s < 8 ? X[s] : Z[s - 8], bv);
      __m256 dt, g = _mm256_set1_ps(1.0f);
      if (p.softplus)
        dt = softplus8(x, dspb ? &g : nullptr);
      else
        dt = x;
      _mm256_store_ps(dtb + (tt + s) * 8, dt);
      if (dspb) _mm256_store_ps(dspb + (tt + s) * 8, g);
    }
    load_tile8(u + row0 + tt, p.l, cnt, c0, X);
    if (c1 > 0) load_tile8(u + row0 + tt + 8, p.l, cnt, c1, Z);
    transpose8x8_inplace(X);
    if (c1 > 0) transpose8x8_inplace(Z);
    for (int s = 0; s < ns; ++s) {
      const __m256 uu = s < 8 ? X[s] : Z[s - 8];
      _mm256_store_ps(dtub + (tt + s) * 8, _mm256_mul_ps(_mm256_load_ps(dtb + (tt + s) * 8), uu));
      _mm256_store_ps(ub + (tt + s) * 8, uu);
    }
    if (dy) {
      load_tile8(dy + row0 + tt, p.l, cnt, c0, X);
      if (c1 > 0) load_tile8(dy + row0 + tt + 8, p.l, cnt, c1, Z);
      transpose8x8_inplace(X);
      if (c1 > 0) transpose8x8_inplace(Z);
      for (int s = 0; s < ns; ++s) _mm256_store_ps(dyb + (tt + s) * 8, s < 8 ? X[s] : Z[s - 8]);
    }
  }
}

// (len, 8) step-major buffer -> rows out + k * l, k < cnt (16 steps, a cache line, at a time).
inline void unprepare8(const Problem& p, const float* buf, int64_t len, int64_t cnt, float* out) {
  for (int64_t tt = 0; tt < len; tt += 8) {
    __m256 Y[8];
    for (int s = 0; s < 8; ++s) Y[s] = _mm256_load_ps(buf + (tt + s) * 8);
    transpose8x8_inplace(Y);
    store_tile8(out + tt, p.l, cnt, std::min<int64_t>(8, len - tt), Y);
  }
}

// r[i] = sum of the 8 lanes of v[i], i < 8.
inline __m256 hsum8x8(const __m256* v) {
  const __m256 a0 = _mm256_hadd_ps(v[0], v[1]), a1 = _mm256_hadd_ps(v[2], v[3]);
  const __m256 a2 = _mm256_hadd_ps(v[4], v[5]), a3 = _mm256_hadd_ps(v[6], v[7]);
  const __m256 b0 = _mm256_hadd_ps(a0, a1), b1 = _mm256_hadd_ps(a2, a3);
  // b0 = [s0 s1 s2 s3 | s0' s1' s2' s3'] (low / high halves of the lanes), b1 likewise for 4..7
  return _mm256_add_ps(_mm256_permute2f128_ps(b0, b1, 0x20), _mm256_permute2f128_ps(b0, b1, 0x31));
}

// r[i] = sum of the 8 lanes of v[i], i < 4.
inline __m128 hsum4x8(const __m256* v) {
  const __m256 b = _mm256_hadd_ps(_mm256_hadd_ps(v[0], v[1]), _mm256_hadd_ps(v[2], v[3]));
  return _mm_add_ps(_mm256_castps256_ps128(b), _mm256_extractf128_ps(b, 1));
}

// acc[i] += sum of the lanes of v[i], i < n (n a multiple of 4).
template <int n>
inline void add_lane_sums(const __m256* v, float* acc) {
  if constexpr (n % 8 == 0) {
#pragma GCC unroll 4
    for (int i = 0; i < n; i += 8) _mm256_storeu_ps(acc + i, _mm256_add_ps(_mm256_loadu_ps(acc + i), hsum8x8(v + i)));
  } else {
#pragma GCC unroll 8
    for (int i = 0; i < n; i += 4) _mm_storeu_ps(acc + i, _mm_add_ps(_mm_loadu_ps(acc + i), hsum4x8(v + i)));
  }
}

// Steps per span: the unit a task runs all its blocks over, each block straight through it (long
// runs along its rows, which the hardware prefetchers follow; visiting all rows of a group at one
// time offset instead makes rows l apart fight over the same cache sets). A multiple of K, and the
// span's B, C (and dB, dC) stay within ~64 KiB.
inline int64_t span_len(const Problem& p) {
  return p.K * std::max<int64_t>(1, 2048 / (p.K * p.n));
}

template <int NT>
void forward_task_avx(const Problem& p, int64_t task, const float* u, const float* delta, const float* A,
                      const float* Bg, const float* Cg, const float* D, const float* bias, float* y, float* ckpt) {
  constexpr int W = 8, n = NT;
  const int64_t ls = p.l;
  int64_t bb, gg, k0, k1;
  task_range<float>(p, task, bb, gg, k0, k1);
  if (k1 <= k0) return;
  FlushDenormals ftz(true);
  const int64_t nbt = k1 - k0, nb = blocks_per_group<float>(p), K = p.K;
  const int64_t Kp = (K + 15) / 16 * 16;  // buffers hold whole 16-step tiles
  const int64_t S = span_len(p);
  Scratch<float> state(nbt * n * W), A2b(nbt * n * W), Db(nbt * W), biasb(nbt * W);
  Scratch<float> dtb(Kp * W), dtub(Kp * W), ub(Kp * W), yb(Kp * W), BC(S * 2 * n), ab(K * n * W);
  load_task_params<float>(p, gg, k0, k1, A, D, bias, A2b.get(), Db.get(), biasb.get());
  for (int64_t i = 0; i < nbt * n * W; ++i) A2b.get()[i] *= 1.44269504088896341f;
  for (int64_t s0 = 0; s0 < p.l; s0 += S) {
    const int64_t slen = std::min(S, p.l - s0);
    // BC[t * 2n + i] = B[b, g, i, s0 + t], BC[t * 2n + n + i] = C[b, g, i, s0 + t]
    transpose<float>(Bg + (bb * p.g + gg) * n * ls + s0, ls, n, slen, BC.get(), 2 * n);
    transpose<float>(Cg + (bb * p.g + gg) * n * ls + s0, ls, n, slen, BC.get() + n, 2 * n);
    for (int64_t kb = k0; kb < k1; ++kb) {
      const int64_t c0 = gg * p.dg() + kb * W;
      const int64_t cnt = std::min<int64_t>(W, p.dg() - kb * W);
      float* __restrict hs = state.get() + (kb - k0) * n * W;
      const float* __restrict A2k = A2b.get() + (kb - k0) * n * W;
      const __m256 Dv = _mm256_load_ps(Db.get() + (kb - k0) * W);
      __m256 h[n];
#pragma GCC unroll 32
      for (int i = 0; i < n; ++i) h[i] = _mm256_load_ps(hs + i * W);
      for (int64_t t0 = s0; t0 < s0 + slen; t0 += K) {
        const int64_t len = std::min(K, p.l - t0);
        const int64_t row0 = (bb * p.d + c0) * p.l + t0;
        const float* __restrict bc = BC.get() + (t0 - s0) * 2 * n;
        // the chunk this task runs next: the block's next one in the span, else the next block's
        // first, else block k0's first in the next span
        int64_t nrow0 = -1, ncnt = cnt, nlen = K;
        if (t0 + K < s0 + slen) {
          nrow0 = row0 + K;
          nlen = std::min(K, p.l - t0 - K);
        } else if (kb + 1 < k1) {
          nrow0 = (bb * p.d + c0 + W) * p.l + s0;
          ncnt = std::min<int64_t>(W, p.dg() - (kb + 1) * W);
          nlen = std::min(K, p.l - s0);
        } else if (s0 + S < p.l) {
          nrow0 = (bb * p.d + gg * p.dg() + k0 * W) * p.l + s0 + S;
          ncnt = std::min<int64_t>(W, p.dg() - k0 * W);
          nlen = std::min(K, p.l - s0 - S);
        }
        prepare_chunk8(p, row0, cnt, len, nrow0, ncnt, nlen, delta, u, nullptr,
                       biasb.get() + (kb - k0) * W, dtb.get(), dtub.get(), ub.get(), nullptr, nullptr, y, nullptr);
        if (ckpt) {
          float* ck = ckpt + ((((bb * p.g + gg) * nb + kb) * p.nchunk) + t0 / K) * n * W;
#pragma GCC unroll 32
          for (int i = 0; i < n; ++i) _mm256_storeu_ps(ck + i * W, h[i]);
        }
        decays_chunk8<n>(dtb.get(), A2k, len, ab.get());
        for (int64_t t = 0; t < len; ++t) {
          const __m256 dtu = _mm256_load_ps(dtub.get() + t * W);
          const float* __restrict bct = bc + t * 2 * n;
          __m256 acc0 = _mm256_mul_ps(Dv, _mm256_load_ps(ub.get() + t * W)), acc1 = _mm256_setzero_ps();
#pragma GCC unroll 32
          for (int i = 0; i < n; ++i) {
            const __m256 a = _mm256_load_ps(ab.get() + (t * n + i) * W);
            h[i] = _mm256_fmadd_ps(a, h[i], _mm256_mul_ps(_mm256_broadcast_ss(bct + i), dtu));
            if (i & 1)
              acc1 = _mm256_fmadd_ps(_mm256_broadcast_ss(bct + n + i), h[i], acc1);
            else
              acc0 = _mm256_fmadd_ps(_mm256_broadcast_ss(bct + n + i), h[i], acc0);
          }
          _mm256_store_ps(yb.get() + t * W, _mm256_add_ps(acc0, acc1));
        }
        unprepare8(p, yb.get(), len, cnt, y + row0);
      }
#pragma GCC unroll 32
      for (int i = 0; i < n; ++i) _mm256_store_ps(hs + i * W, h[i]);
    }
  }
}

template <int NT>
void backward_task_avx(const Problem& p, int64_t task, const float* u, const float* delta, const float* A,
                       const float* Bg, const float* Cg, const float* D, const float* bias, const float* ckpt,
                       const float* dy, float* du, float* ddelta, float* dA_part, float* dB, float* dC,
                       float* dD_part, float* dbias_part) {
  constexpr int W = 8, n = NT;
  const int64_t ls = p.l;
  int64_t bb, gg, k0, k1;
  task_range<float>(p, task, bb, gg, k0, k1);
  if (k1 <= k0) return;
  FlushDenormals ftz(true);
  const int64_t nbt = k1 - k0, nb = blocks_per_group<float>(p), K = p.K;
  const int64_t Kp = (K + 15) / 16 * 16;
  const int64_t S = span_len(p);
  const int64_t slot = task % p.splits;
  Scratch<float> Ab(nbt * n * W), A2b(nbt * n * W), Db(nbt * W), biasb(nbt * W);
  Scratch<float> carry(nbt * n * W);  // a_{t+1} * dL/dh_{t+1}, per block
  Scratch<double> dA_acc(nbt * n * W), dD_acc(nbt * W), dbias_acc(nbt * W);
  Scratch<float> hbuf((K + 1) * n * W), abuf(K * n * W);  // one chunk's states h_{t0-1..} and decays
  Scratch<float> dtb(Kp * W), dtub(Kp * W), ub(Kp * W), dspb(Kp * W), dyb(Kp * W), dub(Kp * W), ddb(Kp * W);
  Scratch<float> BC(S * 2 * n), dBs(S * n), dCs(S * n);  // the span's B, C (step-major) and dB, dC
  load_task_params<float>(p, gg, k0, k1, A, D, bias, Ab.get(), Db.get(), biasb.get());
  for (int64_t i = 0; i < nbt * n * W; ++i) A2b.get()[i] = Ab.get()[i] * 1.44269504088896341f;
  const int64_t gbase = ((slot * p.b + bb) * p.g + gg) * n * ls;  // this task's dB, dC rows
  const int64_t nspan = (p.l + S - 1) / S;
  for (int64_t sp = nspan - 1; sp >= 0; --sp) {
    const int64_t s0 = sp * S;
    const int64_t slen = std::min(S, p.l - s0);
    transpose<float>(Bg + (bb * p.g + gg) * n * ls + s0, ls, n, slen, BC.get(), 2 * n);
    transpose<float>(Cg + (bb * p.g + gg) * n * ls + s0, ls, n, slen, BC.get() + n, 2 * n);
    std::memset(dBs.get(), 0, sizeof(float) * slen * n);
    std::memset(dCs.get(), 0, sizeof(float) * slen * n);
    for (int64_t kb = k0; kb < k1; ++kb) {
      const int64_t c0 = gg * p.dg() + kb * W;
      const int64_t cnt = std::min<int64_t>(W, p.dg() - kb * W);
      const float* __restrict Ak = Ab.get() + (kb - k0) * n * W;
      const float* __restrict A2k = A2b.get() + (kb - k0) * n * W;
      const __m256 Dv = _mm256_load_ps(Db.get() + (kb - k0) * W);
      float* __restrict gc = carry.get() + (kb - k0) * n * W;
      alignas(32) float dAk[n * W];
#pragma GCC unroll 32
      for (int i = 0; i < n; ++i) _mm256_store_ps(dAk + i * W, _mm256_setzero_ps());
      __m256 sdb = _mm256_setzero_ps(), sdd = _mm256_setzero_ps();
      const int64_t jlo = s0 / K, jhi = (s0 + slen - 1) / K;
      for (int64_t j = jhi; j >= jlo; --j) {
        const int64_t t0 = j * K;
        const int64_t len = std::min(K, p.l - t0);
        const int64_t row0 = (bb * p.d + c0) * p.l + t0;
        const float* __restrict bc = BC.get() + (t0 - s0) * 2 * n;
        float* __restrict dBt0 = dBs.get() + (t0 - s0) * n;
        float* __restrict dCt0 = dCs.get() + (t0 - s0) * n;
        // the chunk this task runs next: the block's previous one in the span, else the next
        // block's last, else block k0's last in the previous span
        int64_t nrow0 = -1, ncnt = cnt, nlen = K;
        if (j > jlo) {
          nrow0 = row0 - K;
        } else if (kb + 1 < k1) {
          nrow0 = (bb * p.d + c0 + W) * p.l + jhi * K;
          ncnt = std::min<int64_t>(W, p.dg() - (kb + 1) * W);
          nlen = std::min(K, p.l - jhi * K);
        } else if (sp > 0) {
          const int64_t pj = (s0 - 1) / K;
          nrow0 = (bb * p.d + gg * p.dg() + k0 * W) * p.l + pj * K;
          ncnt = std::min<int64_t>(W, p.dg() - k0 * W);
          nlen = std::min(K, p.l - pj * K);
        }
        prepare_chunk8(p, row0, cnt, len, nrow0, ncnt, nlen, delta, u, dy, biasb.get() + (kb - k0) * W, dtb.get(),
                       dtub.get(), ub.get(), dspb.get(), dyb.get(), du, ddelta);
        // recompute the chunk: hb[t + 1] = h_{t0+t} (hb[0] = checkpoint), ab[t] = exp(dt_{t0+t} A)
        float* __restrict hb = hbuf.get();
        float* __restrict ab = abuf.get();
        {
          const float* ck = ckpt + ((((bb * p.g + gg) * nb + kb) * p.nchunk) + j) * n * W;
          __m256 h[n];
#pragma GCC unroll 32
          for (int i = 0; i < n; ++i) {
            h[i] = _mm256_loadu_ps(ck + i * W);
            _mm256_store_ps(hb + i * W, h[i]);
          }
          decays_chunk8<n>(dtb.get(), A2k, len, ab);
          for (int64_t t = 0; t < len; ++t) {
            const __m256 dtu = _mm256_load_ps(dtub.get() + t * W);
            const float* __restrict bct = bc + t * 2 * n;
#pragma GCC unroll 32
            for (int i = 0; i < n; ++i) {
              const __m256 a = _mm256_load_ps(ab + (t * n + i) * W);
              h[i] = _mm256_fmadd_ps(a, h[i], _mm256_mul_ps(_mm256_broadcast_ss(bct + i), dtu));
              _mm256_store_ps(hb + ((t + 1) * n + i) * W, h[i]);
            }
          }
        }
        // adjoint recurrence, backwards through the chunk; g[i] = a_{t+1} dL/dh_{t+1}
        __m256 g[n];
#pragma GCC unroll 32
        for (int i = 0; i < n; ++i) g[i] = _mm256_load_ps(gc + i * W);
        for (int64_t t = len - 1; t >= 0; --t) {
          const __m256 dt = _mm256_load_ps(dtb.get() + t * W), dtu = _mm256_load_ps(dtub.get() + t * W);
          const __m256 dyt = _mm256_load_ps(dyb.get() + t * W);
          const float* __restrict bct = bc + t * 2 * n;
          __m256 sA = _mm256_setzero_ps(), sB = _mm256_setzero_ps(), sA1 = _mm256_setzero_ps(),
                 sB1 = _mm256_setzero_ps();
          __m256 vB[n], vC[n];  // per-lane dB, dC of this step
#pragma GCC unroll 32
          for (int i = 0; i < n; ++i) {
            const __m256 hp = _mm256_load_ps(hb + (t * n + i) * W);
            const __m256 a = _mm256_load_ps(ab + (t * n + i) * W);
            const __m256 gv = _mm256_fmadd_ps(dyt, _mm256_broadcast_ss(bct + n + i), g[i]);  // dL/dh_t
            vC[i] = _mm256_mul_ps(dyt, _mm256_load_ps(hb + ((t + 1) * n + i) * W));
            vB[i] = _mm256_mul_ps(gv, dtu);
            const __m256 ga = _mm256_mul_ps(gv, a);
            const __m256 w = _mm256_mul_ps(ga, hp);  // through a_t = exp(dt A)
            if (i & 1) {
              sA1 = _mm256_fmadd_ps(w, _mm256_load_ps(Ak + i * W), sA1);
              sB1 = _mm256_fmadd_ps(gv, _mm256_broadcast_ss(bct + i), sB1);
            } else {
              sA = _mm256_fmadd_ps(w, _mm256_load_ps(Ak + i * W), sA);
              sB = _mm256_fmadd_ps(gv, _mm256_broadcast_ss(bct + i), sB);
            }
            _mm256_store_ps(dAk + i * W, _mm256_fmadd_ps(w, dt, _mm256_load_ps(dAk + i * W)));
            g[i] = ga;
          }
          sA = _mm256_add_ps(sA, sA1);
          sB = _mm256_add_ps(sB, sB1);
          add_lane_sums<n>(vB, dBt0 + t * n);
          add_lane_sums<n>(vC, dCt0 + t * n);
          const __m256 ut = _mm256_load_ps(ub.get() + t * W);
          _mm256_store_ps(dub.get() + t * W, _mm256_fmadd_ps(sB, dt, _mm256_mul_ps(Dv, dyt)));
          const __m256 dx = _mm256_mul_ps(_mm256_fmadd_ps(sB, ut, sA), _mm256_load_ps(dspb.get() + t * W));
          _mm256_store_ps(ddb.get() + t * W, dx);
          sdb = _mm256_add_ps(sdb, dx);
          sdd = _mm256_fmadd_ps(dyt, ut, sdd);
        }
#pragma GCC unroll 32
        for (int i = 0; i < n; ++i) _mm256_store_ps(gc + i * W, g[i]);
        unprepare8(p, dub.get(), len, cnt, du + row0);
        unprepare8(p, ddb.get(), len, cnt, ddelta + row0);
      }
      double* __restrict dAa = dA_acc.get() + (kb - k0) * n * W;
      for (int64_t i = 0; i < n * W; ++i) dAa[i] += static_cast<double>(dAk[i]);
      double* __restrict dDa = dD_acc.get() + (kb - k0) * W;
      double* __restrict dba = dbias_acc.get() + (kb - k0) * W;
      alignas(32) float tb[W], td[W];
      _mm256_store_ps(tb, sdb);
      _mm256_store_ps(td, sdd);
      for (int k = 0; k < W; ++k) {
        dba[k] += static_cast<double>(tb[k]);
        dDa[k] += static_cast<double>(td[k]);
      }
    }
    // the span's dB, dC -> this task's slot (each element written once: no zero-fill needed)
    transpose<float>(dBs.get(), n, slen, n, dB + gbase + s0, ls);
    transpose<float>(dCs.get(), n, slen, n, dC + gbase + s0, ls);
  }
  store_block_grads<float>(p, bb, gg, k0, k1, n, dA_acc.get(), dD_acc.get(), dbias_acc.get(), dA_part, dD_part,
                        dbias_part);
}
#endif  // MASKVIM_AVX2

// NT > 0: n known at compile time (the loops over states unroll); NT == 0: any n.
template <typename T, int NT>
void forward_task(const Problem& p, int64_t task, const T* u, const T* delta, const T* A, const T* Bg, const T* Cg,
                  const T* D, const T* bias, T* y, T* ckpt) {
#ifdef MASKVIM_AVX2
  if constexpr (std::is_same<T, float>::value && NT > 0) {
    forward_task_avx<NT>(p, task, u, delta, A, Bg, Cg, D, bias, y, ckpt);
    return;
  }
#endif
  constexpr int W = lanes<T>();
  const int64_t n = NT > 0 ? NT : p.n;
  const int64_t ls = p.l;  // stride between the n rows of B, C
  int64_t bb, gg, k0, k1;
  task_range<T>(p, task, bb, gg, k0, k1);
  if (k1 <= k0) return;
  FlushDenormals ftz(sizeof(T) == 4);
  const int64_t nbt = k1 - k0, nb = blocks_per_group<T>(p), K = p.K;
  Scratch<T> state(nbt * n * W), Ab(nbt * n * W), Db(nbt * W), biasb(nbt * W);
  Scratch<T> rows(5 * W * K), dtb(K * W), dtub(K * W), ub(K * W), yb(K * W), Bloc(K * n), Cloc(K * n);
  load_task_params<T>(p, gg, k0, k1, A, D, bias, Ab.get(), Db.get(), biasb.get());
#ifdef MASKVIM_AVX2
  Scratch<T> A2b(nbt * n * W);  // A log2(e), for exp2_8
  for (int64_t i = 0; i < nbt * n * W; ++i) A2b.get()[i] = Ab.get()[i] * T(1.44269504088896341);
#endif
  for (int64_t j = 0; j < p.nchunk; ++j) {
    const int64_t t0 = j * K;
    const int64_t len = std::min(K, p.l - t0);
    // this chunk of the group's B and C, step-major: Bj[t * n + i] = B[b, g, i, t0 + t]
    const T* __restrict Bj = Bloc.get();
    const T* __restrict Cj = Cloc.get();
    transpose<T>(Bg + (bb * p.g + gg) * n * ls + t0, ls, n, len, Bloc.get(), n);
    transpose<T>(Cg + (bb * p.g + gg) * n * ls + t0, ls, n, len, Cloc.get(), n);
    for (int64_t kb = k0; kb < k1; ++kb) {
      const int64_t c0 = gg * p.dg() + kb * W;
      const int64_t cnt = std::min<int64_t>(W, p.dg() - kb * W);
      const int64_t row0 = (bb * p.d + c0) * p.l + t0;
      T* __restrict h = state.get() + (kb - k0) * n * W;
      const T* __restrict Ak = Ab.get() + (kb - k0) * n * W;
#ifdef MASKVIM_AVX2
      const T* __restrict A2k = A2b.get() + (kb - k0) * n * W;
#endif
      const T* __restrict Dk = Db.get() + (kb - k0) * W;
      prepare_chunk<T>(p, row0, cnt, len, j + 1 < p.nchunk ? K : 0, delta, u, nullptr, biasb.get() + (kb - k0) * W,
                       rows.get(), dtb.get(), dtub.get(), ub.get(), nullptr, nullptr);
      if (ckpt) std::memcpy(ckpt + ((((bb * p.g + gg) * nb + kb) * p.nchunk) + j) * n * W, h, sizeof(T) * n * W);
#ifdef MASKVIM_AVX2
      if constexpr (sizeof(T) == 4) {
        for (int64_t t = 0; t < len; ++t) {
          const __m256 dt = _mm256_load_ps(dtb.get() + t * W), dtu = _mm256_load_ps(dtub.get() + t * W);
          const float* __restrict Bs = Bj + t * n;
          const float* __restrict Cs = Cj + t * n;
          __m256 acc = _mm256_mul_ps(_mm256_load_ps(Dk), _mm256_load_ps(ub.get() + t * W));
          for (int64_t i = 0; i < n; ++i) {
            const __m256 a = exp2_8(_mm256_mul_ps(dt, _mm256_load_ps(A2k + i * W)));
            const __m256 hv = _mm256_fmadd_ps(a, _mm256_load_ps(h + i * W), _mm256_mul_ps(_mm256_set1_ps(Bs[i]), dtu));
            _mm256_store_ps(h + i * W, hv);
            acc = _mm256_fmadd_ps(_mm256_set1_ps(Cs[i]), hv, acc);
          }
          _mm256_store_ps(yb.get() + t * W, acc);
        }
      } else
#endif
      for (int64_t t = 0; t < len; ++t) {
        const T* __restrict dt = dtb.get() + t * W;
        const T* __restrict dtu = dtub.get() + t * W;
        const T* __restrict Bs = Bj + t * n;
        const T* __restrict Cs = Cj + t * n;
        alignas(64) T acc[W];
        const T* __restrict ut = ub.get() + t * W;
#pragma omp simd
        for (int k = 0; k < W; ++k) acc[k] = Dk[k] * ut[k];
        for (int64_t i = 0; i < n; ++i) {
          const T bi = Bs[i], ci = Cs[i];
          T* __restrict hi = h + i * W;
          const T* __restrict ai = Ak + i * W;
#pragma omp simd
          for (int k = 0; k < W; ++k) {
            const T hv = exp_(dt[k] * ai[k]) * hi[k] + bi * dtu[k];
            hi[k] = hv;
            acc[k] += ci * hv;
          }
        }
        T* __restrict yt = yb.get() + t * W;
#pragma omp simd
        for (int k = 0; k < W; ++k) yt[k] = acc[k];
      }
      transpose<T>(yb.get(), W, len, cnt, y + row0, p.l);
    }
  }
}

template <typename T, int NT>
void backward_task(const Problem& p, int64_t task, const T* u, const T* delta, const T* A, const T* Bg, const T* Cg,
                   const T* D, const T* bias, const T* ckpt, const T* dy, T* du, T* ddelta, T* dA_part, T* dB,
                   T* dC, T* dD_part, T* dbias_part) {
#ifdef MASKVIM_AVX2
  if constexpr (std::is_same<T, float>::value && NT > 0) {
    backward_task_avx<NT>(p, task, u, delta, A, Bg, Cg, D, bias, ckpt, dy, du, ddelta, dA_part, dB, dC, dD_part,
                          dbias_part);
    return;
  }
#endif
  constexpr int W = lanes<T>();
  const int64_t n = NT > 0 ? NT : p.n;
  const int64_t ls = p.l;  // stride between the n rows of B, C
  int64_t bb, gg, k0, k1;
  task_range<T>(p, task, bb, gg, k0, k1);
  if (k1 <= k0) return;
  FlushDenormals ftz(sizeof(T) == 4);
  const int64_t nbt = k1 - k0, nb = blocks_per_group<T>(p), K = p.K;
  const int64_t slot = task % p.splits;
  Scratch<T> Ab(nbt * n * W), Db(nbt * W), biasb(nbt * W);
  Scratch<T> carry(nbt * n * W);                       // a_{t+1} * dL/dh_{t+1}, per block
  Scratch<double> dA_acc(nbt * n * W), dD_acc(nbt * W), dbias_acc(nbt * W);
  Scratch<T> hbuf((K + 1) * n * W), abuf(K * n * W);   // one chunk's states h_{t0-1..} and decays
  Scratch<T> dBv(K * n * W), dCv(K * n * W);           // per-lane dB, dC of the chunk
  Scratch<T> rows(5 * W * K), dtb(K * W), dtub(K * W), ub(K * W), dspb(K * W), dyb(K * W), dub(K * W), ddb(K * W);
  Scratch<T> dAl(n * W), Bloc(K * n), Cloc(K * n), dBloc(K * n), dCloc(K * n);
  load_task_params<T>(p, gg, k0, k1, A, D, bias, Ab.get(), Db.get(), biasb.get());
#ifdef MASKVIM_AVX2
  Scratch<T> A2b(nbt * n * W);  // A log2(e), for exp2_8
  for (int64_t i = 0; i < nbt * n * W; ++i) A2b.get()[i] = Ab.get()[i] * T(1.44269504088896341);
#endif
  const int64_t gbase = ((slot * p.b + bb) * p.g + gg) * n * ls;  // this task's dB, dC rows
  for (int64_t j = p.nchunk - 1; j >= 0; --j) {
    const int64_t t0 = j * K;
    const int64_t len = std::min(K, p.l - t0);
    // this chunk of the group's B and C, step-major: Bj[t * n + i] = B[b, g, i, t0 + t]
    const T* __restrict Bj = Bloc.get();
    const T* __restrict Cj = Cloc.get();
    transpose<T>(Bg + (bb * p.g + gg) * n * ls + t0, ls, n, len, Bloc.get(), n);
    transpose<T>(Cg + (bb * p.g + gg) * n * ls + t0, ls, n, len, Cloc.get(), n);
    std::memset(dBv.get(), 0, sizeof(T) * len * n * W);
    std::memset(dCv.get(), 0, sizeof(T) * len * n * W);
    for (int64_t kb = k0; kb < k1; ++kb) {
      const int64_t c0 = gg * p.dg() + kb * W;
      const int64_t cnt = std::min<int64_t>(W, p.dg() - kb * W);
      const int64_t row0 = (bb * p.d + c0) * p.l + t0;
      const T* __restrict Ak = Ab.get() + (kb - k0) * n * W;
#ifdef MASKVIM_AVX2
      const T* __restrict A2k = A2b.get() + (kb - k0) * n * W;
#endif
      const T* __restrict Dk = Db.get() + (kb - k0) * W;
      prepare_chunk<T>(p, row0, cnt, len, j > 0 ? -K : 0, delta, u, dy, biasb.get() + (kb - k0) * W, rows.get(),
                       dtb.get(), dtub.get(), ub.get(), dspb.get(), dyb.get());
      // recompute the chunk: hbuf[t] = h_{t0+t-1} (hbuf[0] = checkpoint), abuf[t] = exp(dt_{t0+t} A)
      T* __restrict hb = hbuf.get();
      T* __restrict ab = abuf.get();
      std::memcpy(hb, ckpt + ((((bb * p.g + gg) * nb + kb) * p.nchunk) + j) * n * W, sizeof(T) * n * W);
#ifdef MASKVIM_AVX2
      if constexpr (sizeof(T) == 4) {
        for (int64_t t = 0; t < len; ++t) {
          const __m256 dt = _mm256_load_ps(dtb.get() + t * W), dtu = _mm256_load_ps(dtub.get() + t * W);
          const float* __restrict Bs = Bj + t * n;
          for (int64_t i = 0; i < n; ++i) {
            const __m256 a = exp2_8(_mm256_mul_ps(dt, _mm256_load_ps(A2k + i * W)));
            _mm256_store_ps(ab + (t * n + i) * W, a);
            _mm256_store_ps(hb + ((t + 1) * n + i) * W,
                            _mm256_fmadd_ps(a, _mm256_load_ps(hb + (t * n + i) * W),
                                            _mm256_mul_ps(_mm256_set1_ps(Bs[i]), dtu)));
          }
        }
      } else
#endif
      for (int64_t t = 0; t < len; ++t) {
        const T* __restrict dt = dtb.get() + t * W;
        const T* __restrict dtu = dtub.get() + t * W;
        const T* __restrict Bs = Bj + t * n;
        for (int64_t i = 0; i < n; ++i) {
          const T bi = Bs[i];
          const T* __restrict ai = Ak + i * W;
          const T* __restrict hp = hb + (t * n + i) * W;
          T* __restrict hn = hb + ((t + 1) * n + i) * W;
          T* __restrict as = ab + (t * n + i) * W;
#pragma omp simd
          for (int k = 0; k < W; ++k) {
            const T a = exp_(dt[k] * ai[k]);
            as[k] = a;
            hn[k] = a * hp[k] + bi * dtu[k];
          }
        }
      }
      // adjoint recurrence, backwards through the chunk
      T* __restrict gc = carry.get() + (kb - k0) * n * W;
      T* __restrict dAk = dAl.get();
      std::memset(dAk, 0, sizeof(T) * n * W);
      for (int64_t t = len - 1; t >= 0; --t) {
        const T* __restrict dt = dtb.get() + t * W;
        const T* __restrict dtu = dtub.get() + t * W;
        const T* __restrict dyt = dyb.get() + t * W;
        const T* __restrict Bs = Bj + t * n;
        const T* __restrict Cs = Cj + t * n;
        alignas(64) T sA[W], sB[W];
#pragma omp simd
        for (int k = 0; k < W; ++k) sA[k] = sB[k] = T(0);
        for (int64_t i = 0; i < n; ++i) {
          const T bi = Bs[i], ci = Cs[i];
          const T* __restrict ai = Ak + i * W;
          const T* __restrict hp = hb + (t * n + i) * W;
          const T* __restrict hc = hb + ((t + 1) * n + i) * W;
          const T* __restrict as = ab + (t * n + i) * W;
          T* __restrict gi = gc + i * W;
          T* __restrict dAi = dAk + i * W;
          T* __restrict dCi = dCv.get() + (t * n + i) * W;
          T* __restrict dBi = dBv.get() + (t * n + i) * W;
#pragma omp simd
          for (int k = 0; k < W; ++k) {
            const T gv = gi[k] + dyt[k] * ci;  // dL/dh_t
            dCi[k] += dyt[k] * hc[k];
            dBi[k] += gv * dtu[k];
            const T w = gv * hp[k] * as[k];  // through a_t = exp(dt A)
            sA[k] += w * ai[k];
            dAi[k] += w * dt[k];
            sB[k] += gv * bi;
            gi[k] = gv * as[k];
          }
        }
        const T* __restrict ut = ub.get() + t * W;
        const T* __restrict dsp = dspb.get() + t * W;
        T* __restrict dut = dub.get() + t * W;
        T* __restrict ddt = ddb.get() + t * W;
#pragma omp simd
        for (int k = 0; k < W; ++k) {
          dut[k] = sB[k] * dt[k] + Dk[k] * dyt[k];
          ddt[k] = (sA[k] + sB[k] * ut[k]) * dsp[k];
        }
      }
      double* __restrict dAa = dA_acc.get() + (kb - k0) * n * W;
      for (int64_t i = 0; i < n * W; ++i) dAa[i] += static_cast<double>(dAk[i]);
      double* __restrict dDa = dD_acc.get() + (kb - k0) * W;
      double* __restrict dba = dbias_acc.get() + (kb - k0) * W;
      transpose<T>(dub.get(), W, len, cnt, du + row0, p.l);
      transpose<T>(ddb.get(), W, len, cnt, ddelta + row0, p.l);
      for (int64_t t = 0; t < len; ++t) {
        const T* __restrict dx = ddb.get() + t * W;
        const T* __restrict dyt = dyb.get() + t * W;
        const T* __restrict ut = ub.get() + t * W;
#pragma omp simd
        for (int k = 0; k < W; ++k) {
          dba[k] += static_cast<double>(dx[k]);
          dDa[k] += static_cast<double>(dyt[k]) * static_cast<double>(ut[k]);
        }
      }
    }
    // lanes -> the group's dB, dC rows of this chunk (this task's slot)
    for (int64_t ti = 0; ti < len * n; ++ti) {
      const T* __restrict vb = dBv.get() + ti * W;
      const T* __restrict vc = dCv.get() + ti * W;
      T sb = T(0), sc = T(0);
      for (int k = 0; k < W; ++k) {
        sb += vb[k];
        sc += vc[k];
      }
      dBloc.get()[ti] = sb;
      dCloc.get()[ti] = sc;
    }
    // each element of the task's slot is written once: no zero-fill needed
    transpose<T>(dBloc.get(), n, len, n, dB + gbase + t0, ls);
    transpose<T>(dCloc.get(), n, len, n, dC + gbase + t0, ls);
  }
  store_block_grads<T>(p, bb, gg, k0, k1, n, dA_acc.get(), dD_acc.get(), dbias_acc.get(), dA_part, dD_part,
                        dbias_part);
}

// Runs f(task) for every task; an exception in a task (out of memory) is reported after the loop.
template <typename F>
bool run_tasks(int64_t ntasks, int nthreads, F&& f) {
  int failed = 0;
  if (nthreads <= 1 || ntasks <= 1) {
    try {
      for (int64_t t = 0; t < ntasks; ++t) f(t);
    } catch (...) {
      failed = 1;
    }
    return !failed;
  }
#pragma omp parallel for schedule(dynamic, 1) num_threads(nthreads)
  for (int64_t t = 0; t < ntasks; ++t) {
    try {
      f(t);
    } catch (...) {
#pragma omp atomic write
      failed = 1;
    }
  }
  return !failed;
}

template <typename T>
bool forward_dispatch(const Problem& p, int nthreads, const T* u, const T* delta, const T* A, const T* Bg,
                      const T* Cg, const T* D, const T* bias, T* y, T* ckpt) {
  const int64_t ntasks = p.b * p.g * p.splits;
#define MASKVIM_FWD(NT) \
  return run_tasks(ntasks, nthreads, [&](int64_t t) { forward_task<T, NT>(p, t, u, delta, A, Bg, Cg, D, bias, y, ckpt); })
  switch (p.n) {
    case 4: MASKVIM_FWD(4);
    case 8: MASKVIM_FWD(8);
    case 16: MASKVIM_FWD(16);
    case 32: MASKVIM_FWD(32);
    default: MASKVIM_FWD(0);
  }
#undef MASKVIM_FWD
}

template <typename T>
bool backward_dispatch(const Problem& p, int nthreads, const T* u, const T* delta, const T* A, const T* Bg,
                       const T* Cg, const T* D, const T* bias, const T* ckpt, const T* dy, T* du, T* ddelta,
                       T* dA_part, T* dB, T* dC, T* dD_part, T* dbias_part) {
  const int64_t ntasks = p.b * p.g * p.splits;
#define MASKVIM_BWD(NT)                                                                                      \
  return run_tasks(ntasks, nthreads, [&](int64_t t) {                                                         \
    backward_task<T, NT>(p, t, u, delta, A, Bg, Cg, D, bias, ckpt, dy, du, ddelta, dA_part, dB, dC, dD_part, \
                         dbias_part);                                                                         \
  })
  switch (p.n) {
    case 4: MASKVIM_BWD(4);
    case 8: MASKVIM_BWD(8);
    case 16: MASKVIM_BWD(16);
    case 32: MASKVIM_BWD(32);
    default: MASKVIM_BWD(0);
  }
#undef MASKVIM_BWD
}

#ifndef MASKVIM_NO_PYTHON
template <typename T>
inline T* P(unsigned long long v) {
  return reinterpret_cast<T*>(static_cast<uintptr_t>(v));
}

bool make_problem(Problem& p, long long b, long long d, long long l, long long g, long long n, long long K,
                  long long splits, int softplus) {
  p = Problem{b, d, l, g, n, K, K > 0 ? (l + K - 1) / K : 0, splits, softplus != 0};
  if (b < 1 || d < 1 || l < 1 || g < 1 || n < 1 || K < 1 || splits < 1 || d % g != 0) {
    PyErr_SetString(PyExc_ValueError, "selective_scan_cpu: inconsistent sizes");
    return false;
  }
  return true;
}

// lanes(is_double) -> W; ckpt_numel(b, d, l, g, n, K, is_double) -> checkpoint buffer size.
PyObject* py_lanes(PyObject*, PyObject* args) {
  int is_double;
  if (!PyArg_ParseTuple(args, "p", &is_double)) return nullptr;
  return PyLong_FromLong(is_double ? lanes<double>() : lanes<float>());
}

PyObject* py_ckpt_numel(PyObject*, PyObject* args) {
  long long b, d, l, g, n, K;
  int is_double;
  if (!PyArg_ParseTuple(args, "LLLLLLp", &b, &d, &l, &g, &n, &K, &is_double)) return nullptr;
  Problem p;
  if (!make_problem(p, b, d, l, g, n, K, 1, 0)) return nullptr;
  return PyLong_FromLongLong(is_double ? ckpt_numel<double>(p) : ckpt_numel<float>(p));
}

// fwd(u, delta, A, B, C, D, bias, y, ckpt, b, d, l, g, n, K, splits, softplus, is_double, nthreads)
// pointers are integers; 0 means absent (D, bias; ckpt when no backward will follow).
PyObject* py_fwd(PyObject*, PyObject* args) {
  unsigned long long pu, pdelta, pA, pB, pC, pD, pbias, py, pck;
  long long b, d, l, g, n, K, splits;
  int softplus, is_double, nthreads;
  if (!PyArg_ParseTuple(args, "KKKKKKKKKLLLLLLLppi", &pu, &pdelta, &pA, &pB, &pC, &pD, &pbias, &py, &pck, &b, &d,
                        &l, &g, &n, &K, &splits, &softplus, &is_double, &nthreads))
    return nullptr;
  Problem p;
  if (!make_problem(p, b, d, l, g, n, K, splits, softplus)) return nullptr;
  bool ok;
  Py_BEGIN_ALLOW_THREADS
  if (is_double)
    ok = forward_dispatch<double>(p, nthreads, P<double>(pu), P<double>(pdelta), P<double>(pA), P<double>(pB),
                                  P<double>(pC), P<double>(pD), P<double>(pbias), P<double>(py), P<double>(pck));
  else
    ok = forward_dispatch<float>(p, nthreads, P<float>(pu), P<float>(pdelta), P<float>(pA), P<float>(pB),
                                 P<float>(pC), P<float>(pD), P<float>(pbias), P<float>(py), P<float>(pck));
  Py_END_ALLOW_THREADS
  if (!ok) return PyErr_NoMemory();
  Py_RETURN_NONE;
}

// bwd(u, delta, A, B, C, D, bias, ckpt, dy, du, ddelta, dA_part, dB, dC, dD_part, dbias_part,
//     b, d, l, g, n, K, splits, softplus, is_double, nthreads)
// dB, dC: (splits, b, g, n, l), one slot per channel split; every element is written.
PyObject* py_bwd(PyObject*, PyObject* args) {
  unsigned long long pu, pdelta, pA, pB, pC, pD, pbias, pck, pdy, pdu, pddelta, pdA, pdB, pdC, pdD, pdbias;
  long long b, d, l, g, n, K, splits;
  int softplus, is_double, nthreads;
  if (!PyArg_ParseTuple(args, "KKKKKKKKKKKKKKKKLLLLLLLppi", &pu, &pdelta, &pA, &pB, &pC, &pD, &pbias, &pck, &pdy,
                        &pdu, &pddelta, &pdA, &pdB, &pdC, &pdD, &pdbias, &b, &d, &l, &g, &n, &K, &splits, &softplus,
                        &is_double, &nthreads))
    return nullptr;
  Problem p;
  if (!make_problem(p, b, d, l, g, n, K, splits, softplus)) return nullptr;
  if (!pck || !pdy || !pdu || !pddelta || !pdA || !pdB || !pdC || !pdD || !pdbias) {
    PyErr_SetString(PyExc_ValueError, "selective_scan_cpu.bwd: checkpoints and gradient buffers are required");
    return nullptr;
  }
  bool ok;
  Py_BEGIN_ALLOW_THREADS
  if (is_double)
    ok = backward_dispatch<double>(p, nthreads, P<double>(pu), P<double>(pdelta), P<double>(pA), P<double>(pB),
                                   P<double>(pC), P<double>(pD), P<double>(pbias), P<double>(pck), P<double>(pdy),
                                   P<double>(pdu), P<double>(pddelta), P<double>(pdA), P<double>(pdB),
                                   P<double>(pdC), P<double>(pdD), P<double>(pdbias));
  else
    ok = backward_dispatch<float>(p, nthreads, P<float>(pu), P<float>(pdelta), P<float>(pA), P<float>(pB),
                                  P<float>(pC), P<float>(pD), P<float>(pbias), P<float>(pck), P<float>(pdy),
                                  P<float>(pdu), P<float>(pddelta), P<float>(pdA), P<float>(pdB), P<float>(pdC),
                                  P<float>(pdD), P<float>(pdbias));
  Py_END_ALLOW_THREADS
  if (!ok) return PyErr_NoMemory();
  Py_RETURN_NONE;
}

PyMethodDef methods[] = {
    {"lanes", py_lanes, METH_VARARGS, "channels per vector block"},
    {"ckpt_numel", py_ckpt_numel, METH_VARARGS, "size of the checkpoint buffer"},
    {"fwd", py_fwd, METH_VARARGS, "selective scan forward (see selective_scan_cpu.cpp)"},
    {"bwd", py_bwd, METH_VARARGS, "selective scan backward (see selective_scan_cpu.cpp)"},
    {nullptr, nullptr, 0, nullptr}};

PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "selective_scan_cpu", nullptr, -1, methods,
                          nullptr, nullptr, nullptr, nullptr};

#endif  // MASKVIM_NO_PYTHON
}  // namespace

#ifndef MASKVIM_NO_PYTHON
#ifndef TORCH_EXTENSION_NAME
#define TORCH_EXTENSION_NAME selective_scan_cpu
#endif
#define MASKVIM_CAT_(a, b) a##b
#define MASKVIM_CAT(a, b) MASKVIM_CAT_(a, b)

PyMODINIT_FUNC MASKVIM_CAT(PyInit_, TORCH_EXTENSION_NAME)(void) { return PyModule_Create(&module_def); }
#endif  // MASKVIM_NO_PYTHON
