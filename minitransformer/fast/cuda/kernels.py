"""The CUDA source of the fast layer's GPU kernels, compiled by CuPy on first use.

Attention (flash_attention_forward) runs one thread per query row, FLASH_QUERIES rows of one
head per block, with keys and values in shared-memory tiles and an online softmax.

Row kernels (softmax, log-softmax, layer norm) run one thread block per row of the last axis:
its threads stride over the row, and a tree reduction in shared memory combines their partial
max or sums (the block size is a power of two, ``ROW_THREADS``; the shared memory is one float
per thread). Elementwise kernels (GELU, Adam) are ``cupy.ElementwiseKernel``s: one thread per
element. The embedding's scatter-add is one thread per number of the rows, with ``atomicAdd``
(so a repeated id's rows add up in an unspecified order: equal to the reference to rounding).

NaN rules are the reference's: a row holding NaN or +inf, or only -inf, gives NaN everywhere
(``max_nan`` keeps a NaN instead of skipping it as fmaxf does).
"""

from __future__ import annotations

import functools

from ...backend import require_cupy

ROW_THREADS = 256  # threads per block of the row kernels: a power of two, at most 1024
FLASH_QUERIES = 64  # query rows per block of flash_attention_forward (= keys per shared-memory tile)
FLASH_MAX_D = 64  # the widest head the kernel keeps in registers

ROW_SOURCE = r"""
#define NEG_INF __int_as_float(0xff800000)  // -inf without <math.h>, which NVRTC does not include

__device__ float max_nan(float a, float b) {  // max that keeps NaN, unlike fmaxf
    return (a != a || b != b) ? __int_as_float(0x7fc00000) : fmaxf(a, b);
}

// the block's threads combine their values in partial[]: partial[0] = op over all of them
__device__ void block_reduce_max(float* partial) {
    for (int half = blockDim.x / 2; half > 0; half /= 2) {
        __syncthreads();
        if (threadIdx.x < half) partial[threadIdx.x] = max_nan(partial[threadIdx.x], partial[threadIdx.x + half]);
    }
    __syncthreads();
}

__device__ void block_reduce_sum(float* partial) {
    for (int half = blockDim.x / 2; half > 0; half /= 2) {
        __syncthreads();
        if (threadIdx.x < half) partial[threadIdx.x] += partial[threadIdx.x + half];
    }
    __syncthreads();
}

// y = softmax(x) or log_softmax(x) over each row of n_cols; one block per row
extern "C" __global__ void softmax_rows(const float* x, float* y, const int n_cols, const int log_output) {
    extern __shared__ float partial[];
    const float* row = x + (long long)blockIdx.x * n_cols;
    float* out = y + (long long)blockIdx.x * n_cols;
    float m = NEG_INF;  // m = max_j x_j
    for (int j = threadIdx.x; j < n_cols; j += blockDim.x) m = max_nan(m, row[j]);
    partial[threadIdx.x] = m;
    block_reduce_max(partial);
    m = partial[0];
    __syncthreads();
    float s = 0.0f;  // s = sum_j exp(x_j - m)
    for (int j = threadIdx.x; j < n_cols; j += blockDim.x) s += expf(row[j] - m);
    partial[threadIdx.x] = s;
    block_reduce_sum(partial);
    s = partial[0];
    if (log_output) {
        const float log_s = logf(s);  // y_j = (x_j - m) - log s
        for (int j = threadIdx.x; j < n_cols; j += blockDim.x) out[j] = (row[j] - m) - log_s;
    } else {
        for (int j = threadIdx.x; j < n_cols; j += blockDim.x) out[j] = expf(row[j] - m) / s;
    }
}

// dL/dx of softmax: y_j (g_j - sum_k g_k y_k); of log_softmax: g_j - exp(y_j) sum_k g_k
extern "C" __global__ void softmax_backward_rows(const float* g, const float* y, float* dx,
                                                 const int n_cols, const int log_output) {
    extern __shared__ float partial[];
    const long long start = (long long)blockIdx.x * n_cols;
    float s = 0.0f;
    for (int j = threadIdx.x; j < n_cols; j += blockDim.x) s += log_output ? g[start + j] : g[start + j] * y[start + j];
    partial[threadIdx.x] = s;
    block_reduce_sum(partial);
    s = partial[0];
    for (int j = threadIdx.x; j < n_cols; j += blockDim.x) {
        const long long i = start + j;
        dx[i] = log_output ? g[i] - expf(y[i]) * s : y[i] * (g[i] - s);
    }
}

// layer norm of each row: x_hat = (x - mean) rstd, rstd = 1/sqrt(var + eps), y = x_hat w + b
extern "C" __global__ void layer_norm_rows(const float* x, const float* w, const float* b,
                                           float* x_hat, float* rstd, float* y,
                                           const int n_cols, const float eps) {
    extern __shared__ float partial[];
    const long long start = (long long)blockIdx.x * n_cols;
    float s = 0.0f;
    for (int j = threadIdx.x; j < n_cols; j += blockDim.x) s += x[start + j];
    partial[threadIdx.x] = s;
    block_reduce_sum(partial);
    const float mean = partial[0] / n_cols;
    __syncthreads();
    float ss = 0.0f;  // the centred sum of squares: two passes, as the reference
    for (int j = threadIdx.x; j < n_cols; j += blockDim.x) {
        const float c = x[start + j] - mean;
        ss += c * c;
    }
    partial[threadIdx.x] = ss;
    block_reduce_sum(partial);
    const float r = 1.0f / sqrtf(partial[0] / n_cols + eps);
    if (threadIdx.x == 0) rstd[blockIdx.x] = r;
    for (int j = threadIdx.x; j < n_cols; j += blockDim.x) {
        const float h = (x[start + j] - mean) * r;
        x_hat[start + j] = h;
        y[start + j] = h * w[j] + b[j];
    }
}

// dL/dx = rstd (g_hat - mean(g_hat) - x_hat mean(g_hat x_hat)), g_hat = dL/dy w, per row
extern "C" __global__ void layer_norm_backward_rows(const float* g, const float* x_hat, const float* rstd,
                                                    const float* w, float* dx, const int n_cols) {
    extern __shared__ float partial[];  // two halves: sums of g_hat and of g_hat x_hat
    float* partial_dot = partial + blockDim.x;
    const long long start = (long long)blockIdx.x * n_cols;
    float s = 0.0f, d = 0.0f;
    for (int j = threadIdx.x; j < n_cols; j += blockDim.x) {
        const float gh = g[start + j] * w[j];
        s += gh;
        d += gh * x_hat[start + j];
    }
    partial[threadIdx.x] = s;
    partial_dot[threadIdx.x] = d;
    for (int half = blockDim.x / 2; half > 0; half /= 2) {
        __syncthreads();
        if (threadIdx.x < half) {
            partial[threadIdx.x] += partial[threadIdx.x + half];
            partial_dot[threadIdx.x] += partial_dot[threadIdx.x + half];
        }
    }
    __syncthreads();
    const float mean_g_hat = partial[0] / n_cols, mean_dot = partial_dot[0] / n_cols;
    const float r = rstd[blockIdx.x];
    for (int j = threadIdx.x; j < n_cols; j += blockDim.x) {
        const long long i = start + j;
        dx[i] = r * (g[i] * w[j] - mean_g_hat - x_hat[i] * mean_dot);
    }
}

// Flash-style attention forward: one thread per query row, a block of FLASH_QUERIES rows of one
// head; the keys and values come through shared memory in tiles of FLASH_KEYS, and each row keeps
// its running max m, sum l and accumulator acc (online softmax): no T x T matrix at all.
//   for each tile: s_j = scale q.k_j (causal: j <= i);  m' = max(m, max_j s_j)
//                  l = l e^(m - m') + sum_j e^(s_j - m'),  acc = acc e^(m - m') + sum_j e^(s_j - m') v_j
//   o = acc / l,  lse = m + log l   (kept for backward: P = exp(S - lse))
// q, k, v, o are (BH, T, d) contiguous, d <= FLASH_MAX_D; lse is (BH, T).
#define FLASH_MAX_D 64
extern "C" __global__ void flash_attention_forward(const float* q, const float* k, const float* v,
                                                   float* o, float* lse, const int t_query,
                                                   const int t_key, const int d, const float scale,
                                                   const int causal) {
    __shared__ float k_tile[64 * FLASH_MAX_D];
    __shared__ float v_tile[64 * FLASH_MAX_D];
    const int head = blockIdx.y, row = blockIdx.x * blockDim.x + threadIdx.x;
    const float* q_head = q + (long long)head * t_query * d;
    const float* k_head = k + (long long)head * t_key * d;
    const float* v_head = v + (long long)head * t_key * d;
    float q_row[FLASH_MAX_D], acc[FLASH_MAX_D];
    for (int c = 0; c < d; c++) {
        q_row[c] = row < t_query ? q_head[(long long)row * d + c] * scale : 0.0f;
        acc[c] = 0.0f;
    }
    float m = NEG_INF, l = 0.0f;
    const int last_key = causal ? min(t_key, (int)((blockIdx.x + 1) * blockDim.x)) : t_key;  // the block's last row's keys
    for (int start = 0; start < last_key; start += blockDim.x) {
        const int tile = min((int)blockDim.x, t_key - start);
        __syncthreads();
        for (int c = threadIdx.x; c < tile * d; c += blockDim.x) {  // the block loads a tile together
            k_tile[c] = k_head[(long long)start * d + c];
            v_tile[c] = v_head[(long long)start * d + c];
        }
        __syncthreads();
        if (row >= t_query) continue;
        for (int j = 0; j < tile; j++) {
            if (causal && start + j > row) break;
            float s = 0.0f;
            for (int c = 0; c < d; c++) s += q_row[c] * k_tile[j * d + c];
            const float m_new = fmaxf(m, s);
            const float correction = expf(m - m_new), p = expf(s - m_new);
            l = l * correction + p;
            for (int c = 0; c < d; c++) acc[c] = acc[c] * correction + p * v_tile[j * d + c];
            m = m_new;
        }
    }
    if (row >= t_query) return;
    for (int c = 0; c < d; c++) o[((long long)head * t_query + row) * d + c] = acc[c] / l;
    lse[(long long)head * t_query + row] = m + logf(l);
}

// table[ids[i]] += rows[i]: one thread per number of rows (n_ids x width), atomically
extern "C" __global__ void add_rows_at(float* table, const long long* ids, const float* rows,
                                       const long long n_values, const int width) {
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n_values) return;
    atomicAdd(&table[ids[i / width] * width + i % width], rows[i]);
}
"""


@functools.cache
def row_kernel(name: str):
    """The compiled RawKernel ``name`` of ROW_SOURCE (compiled once, on first use)."""
    return require_cupy(f"CUDA kernel {name}").RawKernel(ROW_SOURCE, name)


def launch_rows(name: str, n_rows: int, *args, halves: int = 1) -> None:
    """Run the row kernel ``name`` with one block of ROW_THREADS per row; ``halves`` floats of
    shared memory per thread (one per running sum it reduces)."""
    row_kernel(name)((n_rows,), (ROW_THREADS,), args, shared_mem=halves * ROW_THREADS * 4)


@functools.cache
def gelu_forward():
    """cdf = Phi(a) = (1 + erf(a / sqrt 2)) / 2 and z = a Phi(a), one thread per element."""
    return require_cupy("CUDA kernel gelu_forward").ElementwiseKernel(
        "float32 a", "float32 cdf, float32 z",
        "cdf = 0.5f * (1.0f + erff(a * 0.70710678118654752f)); z = a * cdf;",
        "gelu_forward")


@functools.cache
def gelu_backward():
    """dL/da = g (Phi(a) + a phi(a)), phi(a) = exp(-a^2 / 2) / sqrt(2 pi)."""
    return require_cupy("CUDA kernel gelu_backward").ElementwiseKernel(
        "float32 a, float32 cdf, float32 g", "float32 grad_a",
        "grad_a = g * (cdf + a * expf(-0.5f * a * a) * 0.39894228040143268f);",
        "gelu_backward")


@functools.cache
def adam_update():
    """One Adam step per element, in place (theta, m, v are outputs given as inputs are)."""
    return require_cupy("CUDA kernel adam_update").ElementwiseKernel(
        "float32 grad, float32 shrink, float32 l2, float32 beta1, float32 one_minus_beta1, "
        "float32 beta2, float32 one_minus_beta2, float32 sqrt_bias_correction2, float32 eps, "
        "float32 step_size",
        "float32 theta, float32 m, float32 v",
        """
        const float param = theta * shrink;                  // AdamW's decay (1 for Adam)
        const float g = l2 != 0.0f ? grad + l2 * param : grad;  // Adam's L2 (0 for AdamW)
        m = m * beta1 + one_minus_beta1 * g;
        v = v * beta2 + one_minus_beta2 * g * g;
        theta = param - m / (sqrtf(v) / sqrt_bias_correction2 + eps) * step_size;
        """,
        "adam_update")
