"""Reverse-mode automatic differentiation: ``Function``, the ``backward`` engine, ``no_grad``.

Every differentiable op is a ``Function`` subclass with ``forward`` and ``backward`` side by
side. ``forward`` works on raw arrays and may stash what its backward needs with
``save_for_backward``; ``backward`` gets dL/d(output) and returns dL/d(input) for each input.
``Function.apply`` wraps that in tensors and, when a gradient is needed, records the node.

The engine walks the recorded graph once in reverse topological order (iteratively, so deep
graphs never hit Python's recursion limit), sums gradients that meet at a tensor used more than
once, sums broadcast dimensions back to each input's shape (``unbroadcast``, the one place this
happens) and frees the graph as it goes so that memory stays flat from step to step.
"""

from __future__ import annotations

import contextlib
import weakref

from . import dispatch
from .dispatch import dispatchable
from .backend import array_module, device_of, is_array, to_device
from .tensor import Tensor, describe

_grad_enabled = True
_anomaly_detection = False


@dispatchable
def add_gradients(a, b):
    """a + b: two gradients of one tensor (used more than once) meeting in backward.
    Fast version: fast/cpu/engine.py (both cores on big arrays)."""
    return a + b


def is_grad_enabled() -> bool:
    return _grad_enabled


@contextlib.contextmanager
def no_grad():
    """Inside this block ops record no graph: for evaluation, sampling and optimizer updates."""
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, False
    try:
        yield
    finally:
        _grad_enabled = previous


@contextlib.contextmanager
def detect_anomaly():
    """Inside this block every op checks that its output (and, in backward, its gradients) has
    no NaN or infinity, and raises a ValueError naming the op that made one."""
    global _anomaly_detection
    previous, _anomaly_detection = _anomaly_detection, True
    try:
        yield
    finally:
        _anomaly_detection = previous


def _check_finite(op: str, what: str, array, inputs) -> None:
    xp = array_module(array)
    if xp.issubdtype(array.dtype, xp.floating) and not bool(xp.isfinite(array).all()):
        got = ", ".join(describe(x) for x in inputs)
        raise ValueError(
            f"{op}: produced NaN or infinity in its {what} (inputs: {got}); "
            "expected finite values, so check the inputs' domain (log of <= 0, sqrt of < 0, ...)"
        )


class Function:
    """One differentiable operation. Subclasses define ``forward`` and ``backward``.

    ``forward(*arrays, **params) -> array`` computes the output from input arrays;
    ``backward(grad_output) -> grad or tuple of grads`` returns one gradient per input (None for
    an input that needs none), each of the input's shape or broadcastable to it.
    """

    def __init__(self):
        self.inputs: tuple[Tensor, ...] | None = None
        self.saved: tuple = ()
        self.needs_input_grad: tuple[bool, ...] = ()

    def save_for_backward(self, *arrays) -> None:
        self.saved = arrays

    # An op of one input whose gradient is zero almost everywhere (a slice, a gather) may also
    # define ``backward_add(grad_output, into) -> array``: it adds its gradient into ``into``,
    # the input's gradient so far, in place (``into`` is None for the first one) and returns
    # it. The engine uses it when it alone holds ``into``: q, k and v, three slices of one
    # projection, then fill one array instead of three zero-filled ones that are summed.
    backward_add = None

    @classmethod
    def apply(cls, *inputs: Tensor, **params) -> Tensor:
        for t in inputs:
            if not isinstance(t, Tensor):
                raise TypeError(
                    f"{cls.__name__}: inputs must be tensors, got {type(t).__name__}; "
                    "wrap arrays and numbers with minitransformer.tensor(...)"
                )
        arrays = [t.data for t in inputs]
        if len(arrays) > 1:
            _check_same_device(cls.__name__, inputs)
        # the one place where a fast implementation (minitransformer/dispatch.py) may stand in
        fn = (dispatch.implementation_for(cls, arrays, params) or cls)()
        requires_grad = _grad_enabled and any(t.requires_grad for t in inputs)
        if requires_grad:
            fn.needs_input_grad = tuple(t.requires_grad for t in inputs)
        out_data = fn.forward(*arrays, **params)
        if not is_array(out_data):  # NumPy reductions to 0-d return scalars, not arrays
            out_data = array_module(*arrays).asarray(out_data)
        # integer and boolean outputs (a cast to int, a sum of a mask) have no gradient
        requires_grad = requires_grad and out_data.dtype.kind == "f"
        out = Tensor(out_data, requires_grad=requires_grad)
        if _anomaly_detection:
            _check_finite(cls.__name__, "output", out.data, arrays)
        if requires_grad:
            fn.inputs = tuple(graph_node(t) for t in inputs)
            out._ctx = fn
        else:
            fn.saved = ()
        return out


class GraphNode:
    """What the graph keeps of an intermediate tensor that a later op takes as input: the
    ``Function`` that made it, its shape and dtype, but not its data.

    Holding the input tensors themselves would keep every intermediate array alive until
    backward (a GPT's residual stream, every layer's outputs...), though only what a
    ``Function`` saves for its backward is needed there. Leaves (parameters, inputs) are kept as
    they are: backward writes their ``.grad``. A tensor the caller still holds stays reachable
    through a weak reference, for ``retain_grad``.
    """

    __slots__ = ("_ctx", "requires_grad", "shape", "dtype", "device", "_tensor")

    def __init__(self, tensor: Tensor):
        self._ctx, self.requires_grad = tensor._ctx, tensor.requires_grad
        self.shape, self.dtype, self.device = tensor.shape, tensor.dtype, tensor.device
        self._tensor = weakref.ref(tensor)

    @property
    def _retains_grad(self) -> bool:
        tensor = self._tensor()
        return tensor is not None and tensor._retains_grad

    @property
    def grad(self):
        tensor = self._tensor()
        return None if tensor is None else tensor.grad

    @grad.setter
    def grad(self, value) -> None:
        tensor = self._tensor()
        if tensor is not None:
            tensor.grad = value


def graph_node(tensor: Tensor):
    """The tensor itself for a leaf; for an intermediate its one ``GraphNode`` (one per tensor,
    so a tensor used twice is still one node whose two gradients get summed)."""
    if tensor._ctx is None:
        return tensor
    if tensor._node is None:
        tensor._node = GraphNode(tensor)
    return tensor._node


def _check_same_device(op: str, inputs) -> None:
    devices = {device_of(t.data) for t in inputs}
    if len(devices) > 1:
        got = ", ".join(f"{describe(t.data)} on {device_of(t.data)}" for t in inputs)
        raise TypeError(
            f"{op}: inputs are on different devices ({got}); expected all on one device: "
            "move them with .to('cpu') or .to('cuda')"
        )


def unbroadcast(grad, shape: tuple[int, ...]):
    """Sum ``grad`` down to ``shape``: the gradient of NumPy broadcasting.

    Broadcasting copies an input along new leading axes and along axes of size 1, so each copy
    receives its own share of the gradient and the input's gradient is their sum.
    """
    if grad.shape == shape:
        return grad
    # BEGIN SOLUTION a2
    extra_leading = grad.ndim - len(shape)
    if extra_leading > 0:
        grad = grad.sum(axis=tuple(range(extra_leading)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad
    # END SOLUTION a2


def _topological_order(root: Tensor) -> list[Tensor]:
    """Tensors that lead to ``root`` and need a gradient, each after every tensor it feeds."""
    # BEGIN SOLUTION a1
    postorder, visited = [], set()
    stack = [(root, False)]
    while stack:
        tensor, children_done = stack.pop()
        if children_done:
            postorder.append(tensor)
            continue
        if id(tensor) in visited:
            continue
        visited.add(id(tensor))
        stack.append((tensor, True))
        fn = tensor._ctx
        if fn is not None and fn.inputs is not None:
            stack.extend((t, False) for t in fn.inputs if t.requires_grad and id(t) not in visited)
    postorder.reverse()
    return postorder
    # END SOLUTION a1


def backward(root: Tensor, grad=None, retain_graph: bool = False) -> None:
    """Fill ``.grad`` of every leaf tensor that ``root`` depends on with d(root)/d(leaf)."""
    # BEGIN SOLUTION a1
    if not root.requires_grad:
        raise RuntimeError(
            "backward: this tensor does not require grad and has no graph; create the inputs "
            "with requires_grad=True (and not inside no_grad())"
        )
    xp = array_module(root.data)
    if grad is None:
        if root.data.size != 1:
            raise ValueError(
                f"backward: called without a gradient on a tensor of shape {root.shape}; "
                "expected a scalar (size 1), or pass grad= of the same shape"
            )
        grad = xp.ones_like(root.data)
    else:
        grad = grad.data if isinstance(grad, Tensor) else grad
        if not is_array(grad) or grad.shape != root.shape:
            got = describe(grad) if is_array(grad) else type(grad).__name__
            raise ValueError(
                f"backward: grad is {got}; expected an array of the tensor's shape {root.shape}"
            )
        grad = xp.asarray(grad, dtype=root.dtype)

    grads = {id(root): grad}
    handed_to_leaves = {id(grad)}  # the caller keeps its grad array: leaves get a copy of it
    engine_owned = set()  # keys whose pending gradient is an array the engine made and alone holds
    for tensor in _topological_order(root):
        grad_output = grads.pop(id(tensor), None)
        if grad_output is None:
            continue
        fn = tensor._ctx
        if fn is None or tensor._retains_grad:
            _accumulate(tensor, grad_output, handed_to_leaves)
        if fn is None:
            continue
        if fn.inputs is None:
            raise RuntimeError(
                f"backward: the graph through {type(fn).__name__} was already freed by an earlier "
                "backward(); pass retain_graph=True to the first call to go through it twice"
            )
        if fn.backward_add is not None and fn.needs_input_grad[0]:
            key = id(fn.inputs[0])
            into = grads.get(key)
            if into is not None and key not in engine_owned:
                into = into.copy()  # another op may still hold that array: don't write into it
            grads[key] = fn.backward_add(grad_output, into)
            engine_owned.add(key)
            if not retain_graph:
                fn.inputs, fn.saved = None, ()
            continue
        input_grads = fn.backward(grad_output)
        if not isinstance(input_grads, tuple):
            input_grads = (input_grads,)
        for inp, input_grad, needed in zip(fn.inputs, input_grads, fn.needs_input_grad):
            if not needed or input_grad is None:
                continue
            input_grad = _fit_gradient(type(fn).__name__, input_grad, inp.shape)
            if input_grad.dtype != inp.dtype:
                input_grad = input_grad.astype(inp.dtype)
            if _anomaly_detection:
                _check_finite(type(fn).__name__, "gradient", input_grad, [grad_output])
            key = id(inp)
            if key in grads:  # a tensor used more than once: its gradients add up
                input_grad = add_gradients(grads[key], input_grad)
                engine_owned.add(key)
            else:
                engine_owned.discard(key)
            grads[key] = input_grad
        if not retain_graph:
            fn.inputs, fn.saved = None, ()
    # END SOLUTION a1


def _fit_gradient(op: str, grad, shape: tuple[int, ...]):
    """The gradient summed down to its input's shape, or an error naming the op whose backward
    returned a gradient that no broadcasting explains (a bug in that op, not in the caller)."""
    fitted = unbroadcast(grad, shape) if grad.ndim >= len(shape) else grad
    if fitted.shape != shape:
        raise RuntimeError(
            f"backward: {op}.backward returned a gradient of shape {grad.shape} for an input of "
            f"shape {shape}; expected the input's shape or a shape it broadcasts to"
        )
    return fitted


def _accumulate(tensor: Tensor, grad, handed_to_leaves: set[int]) -> None:
    """tensor.grad += grad, leaving tensor.grad an array that no other tensor shares."""
    if not is_array(grad):
        grad = to_device(array_module(grad).asarray(grad), tensor.device)
    if tensor.grad is not None:
        tensor.grad = tensor.grad + grad
        return
    shared = id(grad) in handed_to_leaves or grad.base is not None  # a view of another array
    tensor.grad = grad.copy() if shared else grad
    handed_to_leaves.add(id(tensor.grad))
