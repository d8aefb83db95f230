// Standalone timing of the CPU selective-scan kernel, without Python or torch: the numbers behind the
// README's "why it stops there" (per-step cost from DRAM and from cache, stage costs of timing-only
// variants of selective_scan_cpu.cpp). Build it with the flags maskvim/scan/cpu.py uses:
//
//   g++ -std=c++17 -O3 -fopenmp -ffp-contract=fast -fno-math-errno -fno-trapping-math -mavx2 -mfma -mf16c
//       maskvim/scan/csrc/bench_kernel.cpp -o /tmp/bench_kernel        (one line; drop -m* off x86)
//   /tmp/bench_kernel [reps=8] [threads=1] [b,d,l ...]
//
// Default shapes: the eight scan calls of one MaskViM `micro` training step at batch 4, 128x256
// (encoder stages 1-4, then Mask_D), d_state 8, 4 directions. Each shape gets its own pre-faulted
// buffers (about 400 MB in all, so the inputs stream from DRAM); pass one small shape, e.g. 1,32,1024,
// repeated to time the same work from cache. Prints the best-of-reps forward and backward times, ns
// per 8-channel step, and a checksum of every output (a variant that drops work shows up in it).
#define MASKVIM_NO_PYTHON 1
#include "selective_scan_cpu.cpp"

#include <chrono>
#include <cstdio>
#include <random>
#include <vector>

namespace {

struct Shape {
  int64_t b, d, l;
};

struct Buffers {
  Problem p;
  std::vector<float> u, delta, A, B, C, D, bias, y, ckpt, dy, du, ddelta, dA, dB, dC, dD, dbias;
};

Buffers make_buffers(const Shape& s, int64_t g, int64_t n, int64_t K, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
  Buffers x;
  x.p = Problem{s.b, s.d, s.l, g, n, K, (s.l + K - 1) / K, 1, true};
  const int64_t bdl = s.b * s.d * s.l, bgnl = s.b * g * n * s.l;
  auto fill = [&](std::vector<float>& v, int64_t count, float scale, float shift) {
    v.resize(count);
    for (auto& e : v) e = normal(rng) * scale + shift;
  };
  // the distributions of maskvim.scan's tests: dt = softplus(delta + bias) mostly in (0.1, 0.6)
  fill(x.u, bdl, 1, 0);
  fill(x.delta, bdl, 0.5f, -1);
  fill(x.B, bgnl, 1, 0);
  fill(x.C, bgnl, 1, 0);
  fill(x.dy, bdl, 1, 0);
  fill(x.D, s.d, 1, 0);
  fill(x.bias, s.d, 0.1f, 0);
  x.A.resize(s.d * n);
  for (auto& e : x.A) e = -uniform(rng) * 4 - 0.5f;
  x.y.assign(bdl, 0);
  x.ckpt.assign(ckpt_numel<float>(x.p), 0);
  x.du.assign(bdl, 0);
  x.ddelta.assign(bdl, 0);
  x.dA.assign(s.b * s.d * n, 0);
  x.dB.assign(bgnl, 0);
  x.dC.assign(bgnl, 0);
  x.dD.assign(s.b * s.d, 0);
  x.dbias.assign(s.b * s.d, 0);
  return x;
}

double sum(const std::vector<float>& v) {
  double s = 0;
  for (float e : v) s += e;
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  const int reps = argc > 1 ? std::atoi(argv[1]) : 8;
  const int threads = argc > 2 ? std::atoi(argv[2]) : 1;
  std::vector<Shape> shapes;
  for (int i = 3; i < argc; ++i) {
    Shape s{};
    if (std::sscanf(argv[i], "%ld,%ld,%ld", &s.b, &s.d, &s.l) != 3 || s.b < 1 || s.d < 4 || s.d % 4 || s.l < 1) {
      std::fprintf(stderr, "bad shape %s: want b,d,l with d a multiple of 4 (the directions)\n", argv[i]);
      return 2;
    }
    shapes.push_back(s);
  }
  if (shapes.empty())
    shapes = {{4, 256, 2048}, {4, 512, 512}, {4, 1024, 128}, {4, 1024, 128},
              {4, 2048, 32},  {4, 512, 2048}, {4, 512, 512}, {4, 512, 128}};
  if (reps < 1 || threads < 1) {
    std::fprintf(stderr, "usage: %s [reps>=1] [threads>=1] [b,d,l ...]\n", argv[0]);
    return 2;
  }
  const int64_t g = 4, n = 8, K = 64;  // micro: 4 directions, d_state 8; K = max(64, 4n) as in cpu.py
  std::mt19937 rng(0);
  std::vector<Buffers> bufs;
  int64_t vector_steps = 0;  // 8-channel steps of one pass over all shapes
  for (const Shape& s : shapes) {
    bufs.push_back(make_buffers(s, g, n, K, rng));
    vector_steps += s.b * g * ((s.d / g + 7) / 8) * s.l;
  }
  double best_fwd = 1e30, best_bwd = 1e30;
  for (int r = 0; r < reps; ++r) {
    double fwd = 0, bwd = 0;
    for (Buffers& x : bufs) {
      const auto t0 = std::chrono::steady_clock::now();
      bool ok = forward_dispatch<float>(x.p, threads, x.u.data(), x.delta.data(), x.A.data(), x.B.data(), x.C.data(),
                              x.D.data(), x.bias.data(), x.y.data(), x.ckpt.data());
      const auto t1 = std::chrono::steady_clock::now();
      ok = ok && backward_dispatch<float>(x.p, threads, x.u.data(), x.delta.data(), x.A.data(), x.B.data(), x.C.data(),
                               x.D.data(), x.bias.data(), x.ckpt.data(), x.dy.data(), x.du.data(),
                               x.ddelta.data(), x.dA.data(), x.dB.data(), x.dC.data(), x.dD.data(),
                               x.dbias.data());
      const auto t2 = std::chrono::steady_clock::now();
      if (!ok) {
        std::fprintf(stderr, "a kernel task failed (out of memory for its scratch buffers)\n");
        return 1;
      }
      fwd += std::chrono::duration<double>(t1 - t0).count();
      bwd += std::chrono::duration<double>(t2 - t1).count();
    }
    best_fwd = std::min(best_fwd, fwd);
    best_bwd = std::min(best_bwd, bwd);
  }
  double checksum = 0;
  for (const Buffers& x : bufs)
    checksum += sum(x.y) + sum(x.du) + sum(x.ddelta) + sum(x.dA) + sum(x.dB) + sum(x.dC) + sum(x.dD) + sum(x.dbias);
  std::printf("shapes %zu, %d thread(s), best of %d: forward %.2f ms (%.1f ns per 8-channel step), "
              "backward %.2f ms (%.1f ns), checksum %.6g\n",
              shapes.size(), threads, reps, best_fwd * 1e3, best_fwd * 1e9 / vector_steps, best_bwd * 1e3,
              best_bwd * 1e9 / vector_steps, checksum);
  return 0;
}
