"""One pint registry for every unit the plant and the reports use.

Tag units in the site config, ERP units of measure and the factor tables all resolve here, so
`1.026e-3 mmBtu/scf` and a gas meter in `m**3` meet in the same arithmetic. Gas volumes in
`scf` are taken at standard conditions: the registry treats `scf` as a plain cubic foot, so a
meter must report standard (corrected) volume for the conversion to be right.
"""

from __future__ import annotations

from functools import cache
from typing import Annotated

import numpy as np
import pint
from pydantic import AfterValidator

_PLANT_UNITS = (
    "scf = foot ** 3 = standard_cubic_foot",
    "Mscf = 1000 * scf = MSCF = MCF = mscf",
    "MMscf = 1e6 * scf = MMSCF = MMCF",
    "mmBtu = 1e6 * Btu = MMBtu = MMBTU = mmbtu",
)


class UnitConfigError(ValueError):
    """A unit string that pint cannot parse, or one of the wrong dimension for its use."""


@cache
def registry() -> pint.UnitRegistry:
    """The project's unit registry: pint's defaults plus gas-industry units (scf, Mscf, mmBtu)."""
    ureg = pint.UnitRegistry(cache_folder=None)
    for definition in _PLANT_UNITS:
        ureg.define(definition)
    return ureg


def parse_unit(unit: str) -> pint.Unit:
    """The pint unit for `unit`, or `UnitConfigError` naming it."""
    try:
        return registry().parse_units(unit)
    except (pint.UndefinedUnitError, pint.DefinitionSyntaxError, AttributeError, TypeError, ValueError) as exc:
        raise UnitConfigError(f"unknown unit {unit!r}: {exc}") from None
    except Exception:  # pint's parser asserts ('m**', 'kg/') and tokenizes ('(m') without a useful message
        raise UnitConfigError(f"unit {unit!r}: pint cannot parse it (malformed expression)") from None


def parse_quantity(text: str, dimension_of: str | None = None) -> pint.Quantity:
    """A quantity such as '1.026e-3 mmBtu/scf'; with `dimension_of`, it must convert to that unit."""
    try:
        quantity = registry().Quantity(text)
    except Exception as exc:  # pint raises several types for malformed expressions
        raise UnitConfigError(f"cannot parse quantity {text!r}: {exc}") from None
    if not isinstance(quantity, pint.Quantity):
        quantity = registry().Quantity(quantity)
    if dimension_of is not None:
        require_compatible(str(quantity.units), dimension_of)
    return quantity


def require_compatible(unit: str, target: str) -> None:
    """Raise `UnitConfigError` unless `unit` converts to `target` (e.g. 'm**3/h' to 'scf/h')."""
    source, wanted = parse_unit(unit), parse_unit(target)
    if source.dimensionality != wanted.dimensionality:
        raise UnitConfigError(
            f"unit {unit!r} ({source.dimensionality}) is not convertible to {target!r} ({wanted.dimensionality})"
        )


def validate_unit(unit: str) -> str:
    """Pydantic-friendly check: return `unit` unchanged when pint parses it, raise ValueError otherwise."""
    parse_unit(unit)
    return unit


def conversion_factor(from_unit: str, to_unit: str) -> float:
    """Multiplier taking values in `from_unit` to `to_unit` (multiplicative units only)."""
    require_compatible(from_unit, to_unit)
    ureg = registry()
    return float(ureg.Quantity(1.0, parse_unit(from_unit)).to(parse_unit(to_unit)).magnitude)


def to_report_unit(values, from_unit: str, to_unit: str):
    """`values` (scalar, numpy array or pandas Series) converted from `from_unit` to `to_unit`.

    Offset units (degC, degF) go through pint; everything else is one multiplication, so a
    year of values converts in one vectorized step."""
    require_compatible(from_unit, to_unit)
    ureg = registry()
    source, target = parse_unit(from_unit), parse_unit(to_unit)
    if not (ureg.Quantity(1.0, source)._is_multiplicative and ureg.Quantity(1.0, target)._is_multiplicative):
        converted = ureg.Quantity(np.asarray(values, dtype=float), source).to(target).magnitude
        if hasattr(values, "index"):
            return values.__class__(converted, index=values.index, name=getattr(values, "name", None))
        return converted
    return values * conversion_factor(from_unit, to_unit)


PintUnit = Annotated[str, AfterValidator(validate_unit)]
"""A pydantic field type for unit strings: other config models use it to fail at load on a bad unit."""
