"""Do values cross between the judge kernel and the grader as data, and nothing else?"""

from __future__ import annotations

import math

import pytest

from course_lib.judge import wire


@pytest.mark.parametrize("value", [None, True, 0, -3, 2**80, 1.5, "héllo", b"\x00\xff", [1, [2]], (1, (2, "x")),
                                   {"a": (1, 2), 3: [None]}, {1, 2}, frozenset({"x"}), ()])
def test_plain_data_comes_back_equal_and_of_the_same_type(value):
    """Does every plain value round-trip with its exact type (a tuple stays a tuple)?"""
    back = wire.decode(wire.encode(value))
    assert back == value and type(back) is type(value)


def test_floats_that_json_cannot_carry_still_arrive():
    """Are nan and the infinities carried?"""
    back = wire.decode(wire.encode([math.inf, -math.inf, math.nan]))
    assert back[0] == math.inf and back[1] == -math.inf and math.isnan(back[2])


def test_a_value_that_is_not_data_arrives_opaque_and_equals_nothing():
    """Does an object whose __eq__ always says True, or an int subclass, arrive as an Opaque that equals
    nothing — and refuse to go at all as an argument?"""
    class Yes:
        def __eq__(self, other):
            return True

    class Sneaky(int):
        pass

    for value in (Yes(), Sneaky(4), print):
        back = wire.decode(wire.encode(value))
        assert isinstance(back, wire.Opaque) and back != back and back != 4
        with pytest.raises(wire.NotData):
            wire.encode(value, strict=True)


def test_sizes_and_depth_are_bounded():
    """Is a result too large or too deep refused, not sent?"""
    with pytest.raises(wire.NotData):
        wire.encode("x" * (wire.MAX_TEXT + 1))
    deep = []
    for _ in range(wire.MAX_DEPTH + 5):
        deep = [deep]
    with pytest.raises(wire.NotData):
        wire.encode(deep)
    with pytest.raises(wire.NotData):
        wire.decode({"$x": 1})


def test_an_exception_is_raised_again_as_its_built_in_class_with_its_type_name():
    """Is a student's ValueError subclass raised in the grader as a ValueError (so `except ValueError`
    works) that keeps its own name and message?"""
    class PortError(ValueError):
        pass

    described = wire.encode_exception(PortError("port 70000 is out of range"))
    with pytest.raises(ValueError) as caught:
        wire.raise_decoded(described)
    assert type(caught.value).__name__ == "PortError" and str(caught.value) == "port 70000 is out of range"
    with pytest.raises(KeyError):
        wire.raise_decoded(wire.encode_exception(KeyError("zoe")))
    with pytest.raises(Exception) as caught:  # a KeyboardInterrupt never crosses as one
        wire.raise_decoded(wire.encode_exception(KeyboardInterrupt()))
    assert not isinstance(caught.value, KeyboardInterrupt)
