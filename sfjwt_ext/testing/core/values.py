"""Field values as Salesforce takes them on a write: numbers to a field's precision and scale,
and a bad value named by its JSON token (Salesforce's JSON parser is Jackson: ``VALUE_TRUE``,
``START_ARRAY``...), never by a Python value.

- ``number_value``: an ``int`` / ``double`` / ``currency`` / ``percent`` value rounded to the
  field's scale (half up) and refused with NUMBER_OUTSIDE_VALID_RANGE past its precision;
  whole values beyond a double's 53 bits stay ``int``, so 18 digits survive the store.
- ``json_token``: ``(token, text)`` of a decoded JSON value, for JSON_PARSER_ERROR messages.
- ``java_number``: a number as Java prints a ``double`` (``1.0E19``, ``100.0``), the way
  Salesforce's messages show the value.
- ``JsonValueError``: a SoqlError about one field's value; the REST layer adds where in the
  body the value was (``at [line:1, column:N]``).
"""
from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext
from typing import Any, Callable, Optional, Tuple, Union

from .schema import FieldDef
from .soql import SoqlError

__all__ = ["JsonValueError", "json_token", "java_number", "number_value"]

#: an ``int`` field without declared digits holds a 32-bit signed integer
_INT_LIMIT = 2 ** 31
#: doubles hold whole numbers exactly up to here; beyond, the store keeps Python ints
_EXACT = 2 ** 53


class JsonValueError(SoqlError):
    """A field's value that Salesforce's JSON parser would refuse (JSON_PARSER_ERROR)."""

    def __init__(self, message: str, field_name: str, value: Any) -> None:
        super().__init__("JSON_PARSER_ERROR", message, fields=[field_name])
        self.field_name = field_name
        self.value = value


def json_token(value: Any) -> Tuple[str, str]:
    """Jackson's token name for a decoded JSON value and the text it shows for it."""
    if isinstance(value, bool):
        return ("VALUE_TRUE", "true") if value else ("VALUE_FALSE", "false")
    if isinstance(value, int):
        return "VALUE_NUMBER_INT", str(value)
    if isinstance(value, float):
        return "VALUE_NUMBER_FLOAT", repr(value)
    if isinstance(value, list):
        return "START_ARRAY", "["
    if isinstance(value, dict):
        return "START_OBJECT", "{"
    return "VALUE_STRING", str(value)


def java_number(value: Union[int, float, Decimal]) -> str:
    """``value`` as Java's ``Double.toString`` writes it: ``100.0``, ``0.001``, ``1.0E19``."""
    number = Decimal(repr(value) if isinstance(value, float) else str(value))
    if number == 0:
        return "0.0"
    sign = "-" if number < 0 else ""
    number = abs(number)
    if Decimal("0.001") <= number < Decimal(10_000_000):
        text = format(number.normalize(), "f")
        return sign + (text if "." in text else text + ".0")
    digits = "".join(str(d) for d in number.normalize().as_tuple().digits)
    exponent = number.adjusted()
    return f"{sign}{digits[0]}.{digits[1:] or '0'}E{exponent}"


def _decimal(value: Any) -> Optional[Decimal]:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        number = Decimal(repr(value) if isinstance(value, float) else str(value).strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def number_value(f: FieldDef, value: Any, bad: Callable[[], SoqlError]) -> Union[int, float]:
    """``value`` stored in the number field ``f`` (``bad()`` is raised for a non-number)."""
    number = _decimal(value)
    if number is None:
        raise bad()
    if f.type == "int":
        if number != number.to_integral_value():
            raise bad()
        limit = 10 ** f.precision if f.precision else _INT_LIMIT
        if not -limit < number < limit:
            raise _outside(f, int(number))
        return int(number)
    scale = f.scale
    if f.precision and number.adjusted() >= f.precision - scale:  # too big even before rounding
        raise _outside(f, float(number))
    with localcontext() as context:
        context.prec = 1000 + scale
        rounded = number.quantize(Decimal(1).scaleb(-scale), rounding=ROUND_HALF_UP)
    if f.precision and abs(rounded) >= Decimal(10) ** (f.precision - scale):
        raise _outside(f, float(number))
    if scale == 0 and abs(rounded) >= _EXACT:
        return int(rounded)
    result = float(rounded)
    if math.isinf(result):
        raise _outside(f, float(number))
    return result


def _outside(f: FieldDef, shown: Union[int, float]) -> SoqlError:
    text = str(shown) if isinstance(shown, int) else java_number(shown)
    return SoqlError("NUMBER_OUTSIDE_VALID_RANGE", f"{f.label}: value outside of valid range on numeric field: {text}",
                     fields=[f.name])
