"""Eight-lane float64 vectors for the compiled kernels: explicit SIMD that numba does not give.

Why: LLVM vectorises a numba loop only when it can prove it safe and worth it. A per-merchant
loop that reads and writes twenty arrays of three dtypes, with a rare branch (an exit) and
selects on random conditions, is neither to it: it stays scalar and is bound by its
instructions (`simulator.kernels.accounts`: about 6.5 ns a slot at 200,000 merchants, cold or
in cache alike). Written with these vectors, eight merchants a step, the same arithmetic runs in
SIMD registers (about 4.5 ns a slot cold, where reading and writing the arrays is most of it).
Where a loop is bound by memory, or by gathers (slow on this project's machine), or LLVM
vectorises it already, they buy nothing (bench/RESULTS.md).

`Vec` is a vector of 8 float64 numbers held in registers (LLVM's ``<8 x double>``), `Mask` a
vector of 8 booleans (``<8 x i1>``). Every operation is exact IEEE arithmetic lane by lane and
no operation is fused or reordered, so a kernel written with them gives the bits its scalar
version gives, on any processor (a machine without 512-bit registers runs each as two or four
narrower instructions). Lane l of a block at row i holds row i + l; loads and stores take how
many rows of the block there are (`count`, 1..8): the rows past it are neither read nor
written (masked loads and stores: they may lie past the end of an array), and read as zero.
A count that is the constant `LANES` folds into plain loads and stores. A kernel's main loop
should pass one (and leave a block's last rows to a scalar loop): without 512-bit registers
(AVX2 alone) a variable count costs a mask built lane by lane for each load and store, and
bytes loaded one by one, which made accounts slower than its scalar loop there (3.3-4.0
against 1.8-3.0 ms a day at 200,000 merchants).

A state array's numbers may be float32: `load` widens them exactly, `rounded` rounds a result
to the array's dtype (and widens it back) and `store` stores it rounded. Arithmetic in float32
is emulated that way, rounding after each operation: the float64 result of +, -, x or / of two
float32 numbers, rounded to float32, is the float32 operation's result (float64 carries more
than twice float32's precision, so the two roundings never differ from one).
"""

from __future__ import annotations

from typing import Any

from llvmlite import ir
from numba import types
from numba.core.errors import TypingError
from numba.extending import intrinsic, models, register_model

#: Lanes of a `Vec` and a `Mask`.
LANES = 8

_I1, _I8, _I32, _F32, _F64 = (ir.IntType(1), ir.IntType(8), ir.IntType(32), ir.FloatType(),
                              ir.DoubleType())
_VEC = ir.VectorType(_F64, LANES)
_MASK = ir.VectorType(_I1, LANES)
#: The array dtypes a `Vec` loads from and stores to, and their LLVM element types.
_ELEMENTS = {types.float64: _F64, types.float32: _F32, types.int32: _I32, types.int8: _I8}


class VecType(types.Type):
    """numba's type of an 8-lane float64 vector."""

    def __init__(self) -> None:
        super().__init__(name="Vec")


class MaskType(types.Type):
    """numba's type of an 8-lane boolean vector."""

    def __init__(self) -> None:
        super().__init__(name="Mask")


Vec = VecType()
Mask = MaskType()


@register_model(VecType)
class _VecModel(models.PrimitiveModel):
    def __init__(self, dmm: Any, fe_type: Any) -> None:
        super().__init__(dmm, fe_type, _VEC)


@register_model(MaskType)
class _MaskModel(models.PrimitiveModel):
    def __init__(self, dmm: Any, fe_type: Any) -> None:
        super().__init__(dmm, fe_type, _MASK)


def _lanes_below(builder: Any, count: Any) -> Any:
    """The mask of the lanes before `count` (an integer of any width)."""
    n = builder.trunc(count, _I32) if count.type.width > 32 else builder.zext(count, _I32)
    ints = ir.VectorType(_I32, LANES)
    splat = builder.shuffle_vector(builder.insert_element(ir.Constant(ints, None), n,
                                                          ir.Constant(_I32, 0)),
                                   ir.Constant(ints, None), ir.Constant(ints, [0] * LANES))
    return builder.icmp_unsigned("<", ir.Constant(ints, list(range(LANES))), splat)


def _function(builder: Any, name: str, fnty: Any) -> Any:
    """The declaration of the function `name` in the module being built."""
    module = builder.module
    if name in module.globals:
        return module.globals[name]
    return ir.Function(module, fnty, name=name)


def _suffix(vty: Any) -> str:
    """LLVM's name of a vector type in an intrinsic's name (llvmlite does not name intrinsics
    over vectors itself), with the (opaque) pointer's."""
    element = vty.element
    if isinstance(element, ir.IntType):
        name = f"i{element.width}"
    else:
        name = "f32" if element == _F32 else "f64"
    return f"v{LANES}{name}.p0"


def _pointer(context: Any, builder: Any, arrty: Any, arr: Any, i: Any, vty: Any) -> Any:
    data = context.make_array(arrty)(context, builder, arr).data
    return builder.bitcast(builder.gep(data, [i]), vty.as_pointer())


def _masked_load(context: Any, builder: Any, arrty: Any, arr: Any, i: Any, count: Any,
                 elem: Any) -> Any:
    """arr[i:i + count] as a vector of `elem` (zero past count), by ``llvm.masked.load``: a
    plain load once the count is known to be 8."""
    vty = ir.VectorType(elem, LANES)
    fn = _function(builder, f"llvm.masked.load.{_suffix(vty)}",
                   ir.FunctionType(vty, [vty.as_pointer(), _I32, _MASK, vty]))
    return builder.call(fn, [_pointer(context, builder, arrty, arr, i, vty),
                             ir.Constant(_I32, 1), _lanes_below(builder, count),
                             ir.Constant(vty, None)])


def _masked_store(context: Any, builder: Any, arrty: Any, arr: Any, i: Any, count: Any,
                  value: Any) -> None:
    """arr[i:i + count] = the first count lanes of `value`, by ``llvm.masked.store``."""
    vty = value.type
    fn = _function(builder, f"llvm.masked.store.{_suffix(vty)}",
                   ir.FunctionType(ir.VoidType(), [vty, vty.as_pointer(), _I32, _MASK]))
    builder.call(fn, [value, _pointer(context, builder, arrty, arr, i, vty),
                      ir.Constant(_I32, 1), _lanes_below(builder, count)])


def _check_array(arr: Any, kinds: Any, what: str) -> None:
    if not (isinstance(arr, types.Array) and arr.ndim == 1 and arr.layout == "C"
            and arr.dtype in kinds):
        raise TypingError(f"{what}: a contiguous 1-d array of {sorted(map(str, kinds))} "
                          f"expected, got {arr}")


def _check_int(*values: Any) -> None:
    for v in values:
        if not isinstance(v, types.Integer):
            raise TypingError(f"an integer position or count expected, got {v}")


def _check(kind: Any, *values: Any) -> None:
    for v in values:
        if v != kind:
            raise TypingError(f"{kind} expected, got {v}")


@intrinsic
def splat(typingctx: Any, x: Any) -> Any:
    """A `Vec` of the number x (a float or integer, widened to float64) in every lane."""
    if not isinstance(x, types.Number):
        raise TypingError(f"splat: a number expected, got {x}")

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        v = context.cast(builder, args[0], sig.args[0], types.float64)
        ints = ir.VectorType(_I32, LANES)
        first = builder.insert_element(ir.Constant(_VEC, None), v, ir.Constant(_I32, 0))
        return builder.shuffle_vector(first, ir.Constant(_VEC, None),
                                      ir.Constant(ints, [0] * LANES))

    return Vec(x), codegen


@intrinsic
def load(typingctx: Any, arr: Any, i: Any, count: Any) -> Any:
    """arr[i:i + count] (float64, or float32, int32 or int8 widened exactly) as a `Vec`, 0.0
    past count."""
    _check_array(arr, _ELEMENTS, "load")
    _check_int(i, count)
    dtype = arr.dtype

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        v = _masked_load(context, builder, sig.args[0], *args, _ELEMENTS[dtype])
        if dtype == types.float32:
            return builder.fpext(v, _VEC)
        if dtype in (types.int32, types.int8):
            return builder.sitofp(v, _VEC)
        return v

    return Vec(arr, i, count), codegen


@intrinsic
def store(typingctx: Any, arr: Any, i: Any, count: Any, v: Any) -> Any:
    """arr[i:i + count] = the first count lanes of v in arr's dtype: float64 as they are,
    float32 rounded, int32 and int8 truncated (whole numbers in their range are stored
    exactly)."""
    _check_array(arr, _ELEMENTS, "store")
    _check_int(i, count)
    _check(Vec, v)
    dtype = arr.dtype

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        value = args[3]
        if dtype == types.float32:
            value = builder.fptrunc(value, ir.VectorType(_F32, LANES))
        elif dtype in (types.int32, types.int8):
            value = builder.fptosi(value, ir.VectorType(_ELEMENTS[dtype], LANES))
        _masked_store(context, builder, sig.args[0], args[0], args[1], args[2], value)
        return context.get_dummy_value()

    return types.none(arr, i, count, v), codegen


@intrinsic
def rounded(typingctx: Any, arr: Any, v: Any) -> Any:
    """v rounded to arr's dtype and widened back: what `store` would store in arr and `load`
    read back (float32 arrays round; float64 arrays keep v as it is)."""
    _check_array(arr, (types.float64, types.float32), "rounded")
    _check(Vec, v)
    narrow = arr.dtype == types.float32

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        if narrow:
            return builder.fpext(builder.fptrunc(args[1], ir.VectorType(_F32, LANES)), _VEC)
        return args[1]

    return Vec(arr, v), codegen


@intrinsic
def load_mask(typingctx: Any, arr: Any, i: Any, count: Any) -> Any:
    """arr[i:i + count] != 0 as a `Mask` (a uint8 array: a boolean array's view), False past
    count. A boolean array's own loads are branches in numba's code, which keep LLVM from
    vectorising; a uint8 view's are not."""
    _check_array(arr, (types.uint8,), "load_mask")
    _check_int(i, count)

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        v = _masked_load(context, builder, sig.args[0], *args, _I8)
        return builder.icmp_unsigned("!=", v, ir.Constant(v.type, [0] * LANES))

    return Mask(arr, i, count), codegen


@intrinsic
def store_mask(typingctx: Any, arr: Any, i: Any, count: Any, m: Any) -> Any:
    """arr[i:i + count] = the first count lanes of m, as 1 and 0 (a boolean array's uint8
    view)."""
    _check_array(arr, (types.uint8,), "store_mask")
    _check_int(i, count)
    _check(Mask, m)

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        value = builder.zext(args[3], ir.VectorType(_I8, LANES))
        _masked_store(context, builder, sig.args[0], args[0], args[1], args[2], value)
        return context.get_dummy_value()

    return types.none(arr, i, count, m), codegen


@intrinsic
def lanes(typingctx: Any, m: Any) -> Any:
    """The lanes set in m as the bits of an integer (lane l: bit l), for the rare lanes a
    kernel then handles one by one."""
    _check(Mask, m)

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        return builder.zext(builder.bitcast(args[0], _I8), ir.IntType(64))

    return types.int64(m), codegen


def _binary(kind: Any, result: Any, emit: Any, doc: str) -> Any:
    @intrinsic
    def op(typingctx: Any, a: Any, b: Any) -> Any:
        _check(kind, a, b)

        def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
            return emit(builder, args[0], args[1])

        return result(a, b), codegen

    op.__doc__ = doc
    return op


add = _binary(Vec, Vec, lambda b, x, y: b.fadd(x, y), "a + b, lane by lane.")
subtract = _binary(Vec, Vec, lambda b, x, y: b.fsub(x, y), "a - b, lane by lane.")
multiply = _binary(Vec, Vec, lambda b, x, y: b.fmul(x, y), "a x b, lane by lane.")
divide = _binary(Vec, Vec, lambda b, x, y: b.fdiv(x, y), "a / b, lane by lane.")
less = _binary(Vec, Mask, lambda b, x, y: b.fcmp_ordered("<", x, y),
               "a < b, lane by lane (False where either is NaN).")
greater = _binary(Vec, Mask, lambda b, x, y: b.fcmp_ordered(">", x, y),
                  "a > b, lane by lane (False where either is NaN).")
equal = _binary(Vec, Mask, lambda b, x, y: b.fcmp_ordered("==", x, y),
                "a == b, lane by lane (False where either is NaN; -0.0 equals +0.0).")
at_least = _binary(Vec, Mask, lambda b, x, y: b.fcmp_ordered(">=", x, y),
                   "a >= b, lane by lane (False where either is NaN).")
both = _binary(Mask, Mask, lambda b, x, y: b.and_(x, y), "a and b, lane by lane.")
either = _binary(Mask, Mask, lambda b, x, y: b.or_(x, y), "a or b, lane by lane.")


@intrinsic
def invert(typingctx: Any, m: Any) -> Any:
    """not m, lane by lane."""
    _check(Mask, m)

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        return builder.not_(args[0])

    return Mask(m), codegen


@intrinsic
def where(typingctx: Any, mask: Any, a: Any, b: Any) -> Any:
    """a where mask, else b, lane by lane (a select: no branch, and a NaN not chosen does
    not show)."""
    _check(Mask, mask)
    _check(Vec, a, b)

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        return builder.select(args[0], args[1], args[2])

    return Vec(mask, a, b), codegen


@intrinsic
def any_bits(typingctx: Any, v: Any) -> Any:
    """The lanes of v with any bit set: every number but +0.0 (-0.0 and NaN included), for a
    kernel that leaves a stretch of +0.0 unwritten."""
    _check(Vec, v)

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        ints = ir.VectorType(ir.IntType(64), LANES)
        return builder.icmp_unsigned("!=", builder.bitcast(args[0], ints),
                                     ir.Constant(ints, [0] * LANES))

    return Mask(v), codegen
