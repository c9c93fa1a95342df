"""Affine maps on a state of up to 4 values, and their scan: the carry algebra of the single-pass kernels.

A map ``s -> Q s + v`` is held as 16 + 4 scalars (or blocks of them), row-major ``q{i}{j}``, ``v{i}``;
states of dimension ``NP`` in {1, 2, 4} use the leading ``NP x NP`` block (``NP = 3`` is padded to 4:
an order-3 companion state can carry a fourth, unused lag). Composition is not commutative, so
these go through ``tl.associative_scan`` (a fixed tree: deterministic), never ``tl.reduce``.
The combines are written out term by term (Triton has no small-matrix type in registers).
"""
import triton
import triton.language as tl


@triton.jit
def _combine1(aq11, av1, bq11, bv1):
    # (a) earlier, (b) later: s -> Qb (Qa s + va) + vb
    r11 = bq11 * aq11
    w1 = bq11 * av1 + bv1
    return r11, w1


@triton.jit
def _combine2(aq11, aq12, aq21, aq22, av1, av2, bq11, bq12, bq21, bq22, bv1, bv2):
    # (a) earlier, (b) later: s -> Qb (Qa s + va) + vb
    r11 = bq11 * aq11 + bq12 * aq21
    r12 = bq11 * aq12 + bq12 * aq22
    r21 = bq21 * aq11 + bq22 * aq21
    r22 = bq21 * aq12 + bq22 * aq22
    w1 = bq11 * av1 + bq12 * av2 + bv1
    w2 = bq21 * av1 + bq22 * av2 + bv2
    return r11, r12, r21, r22, w1, w2


@triton.jit
def _combine4(aq11, aq12, aq13, aq14, aq21, aq22, aq23, aq24, aq31, aq32, aq33, aq34, aq41, aq42, aq43, aq44, av1, av2, av3, av4, bq11, bq12, bq13, bq14, bq21, bq22, bq23, bq24, bq31, bq32, bq33, bq34, bq41, bq42, bq43, bq44, bv1, bv2, bv3, bv4):
    # (a) earlier, (b) later: s -> Qb (Qa s + va) + vb
    r11 = bq11 * aq11 + bq12 * aq21 + bq13 * aq31 + bq14 * aq41
    r12 = bq11 * aq12 + bq12 * aq22 + bq13 * aq32 + bq14 * aq42
    r13 = bq11 * aq13 + bq12 * aq23 + bq13 * aq33 + bq14 * aq43
    r14 = bq11 * aq14 + bq12 * aq24 + bq13 * aq34 + bq14 * aq44
    r21 = bq21 * aq11 + bq22 * aq21 + bq23 * aq31 + bq24 * aq41
    r22 = bq21 * aq12 + bq22 * aq22 + bq23 * aq32 + bq24 * aq42
    r23 = bq21 * aq13 + bq22 * aq23 + bq23 * aq33 + bq24 * aq43
    r24 = bq21 * aq14 + bq22 * aq24 + bq23 * aq34 + bq24 * aq44
    r31 = bq31 * aq11 + bq32 * aq21 + bq33 * aq31 + bq34 * aq41
    r32 = bq31 * aq12 + bq32 * aq22 + bq33 * aq32 + bq34 * aq42
    r33 = bq31 * aq13 + bq32 * aq23 + bq33 * aq33 + bq34 * aq43
    r34 = bq31 * aq14 + bq32 * aq24 + bq33 * aq34 + bq34 * aq44
    r41 = bq41 * aq11 + bq42 * aq21 + bq43 * aq31 + bq44 * aq41
    r42 = bq41 * aq12 + bq42 * aq22 + bq43 * aq32 + bq44 * aq42
    r43 = bq41 * aq13 + bq42 * aq23 + bq43 * aq33 + bq44 * aq43
    r44 = bq41 * aq14 + bq42 * aq24 + bq43 * aq34 + bq44 * aq44
    w1 = bq11 * av1 + bq12 * av2 + bq13 * av3 + bq14 * av4 + bv1
    w2 = bq21 * av1 + bq22 * av2 + bq23 * av3 + bq24 * av4 + bv2
    w3 = bq31 * av1 + bq32 * av2 + bq33 * av3 + bq34 * av4 + bv3
    w4 = bq41 * av1 + bq42 * av2 + bq43 * av3 + bq44 * av4 + bv4
    return r11, r12, r13, r14, r21, r22, r23, r24, r31, r32, r33, r34, r41, r42, r43, r44, w1, w2, w3, w4


@triton.jit
def scan_affine(q11, q12, q13, q14, q21, q22, q23, q24, q31, q32, q33, q34, q41, q42, q43, q44, v1, v2, v3, v4, NP: tl.constexpr, AXIS: tl.constexpr):
    """Inclusive scan of affine maps along ``AXIS`` (earlier elements first): element i becomes the
    composition of elements 0..i. Entries outside the leading NP x NP block are returned unchanged."""
    if NP == 1:
        q11, v1 = tl.associative_scan((q11, v1,), AXIS, _combine1)
    elif NP == 2:
        q11, q12, q21, q22, v1, v2 = tl.associative_scan((q11, q12, q21, q22, v1, v2), AXIS, _combine2)
    else:
        tl.static_assert(NP == 4)
        (q11, q12, q13, q14, q21, q22, q23, q24, q31, q32, q33, q34, q41, q42, q43, q44, v1, v2, v3, v4) = tl.associative_scan(
            (q11, q12, q13, q14, q21, q22, q23, q24, q31, q32, q33, q34, q41, q42, q43, q44, v1, v2, v3, v4), AXIS, _combine4)
    return q11, q12, q13, q14, q21, q22, q23, q24, q31, q32, q33, q34, q41, q42, q43, q44, v1, v2, v3, v4


@triton.jit
def apply_affine(q11, q12, q13, q14, q21, q22, q23, q24, q31, q32, q33, q34, q41, q42, q43, q44, v1, v2, v3, v4, s1, s2, s3, s4, NP: tl.constexpr):
    """``Q s + v`` on the leading NP entries; the others are returned as ``v``."""
    t1 = q11 * s1 + v1
    t2 = v2
    t3 = v3
    t4 = v4
    if NP >= 2:
        t1 += q12 * s2
        t2 += q21 * s1 + q22 * s2
    if NP >= 4:
        t1 += q13 * s3 + q14 * s4
        t2 += q23 * s3 + q24 * s4
        t3 += q31 * s1 + q32 * s2 + q33 * s3 + q34 * s4
        t4 += q41 * s1 + q42 * s2 + q43 * s3 + q44 * s4
    return t1, t2, t3, t4
