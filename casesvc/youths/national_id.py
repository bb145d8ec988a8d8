"""Norwegian national identity numbers: fødselsnummer and D-number (DDMMYY III K1 K2).

Both check digits are mod 11. A D-number adds 4 to the first digit of the day. Synthetic
numbers from the national test data (month + 80) are accepted only when allowed by setting,
so test and demo data never need a real person's number.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

_K1_WEIGHTS = (3, 7, 6, 1, 8, 9, 4, 5, 2)
_K2_WEIGHTS = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)


class InvalidNationalId(ValueError):
    pass


@dataclass(frozen=True)
class NationalId:
    number: str
    birth_date: date
    is_d_number: bool
    is_synthetic: bool


def _check_digit(digits: str, weights: tuple[int, ...]) -> int | None:
    remainder = sum(int(d) * w for d, w in zip(digits, weights)) % 11
    check = (11 - remainder) % 11
    return None if check == 10 else check


def check_digits(first_nine: str) -> str | None:
    """The two check digits for nine digits, or None when no valid number has them."""
    k1 = _check_digit(first_nine, _K1_WEIGHTS)
    if k1 is None:
        return None
    k2 = _check_digit(first_nine + str(k1), _K2_WEIGHTS)
    return None if k2 is None else f"{k1}{k2}"


def _century(year2: int, individual: int) -> int | None:
    if individual <= 499:
        return 1900
    if individual <= 749 and year2 >= 54:
        return 1800
    if individual >= 500 and year2 <= 39:
        return 2000
    if individual >= 900 and year2 >= 40:
        return 1900
    return None


def parse(number: str, allow_synthetic: bool = False) -> NationalId:
    if not isinstance(number, str) or len(number) != 11 or not number.isascii() or not number.isdigit():
        raise InvalidNationalId("must be 11 digits")
    if check_digits(number[:9]) != number[9:]:
        raise InvalidNationalId("check digits do not match")
    day, month, year2, individual = int(number[0:2]), int(number[2:4]), int(number[4:6]), int(number[6:9])
    is_d = day > 40
    if is_d:
        day -= 40
    synthetic = month > 80
    if synthetic:
        if not allow_synthetic:
            raise InvalidNationalId("synthetic test numbers are not accepted here")
        month -= 80
    century = _century(year2, individual)
    if century is None:
        raise InvalidNationalId("individual number does not fit the birth year")
    try:
        born = date(century + year2, month, day)
    except ValueError as exc:
        raise InvalidNationalId("the date part is not a date") from exc
    return NationalId(number, born, is_d, synthetic)


def make(birth_date: date, individual: int, d_number: bool = False, synthetic: bool = False) -> str | None:
    """Build a valid number (for tests and demo data), or None when that individual number has
    no valid check digits or does not fit the birth year's century."""
    if _century(birth_date.year % 100, individual) != birth_date.year - birth_date.year % 100:
        return None
    day = birth_date.day + (40 if d_number else 0)
    month = birth_date.month + (80 if synthetic else 0)
    first_nine = f"{day:02d}{month:02d}{birth_date.year % 100:02d}{individual:03d}"
    digits = check_digits(first_nine)
    return None if digits is None else first_nine + digits
