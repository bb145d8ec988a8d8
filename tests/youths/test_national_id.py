"""The pure fødselsnummer / D-number module: both mod-11 check digits, D-numbers, dates,
synthetic numbers. The century is not read from the individual number: a number matches a
birth date by day, month and two-digit year."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings, strategies as st

from casesvc.youths import national_id as nid

K1_WEIGHTS = (3, 7, 6, 1, 8, 9, 4, 5, 2)
K2_WEIGHTS = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)


def reference_check_digits(first_nine: str) -> str | None:
    """An independent statement of the published algorithm, so make() and parse() cannot agree
    on a wrong one."""

    def digit(digits, weights):
        k = 11 - sum(int(d) * w for d, w in zip(digits, weights, strict=True)) % 11
        return 0 if k == 11 else k  # 10 means: no valid number with these nine digits

    k1 = digit(first_nine, K1_WEIGHTS)
    if k1 == 10:
        return None
    k2 = digit(first_nine + str(k1), K2_WEIGHTS)
    return None if k2 == 10 else f"{k1}{k2}"


def complete(first_nine: str) -> str:
    digits = reference_check_digits(first_nine)
    assert digits is not None, first_nine
    return first_nine + digits


def first_valid(born: date, start: int = 0, stop: int = 500, **kw) -> str:
    return next(n for i in range(start, stop) if (n := nid.make(born, i, **kw)))


def date_of(parsed: nid.NationalId) -> tuple[int, int, int]:
    return parsed.day, parsed.month, parsed.year2


# --- known valid numbers ---------------------------------------------------------------------


def test_a_published_style_number_computed_independently_is_valid():
    # 01.01.1970, individual 123: check digits by hand from the official weights
    number = complete("010170123")
    parsed = nid.parse(number)
    assert date_of(parsed) == (1, 1, 70) and parsed.matches(date(1970, 1, 1))
    assert not parsed.is_d_number and not parsed.is_synthetic


@pytest.mark.parametrize(
    "born,individual",
    [
        (date(1970, 1, 1), 123),
        (date(1999, 12, 31), 42),
        (date(2008, 5, 17), 512),
        (date(2010, 2, 28), 987),
        (date(1955, 7, 1), 950),
        (date(1880, 3, 3), 600),
    ],
)
def test_numbers_built_by_make_are_valid_and_agree_with_the_reference(born, individual):
    number = next(n for i in range(individual, individual + 20) if (n := nid.make(born, i)))
    assert number[9:] == reference_check_digits(number[:9])
    assert nid.parse(number).matches(born)


def test_make_returns_none_when_no_check_digit_exists_and_no_completion_parses():
    born = date(2008, 5, 17)
    without = [i for i in range(500, 1000) if nid.make(born, i) is None]
    assert without, "some individual numbers have no valid check digits"
    first_nine = f"170508{without[0]:03d}"
    assert nid.check_digits(first_nine) is None
    for tail in range(100):
        with pytest.raises(nid.InvalidNationalId):
            nid.parse(f"{first_nine}{tail:02d}")


# --- check digits ----------------------------------------------------------------------------


def test_a_wrong_first_check_digit_is_rejected():
    number = first_valid(date(1970, 1, 1))
    bad = number[:9] + str((int(number[9]) + 1) % 10) + number[10]
    with pytest.raises(nid.InvalidNationalId, match="check digits"):
        nid.parse(bad)


def test_a_wrong_second_check_digit_is_rejected():
    number = first_valid(date(1970, 1, 1))
    bad = number[:10] + str((int(number[10]) + 1) % 10)
    with pytest.raises(nid.InvalidNationalId, match="check digits"):
        nid.parse(bad)


def test_a_right_first_check_digit_with_every_wrong_second_one_is_rejected():
    number = first_valid(date(1985, 6, 30), 200)
    for k2 in "0123456789":
        candidate = number[:10] + k2
        if k2 == number[10]:
            assert nid.parse(candidate).number == number
        else:
            with pytest.raises(nid.InvalidNationalId):
                nid.parse(candidate)


def test_swapped_check_digits_are_rejected():
    number = next(n for i in range(500) if (n := nid.make(date(1990, 4, 4), i)) and n[9] != n[10])
    with pytest.raises(nid.InvalidNationalId):
        nid.parse(number[:9] + number[10] + number[9])


# --- D-numbers -------------------------------------------------------------------------------


def test_a_d_number_adds_four_to_the_first_digit_and_is_accepted():
    born = date(1990, 8, 15)
    number = first_valid(born, d_number=True)
    assert number[:2] == "55"
    parsed = nid.parse(number)
    assert parsed.is_d_number
    assert date_of(parsed) == (15, 8, 90) and parsed.matches(born)


def test_a_d_number_for_the_31st_is_accepted():
    number = first_valid(date(2001, 1, 31), 500, 1000, d_number=True)
    assert number.startswith("71")
    assert nid.parse(number).matches(date(2001, 1, 31))


@pytest.mark.parametrize("day", ["72", "80", "99"])
def test_a_d_number_whose_day_is_not_a_date_is_rejected(day):
    number = complete(f"{day}0190123")
    with pytest.raises(nid.InvalidNationalId, match="date"):
        nid.parse(number)


# --- dates, and no centuries -----------------------------------------------------------------


@pytest.mark.parametrize(
    "ddmmyy",
    [
        "310290",  # 31 February
        "290201",  # 29 February in a year without one (1901, 2001, … none has it)
        "001090",  # day 0
        "321090",  # day 32
        "400190",  # day 40: neither a date nor a D-number
        "011390",  # month 13
        "010090",  # month 0
    ],
)
def test_a_date_part_that_is_not_a_date_is_rejected(ddmmyy):
    start = 512 if ddmmyy.endswith("01") else 123
    first_nine = next(ddmmyy + str(i) for i in range(start, start + 50) if reference_check_digits(ddmmyy + str(i)))
    with pytest.raises(nid.InvalidNationalId, match="date"):
        nid.parse(complete(first_nine), allow_synthetic=True)


def test_29_february_in_a_leap_year_is_accepted():
    number = first_valid(date(2004, 2, 29), 500, 1000)
    assert nid.parse(number).matches(date(2004, 2, 29))


def test_29_february_of_a_year_ending_00_is_accepted():
    """2000 had one (1900 did not): the number alone cannot tell, the birth date does."""
    parsed = nid.parse(first_valid(date(2000, 2, 29), 500, 1000))
    assert parsed.matches(date(2000, 2, 29))


def _first_in_band(year2: int, lo: int, hi: int) -> str:
    return next(
        f"0101{year2:02d}{i:03d}" for i in range(lo, hi + 1) if reference_check_digits(f"0101{year2:02d}{i:03d}")
    )


@pytest.mark.parametrize(
    "year2,lo,hi",
    [
        (11, 0, 499),  # the official rule reads 1911: refused before although both check digits hold
        (99, 0, 499),
        (60, 500, 749),
        (39, 500, 999),
        (40, 900, 999),
        (45, 750, 899),
        (99, 750, 899),
        (50, 500, 749),
        (40, 500, 899),  # bands the official rule has no century for
    ],
)
def test_any_individual_number_is_accepted_and_the_century_is_left_open(year2, lo, hi):
    parsed = nid.parse(complete(_first_in_band(year2, lo, hi)))
    assert date_of(parsed) == (1, 1, year2)
    for century in (1800, 1900, 2000):
        assert parsed.matches(date(century + year2, 1, 1))


def test_a_birth_date_with_another_day_month_or_two_digit_year_does_not_match():
    parsed = nid.parse(first_valid(date(2011, 3, 4), 0, 500, synthetic=True), allow_synthetic=True)
    assert parsed.matches(date(2011, 3, 4)) and parsed.matches(date(1911, 3, 4))
    for other in (date(2011, 3, 5), date(2011, 4, 4), date(2012, 3, 4), date(2010, 3, 4)):
        assert not parsed.matches(other)


# --- form ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "number",
    [
        "0101701234a",
        "01017O12345",
        "0101-701234",
        " 0101701234",
        "01017012 34",
        "٠١٠١٧٠١٢٣٤٥",  # Arabic-Indic digits: isdigit() but not ASCII
        "０１０１７０１２３４５",  # noqa: RUF001 (full-width digits, on purpose)
    ],
)
def test_non_digits_are_rejected(number):
    with pytest.raises(nid.InvalidNationalId, match="11 digits"):
        nid.parse(number)


def test_a_valid_number_written_with_non_ascii_digits_is_rejected():
    number = first_valid(date(1970, 1, 1))
    fullwidth = "".join(chr(0xFF10 + int(d)) for d in number)  # U+FF10 FULLWIDTH DIGIT ZERO onwards
    with pytest.raises(nid.InvalidNationalId):
        nid.parse(fullwidth)


@pytest.mark.parametrize("cut", [0, 1, 10])
def test_a_shorter_number_is_rejected(cut):
    number = first_valid(date(1970, 1, 1))
    with pytest.raises(nid.InvalidNationalId, match="11 digits"):
        nid.parse(number[:cut])


def test_a_longer_number_is_rejected():
    number = first_valid(date(1970, 1, 1))
    with pytest.raises(nid.InvalidNationalId, match="11 digits"):
        nid.parse(number + "0")


@pytest.mark.parametrize("value", [None, 1017012345, b"01017012345"])
def test_a_value_that_is_not_a_string_is_rejected(value):
    with pytest.raises(nid.InvalidNationalId):
        nid.parse(value)


# --- synthetic numbers -----------------------------------------------------------------------


def test_synthetic_numbers_are_refused_unless_allowed():
    born = date(2009, 3, 14)
    number = first_valid(born, 500, 1000, synthetic=True)
    assert number[2:4] == "83"
    with pytest.raises(nid.InvalidNationalId, match="synthetic"):
        nid.parse(number)
    with pytest.raises(nid.InvalidNationalId, match="synthetic"):
        nid.parse(number, allow_synthetic=False)
    parsed = nid.parse(number, allow_synthetic=True)
    assert parsed.is_synthetic and date_of(parsed) == (14, 3, 9) and parsed.matches(born)


def test_a_synthetic_d_number_is_refused_unless_allowed():
    born = date(2009, 12, 1)
    number = first_valid(born, 500, 1000, d_number=True, synthetic=True)
    assert number[:4] == "4192"
    with pytest.raises(nid.InvalidNationalId):
        nid.parse(number)
    parsed = nid.parse(number, allow_synthetic=True)
    assert parsed.is_d_number and parsed.is_synthetic and date_of(parsed) == (1, 12, 9) and parsed.matches(born)


def test_allowing_synthetic_numbers_does_not_admit_bad_months():
    # month 93 = synthetic month 13
    with pytest.raises(nid.InvalidNationalId):
        nid.parse(complete("019390123"), allow_synthetic=True)


# --- properties ------------------------------------------------------------------------------

birth_dates = st.dates(min_value=date(1800, 1, 1), max_value=date(2099, 12, 31))


@st.composite
def numbers_from_make(draw):
    born = draw(birth_dates)
    individual = draw(st.integers(0, 999))
    d_number = draw(st.booleans())
    synthetic = draw(st.booleans())
    return born, individual, d_number, synthetic, nid.make(born, individual, d_number, synthetic)


@settings(max_examples=400, deadline=None)
@given(numbers_from_make())
def test_every_number_make_returns_parses_back_and_matches_its_birth_date(drawn):
    """Whatever the individual number: no century rule stands between a valid number and the
    birth date it was made for."""
    born, individual, d_number, synthetic, number = drawn
    if number is None:  # no valid check digits for this individual number
        assert nid.check_digits(number_prefix(born, individual, d_number, synthetic)) is None
        return
    assert len(number) == 11 and number.isdigit()
    parsed = nid.parse(number, allow_synthetic=True)
    assert parsed.matches(born)
    assert date_of(parsed) == (born.day, born.month, born.year % 100)
    assert parsed.is_d_number == d_number
    assert parsed.is_synthetic == synthetic
    assert parsed.number == number


def number_prefix(born, individual, d_number, synthetic) -> str:
    return (
        f"{born.day + (40 if d_number else 0):02d}{born.month + (80 if synthetic else 0):02d}"
        f"{born.year % 100:02d}{individual:03d}"
    )


@settings(max_examples=300, deadline=None)
@given(numbers_from_make(), st.integers(0, 10), st.integers(1, 9))
def test_changing_any_single_digit_of_a_valid_number_makes_it_invalid(drawn, position, delta):
    """Every weight of the second check digit is non-zero mod 11 and a digit changes by less
    than 11, so a single changed digit always breaks a check digit: mod 11 detects every
    single-digit error, and never turns one valid number into another."""
    number = drawn[-1]
    if number is None:
        return
    changed = number[:position] + str((int(number[position]) + delta) % 10) + number[position + 1 :]
    assert changed != number
    assert nid.check_digits(changed[:9]) != changed[9:]
    with pytest.raises(nid.InvalidNationalId, match="check digits"):
        nid.parse(changed, allow_synthetic=True)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="0123456789", min_size=9, max_size=9))
def test_check_digits_match_the_reference_for_any_nine_digits(first_nine):
    assert nid.check_digits(first_nine) == reference_check_digits(first_nine)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="0123456789", min_size=11, max_size=11))
def test_parse_accepts_exactly_the_numbers_whose_check_digits_match(number):
    try:
        nid.parse(number, allow_synthetic=True)
    except nid.InvalidNationalId as exc:
        if reference_check_digits(number[:9]) == number[9:]:
            assert "check digits" not in str(exc)  # noqa: PT017 (a property: parse may or may not refuse)
    else:
        assert reference_check_digits(number[:9]) == number[9:]
