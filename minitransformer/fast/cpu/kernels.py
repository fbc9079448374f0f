"""Fused CPU kernels: one pass over memory where NumPy makes one per operation.

NumPy runs one loop over the whole array per call, so GELU written with NumPy reads and writes
its block about twenty times, and a thread working on it gives up Python's GIL after each of
those calls. PyTorch's CPU kernels make one pass. The kernels here are plain Python loops over
one block of rows, compiled to machine code by numba the first time they are called:
- each loop does what several NumPy calls did, in one pass over the block (GELU: one pass
  forward, one backward; the attention softmax: one kernel per block of rows);
- they are compiled with ``nogil``, so ``parallel_rows``'s threads run them truly at once;
- they are compiled without fast-math's "no NaN, no inf" assumptions, so a NaN goes in and
  comes out as it does in NumPy; Adam's update makes the same float32 operations in the same
  order as its reference code, so the two agree bitwise (tests/fast/test_parity.py). Kernels that sum a
  row may add in another order (``SUMS``, so the compiler can use SIMD lanes), GELU and the
  softmax fuse multiply-adds (``FMA``) and use ``exp_float32`` below: those agree with NumPy to
  rounding.
- exp is written out (``exp_float32``: a polynomial and a power of two made from its bits),
  because a compiled loop calling ``math.exp`` would call the C library once per number, where
  a few multiplications vectorise (SIMD) like the rest of the loop.

Each kernel is used by the fast implementation of its op beside this file (elementwise.py for
GELU, normalization.py, softmax.py, attention.py, adam.py, embedding.py), registered against
the op's reference code in minitransformer/ops/. ``use_compiled(*arrays)`` says whether the
kernels can run on some arrays: float32 NumPy arrays, numba importable, the fast layer on (the
default; ``set_kernels("reference")`` or ``MINITRANSFORMER_KERNELS=reference`` turns it off).
"""

from __future__ import annotations

import math
import threading

import numpy as np

from ... import dispatch

_numba = None  # the numba module once imported, False when it cannot be
_compiled: dict = {}  # Python kernel -> its compiled version
_helpers: list[str] = []  # names of the functions kernels call (``helper``)
_compile_lock = threading.Lock()
SUMS, FMA = frozenset({"reassoc"}), frozenset({"contract"})  # see ``kernel``


def compiled_available() -> bool:
    """Whether numba can be imported (it is imported on the first call)."""
    global _numba
    if _numba is None:
        try:
            import numba
        except ImportError:  # the NumPy code does everything, only slower
            numba = False
        _numba = numba
    return _numba is not False


def use_compiled(*arrays) -> bool:
    """True when an op on these arrays should run the compiled kernels: all are float32 NumPy
    arrays (None entries are skipped), the fast layer is on and numba is there."""
    return (dispatch.get_kernels() == "fast"
            and all(a is None or (type(a) is np.ndarray and a.dtype == np.float32) for a in arrays)
            and compiled_available())


def helper(python_function):
    """A function that kernels call (``exp_float32``): compiled, and inlined into each kernel,
    before the first kernel compiles; until then, and without numba, the plain function."""
    _helpers.append(python_function.__name__)
    return python_function


def _compile_helpers() -> None:
    for name in _helpers:  # kernels find them as module globals when numba compiles them
        if not isinstance(globals()[name], _numba.core.dispatcher.Dispatcher):
            globals()[name] = _numba.njit(inline="always", error_model="numpy")(globals()[name])


def _compile(python_function, reorder: frozenset):
    if not compiled_available():
        raise RuntimeError(f"{python_function.__name__}: compiled kernels need numba, "
                           "which cannot be imported; install it or set_kernels('reference')")
    _compile_helpers()
    compiled = _numba.njit(nogil=True, cache=True, error_model="numpy",
                           fastmath=set(reorder) or False)(python_function)
    _compiled[python_function] = compiled
    return compiled


def kernel(python_function=None, *, reorder: frozenset = frozenset()):
    """Compile ``python_function`` with numba on its first call; ``.python`` is the plain one.

    ``nogil`` lets several threads run it at once. ``error_model="numpy"``: a division by zero
    gives inf or NaN as in NumPy, where Python's model would test every division and keep the
    compiler from vectorising the loop. ``reorder`` names the liberties the compiler may take
    with float arithmetic (two of fast-math's flags, never its "no NaN, no inf"):
    - ``SUMS`` (LLVM's ``reassoc``): add up a row in SIMD lanes, in another order;
    - ``FMA`` (``contract``): a * b + c as one fused multiply-add, rounded once, so both faster
      and more accurate; it halves the instructions of a polynomial.
    A kernel without them (Adam's) makes NumPy's operations in NumPy's order and rounds exactly
    as NumPy does. ``cache``: the machine code is kept in __pycache__ for the next run.
    """
    if python_function is None:  # used as @kernel(reorder=...)
        return lambda function: kernel(function, reorder=reorder)

    def run(*args):
        compiled = _compiled.get(python_function)
        if compiled is None:
            with _compile_lock:  # parallel_rows's threads may all make the first call at once
                compiled = _compiled.get(python_function) or _compile(python_function, reorder)
        return compiled(*args)

    run.python = python_function
    run.__name__, run.__doc__ = python_function.__name__, python_function.__doc__
    return run


# ---------------------------------------------------------------------------------------------
# exp, written out so that it vectorises: a compiled loop that calls math.exp makes one call to
# the C library per number (~2.5 ns); this is a few multiplications (~0.5 ns, within 1.1 ulp).

_LOG2_E = np.float32(1.4426950408889634)
_LN2_HIGH, _LN2_LOW = np.float32(0.693359375), np.float32(-2.12194440e-4)  # ln 2 = HIGH + LOW
_EXP_MIN, _EXP_MAX = np.float32(-87.0), np.float32(88.0)  # e^-87 is still a normal float32
_E2, _E3, _E4, _E5, _E6, _E7 = (np.float32(1 / math.factorial(k)) for k in range(2, 8))
_ONE, _HALF = np.float32(1), np.float32(0.5)
_ZERO, _INF, _EXP_OVERFLOW = np.float32(0), np.float32(np.inf), np.float32(88.72283)


@helper
def exp_float32(x):
    """e^x = 2^n e^r with n = round(x / ln 2) and |r| <= ln(2) / 2.

    e^r is its Taylor series to r^7 (the next term is below float32's rounding for |r| <= 0.35),
    and 2^n is built directly: a float32 is sign, 8 exponent bits, 23 fraction bits, so the
    bits (n + 127) << 23 are the number 2^n. ln 2 is split in two (HIGH has few bits, so n HIGH
    is exact) to keep r accurate for large x. The formula runs on x clipped to [-87, 88] (no
    overflow, no denormals: e^88 = 1.6e38 is near float32's largest, e^-87 = 1.6e-38 near its
    smallest normal); below -87 the answer is 0 (the exact one is below 1.6e-38, and NumPy's
    float32 exp reaches 0 at -103.9), above ln(float32 max) = 88.72 it is inf, as NumPy's."""
    given = x
    x = _EXP_MAX if x > _EXP_MAX else x  # NaN fails both tests and stays NaN
    x = _EXP_MIN if x < _EXP_MIN else x
    n = np.floor(x * _LOG2_E + _HALF)
    r = x - n * _LN2_HIGH - n * _LN2_LOW
    e_r = ((((((_E7 * r + _E6) * r + _E5) * r + _E4) * r + _E3) * r + _E2) * r + _ONE) * r + _ONE
    two_to_n = np.int32((np.int32(n) + np.int32(127)) << np.int32(23)).view(np.float32)
    result = e_r * two_to_n
    result = _ZERO if given < _EXP_MIN else result
    return _INF if given > _EXP_OVERFLOW else result


# ---------------------------------------------------------------------------------------------
# GELU, exact form: z = x Phi(x), Phi(x) = (1 + erf(x / sqrt 2)) / 2 (ops/elementwise.py).
# erf(y) = tanh(u), u = y P(y^2), the approximation above; then
# Phi = (1 + tanh(u)) / 2 = 1 / (1 + e^(-2u)): one exp, and one pass over memory each way.

# erf(x) = tanh(x P(x^2)) with P of degree 6, fitted by weighted least squares so that the error
# is small in units of the last place (ulp) of erf: max error 3.7 ulp (abs 1.8e-7), mean 0.6 ulp
# over all float32 inputs. From |x| = 3.92 on, erf(x) rounds to +-1; P was fitted up to 3.95,
# and clamping x at 4.1 (where tanh reaches exactly 1) keeps it from turning over further out.
# SciPy's float32 erf evaluates a double precision series at ~12 ns per value; this costs ~2
# (GPT-2's tanh GELU is P's first 2 terms).
ERF_COEFFICIENTS = (1.12837923, 0.102769002, -0.000191258572, -0.000620509265,
                    8.79562213e-05, -5.72423642e-06, 1.451278e-07)  # P_0 ... P_6
ERF_CLAMP = 4.1
_P0, _P1, _P2, _P3, _P4, _P5, _P6 = (np.float32(c) for c in ERF_COEFFICIENTS)
_CLAMP = np.float32(ERF_CLAMP)
_INV_SQRT_2 = np.float32(1 / np.sqrt(2))
_INV_SQRT_2PI = np.float32(1 / np.sqrt(2 * np.pi))
_MINUS_TWO, _MINUS_HALF = np.float32(-2), np.float32(-0.5)
_MINUS_INF = np.float32(-np.inf)


@kernel(reorder=FMA)
def gelu_forward(x, cdf, out):
    """Phi(x) into ``cdf`` (backward needs it) and z = x Phi(x) into ``out``, elementwise."""
    for i in range(x.size):
        y = x[i] * _INV_SQRT_2
        y = _CLAMP if y > _CLAMP else y  # a comparison with NaN is false: NaN stays NaN
        y = -_CLAMP if y < -_CLAMP else y
        s = y * y
        p = s * _P6  # Horner: (...(P_6 s + P_5) s + ...) s + P_0
        p = (p + _P5) * s
        p = (p + _P4) * s
        p = (p + _P3) * s
        p = (p + _P2) * s
        p = (p + _P1) * s
        u = (p + _P0) * y
        phi_cdf = _ONE / (_ONE + exp_float32(_MINUS_TWO * u))
        cdf[i] = phi_cdf
        out[i] = x[i] * phi_cdf


@kernel(reorder=FMA)
def gelu_backward(x, cdf, grad, grad_x):
    """dL/dx = dL/dz (Phi(x) + x phi(x)), phi(x) = e^(-x^2 / 2) / sqrt(2 pi), elementwise."""
    for i in range(x.size):
        density = exp_float32(x[i] * x[i] * _MINUS_HALF) * _INV_SQRT_2PI
        grad_x[i] = (density * x[i] + cdf[i]) * grad[i]


# ---------------------------------------------------------------------------------------------
# Layer norm over the last axis of (N, C) rows (ops/normalization.py).


@kernel(reorder=SUMS)
def layer_norm_forward(x, weight, bias, eps, x_hat, rstd, out):
    """Per row: x_hat = (x - mean) rstd, rstd = 1 / sqrt(var + eps), out = x_hat w + b."""
    n = x.shape[1]
    for r in range(x.shape[0]):
        total = np.float32(0)
        for i in range(n):
            total += x[r, i]
        mean = total / np.float32(n)
        squares = np.float32(0)
        for i in range(n):
            centred = x[r, i] - mean
            x_hat[r, i] = centred
            squares += centred * centred
        row_rstd = np.float32(1) / np.sqrt(squares / np.float32(n) + eps)
        rstd[r, 0] = row_rstd
        for i in range(n):
            normalized = x_hat[r, i] * row_rstd
            x_hat[r, i] = normalized
            out[r, i] = normalized * weight[i] + bias[i]


@kernel(reorder=SUMS)  # no FMA: g_hat - mean(g_hat) must cancel exactly when they are equal
def layer_norm_backward(grad, x_hat, rstd, weight, grad_x, grad_weight, grad_bias):
    """Per row, with g_hat = grad * w: grad_x = rstd (g_hat - mean(g_hat) - x_hat mean(g_hat
    x_hat)); the rows' grad * x_hat and grad are added into grad_weight and grad_bias."""
    n = grad.shape[1]
    for r in range(grad.shape[0]):
        sum_g_hat = np.float32(0)
        sum_g_hat_x_hat = np.float32(0)
        for i in range(n):
            g_hat = grad[r, i] * weight[i]
            sum_g_hat += g_hat
            sum_g_hat_x_hat += g_hat * x_hat[r, i]
        mean_g_hat = sum_g_hat / np.float32(n)
        mean_g_hat_x_hat = sum_g_hat_x_hat / np.float32(n)
        row_rstd = rstd[r, 0]
        for i in range(n):
            g_hat = grad[r, i] * weight[i]
            grad_x[r, i] = (g_hat - mean_g_hat - x_hat[r, i] * mean_g_hat_x_hat) * row_rstd
            grad_weight[i] += grad[r, i] * x_hat[r, i]
            grad_bias[i] += grad[r, i]


# ---------------------------------------------------------------------------------------------
# Adam and AdamW (optim/adam.py). The scalars come in as float32, as NumPy would cast them.


@kernel
def adam_update(theta, grad, m, v, shrink, l2, beta1, one_minus_beta1, beta2, one_minus_beta2,
                sqrt_bias_correction2, eps, step_size):
    """One Adam step on flat arrays, in place: theta *= shrink (AdamW's decay; 1 for Adam),
    g = grad + l2 theta (Adam's L2 penalty; 0 for AdamW), the moments, then theta -= step_size
    m / (sqrt(v) / sqrt(1 - beta2^t) + eps)."""
    for i in range(theta.size):
        param = theta[i] * shrink
        g = grad[i] + l2 * param if l2 != 0 else grad[i]  # 0 * a NaN theta would be NaN
        m_i = m[i] * beta1 + one_minus_beta1 * g
        v_i = v[i] * beta2 + one_minus_beta2 * g * g
        m[i], v[i] = m_i, v_i
        theta[i] = param - m_i / (np.sqrt(v_i) / sqrt_bias_correction2 + eps) * step_size


# ---------------------------------------------------------------------------------------------
# The softmax inside attention (ops/attention.py), on scores of shape (rows, Tk), each row
# one query of one head; ``mask`` is one (Tq, Tk) matrix added to every head's scores.


MAX_LANES = 16  # the row max is kept in 16 lanes: one AVX-512 register, or two AVX ones


@helper
def row_max_in_lanes(row, lanes):
    """max(row), -inf for an empty row, NaN entries skipped (a comparison with NaN is false).
    It runs over the row in steps of MAX_LANES, each lane of ``lanes`` (MAX_LANES float32
    scratch) keeping its own max: a compiler turns a loop of fixed length 16 into vector
    instructions, where one running max would compare one number at a time (3.5x slower)."""
    n = row.shape[0]
    whole = n - n % MAX_LANES
    lanes[:] = _MINUS_INF
    for start in range(0, whole, MAX_LANES):
        for lane in range(MAX_LANES):
            value = row[start + lane]
            lanes[lane] = value if value > lanes[lane] else lanes[lane]
    row_max = _MINUS_INF
    for value in lanes:
        row_max = value if value > row_max else row_max
    for j in range(whole, n):
        row_max = row[j] if row[j] > row_max else row_max
    return row_max


@kernel(reorder=SUMS | FMA)
def softmax_rows(scores, mask, logsumexp):
    """Each row of scores + mask replaced by its softmax, in place, and log(sum(exp(row))) into
    ``logsumexp`` (+inf for a row that the mask hides entirely, which gets weight 0 everywhere
    instead of NaN): what ``softmax_from_logsumexp`` needs to compute the row again.

    Three passes over each row while it sits in the L1 cache: add the mask and find the max
    (``row_max_in_lanes``), exponentiate (minus the max, so nothing overflows) and sum, divide
    by the sum."""
    t_query, t_key = mask.shape
    lanes = np.empty(MAX_LANES, dtype=np.float32)
    for r in range(scores.shape[0]):
        row, mask_row = scores[r], mask[r % t_query]
        for j in range(t_key):
            row[j] += mask_row[j]
        row_max = row_max_in_lanes(row, lanes)
        if row_max == _MINUS_INF:  # every key hidden: exp(-inf - 0) = 0 everywhere
            row_max = np.float32(0)
        total = np.float32(0)
        for j in range(t_key):
            weight = exp_float32(row[j] - row_max) if row[j] != _MINUS_INF else np.float32(0)
            row[j] = weight
            total += weight
        scale = _ONE / total if total != 0 else _ONE
        for j in range(t_key):
            row[j] *= scale
        logsumexp[r] = row_max + np.log(total) if total != 0 else -_MINUS_INF


@kernel(reorder=FMA)
def softmax_from_logsumexp(scores, mask, logsumexp):
    """The softmax of each row of scores + mask again, in place, from the row's logsumexp as
    ``softmax_rows`` left it: exp(s - logsumexp) in one pass, no max and no sum needed."""
    t_query, t_key = mask.shape
    for r in range(scores.shape[0]):
        row, mask_row, row_logsumexp = scores[r], mask[r % t_query], logsumexp[r]
        for j in range(t_key):
            value = row[j] + mask_row[j]
            row[j] = exp_float32(value - row_logsumexp) if value != _MINUS_INF else np.float32(0)


@kernel(reorder=SUMS | FMA)
def softmax_backward_rows(grad_weights, weights, scale, grad_scores):
    """dS = P * (dP - rowsum(dP * P)) * scale, row by row: dP is ``grad_weights``, dS goes into
    ``grad_scores`` (which may be ``grad_weights`` itself: attention works in place); attention's
    1/sqrt(d_k) comes in as ``scale``, a multiplication at no extra pass (1 for F.softmax)."""
    for r in range(weights.shape[0]):
        row_dot = np.float32(0)
        for j in range(weights.shape[1]):
            row_dot += grad_weights[r, j] * weights[r, j]
        for j in range(weights.shape[1]):
            grad_scores[r, j] = (grad_weights[r, j] - row_dot) * weights[r, j] * scale


# ---------------------------------------------------------------------------------------------
# Softmax and log-softmax over the last axis of (N, C) rows (ops/softmax.py, ops/loss.py).
# Unlike the attention softmax above, these keep NumPy's answers for every input: a row that
# holds +inf or NaN, or only -inf, comes out NaN, as exp(x - max) / sum(...) gives it.


@kernel(reorder=SUMS | FMA)
def softmax_last_axis(x, take_log, out):
    """Row by row, with m = max(x) and total = sum(exp(x - m)): softmax(x) = exp(x - m) / total
    into ``out``, or with ``take_log`` log-softmax(x) = (x - m) - log(total), in that order as
    NumPy's code does (x - (m + log(total)) would round m + log(total) to the size of m and lose
    the small log-probabilities of confident rows)."""
    n = x.shape[1]
    lanes = np.empty(MAX_LANES, dtype=np.float32)
    for r in range(x.shape[0]):
        row, out_row = x[r], out[r]
        row_max = row_max_in_lanes(row, lanes)
        total = np.float32(0)
        for j in range(n):  # exp(-inf) is exactly 0 (exp_float32 alone would give e^-87)
            weight = exp_float32(row[j] - row_max) if row[j] != _MINUS_INF else np.float32(0)
            if not take_log:
                out_row[j] = weight
            total += weight
        if take_log:
            log_total = np.log(total)
            for j in range(n):
                out_row[j] = (row[j] - row_max) - log_total
        else:
            scale = _ONE / total
            for j in range(n):
                out_row[j] *= scale


@kernel(reorder=SUMS | FMA)
def log_softmax_backward_rows(grad, log_probs, grad_x):
    """dL/dx = g - softmax(x) sum(g), row by row, with softmax(x) = exp(log_probs)."""
    for r in range(grad.shape[0]):
        total = np.float32(0)
        for j in range(grad.shape[1]):
            total += grad[r, j]
        for j in range(grad.shape[1]):
            value = log_probs[r, j]
            probability = exp_float32(value) if value != _MINUS_INF else np.float32(0)
            grad_x[r, j] = grad[r, j] - probability * total


# ---------------------------------------------------------------------------------------------
# The embedding's gradient (ops/embedding.py's add_rows_at): rows added to the rows they came from.


@kernel
def scatter_add_rows(target, index, values):
    """target[index[i]] += values[i] for each i in order, repeated rows adding up, as np.add.at
    does (the caller has checked 0 <= index < len(target): a compiled loop does not)."""
    for i in range(index.size):
        row = index[i]
        for j in range(values.shape[1]):
            target[row, j] += values[i, j]
