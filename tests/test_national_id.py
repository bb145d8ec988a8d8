"""The pure fødselsnummer / D-number module: both mod-11 check digits, D-numbers, dates,
centuries, synthetic numbers."""
from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from casesvc.youths import national_id as nid

K1_WEIGHTS = (3, 7, 6, 1, 8, 9, 4, 5, 2)
K2_WEIGHTS = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)


def reference_check_digits(first_nine: str) -> str | None:
    """An independent statement of the published algorithm, so make() and parse() cannot agree
    on a wrong one."""
    def digit(digits, weights):
        k = 11 - sum(int(d) * w for d, w in zip(digits, weights)) % 11
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


# --- known valid numbers ---------------------------------------------------------------------

def test_a_published_style_number_computed_independently_is_valid():
    # 01.01.1970, individual 123: check digits by hand from the official weights
    number = complete("010170123")
    parsed = nid.parse(number)
    assert parsed.birth_date == date(1970, 1, 1)
    assert not parsed.is_d_number and not parsed.is_synthetic


@pytest.mark.parametrize("born,individual", [
    (date(1970, 1, 1), 123), (date(1999, 12, 31), 42), (date(2008, 5, 17), 512),
    (date(2010, 2, 28), 987), (date(1955, 7, 1), 950), (date(1880, 3, 3), 600),
])
def test_numbers_built_by_make_are_valid_and_agree_with_the_reference(born, individual):
    number = next(n for i in range(individual, individual + 20) if (n := nid.make(born, i)))
    assert number[9:] == reference_check_digits(number[:9])
    assert nid.parse(number).birth_date == born


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
    assert parsed.birth_date == born


def test_a_d_number_for_the_31st_is_accepted():
    number = first_valid(date(2001, 1, 31), 500, 1000, d_number=True)
    assert number.startswith("71")
    assert nid.parse(number).birth_date == date(2001, 1, 31)


@pytest.mark.parametrize("day", ["72", "80", "99"])
def test_a_d_number_whose_day_is_not_a_date_is_rejected(day):
    number = complete(f"{day}0190123")
    with pytest.raises(nid.InvalidNationalId, match="date"):
        nid.parse(number)


# --- dates and centuries ---------------------------------------------------------------------

@pytest.mark.parametrize("ddmmyy", [
    "310290",  # 31 February
    "290201",  # 29 February in a year without one (2001 with individual >= 500)
    "001090",  # day 0
    "321090",  # day 32
    "400190",  # day 40: neither a date nor a D-number
    "011390",  # month 13
    "010090",  # month 0
])
def test_a_date_part_that_is_not_a_date_is_rejected(ddmmyy):
    start = 512 if ddmmyy.endswith("01") else 123
    first_nine = next(ddmmyy + str(i) for i in range(start, start + 50) if reference_check_digits(ddmmyy + str(i)))
    with pytest.raises(nid.InvalidNationalId, match="date"):
        nid.parse(complete(first_nine), allow_synthetic=True)


def test_29_february_in_a_leap_year_is_accepted():
    number = first_valid(date(2004, 2, 29), 500, 1000)
    assert nid.parse(number).birth_date == date(2004, 2, 29)


def _first_in_band(year2: int, lo: int, hi: int) -> str:
    return next(f"0101{year2:02d}{i:03d}" for i in range(lo, hi + 1)
                if reference_check_digits(f"0101{year2:02d}{i:03d}"))


@pytest.mark.parametrize("year2,lo,hi,century", [
    (99, 0, 499, 1900), (99, 480, 499, 1900), (60, 500, 749, 1800), (39, 500, 999, 2000),
    (39, 980, 999, 2000), (40, 900, 999, 1900), (99, 980, 999, 1900), (0, 0, 499, 1900),
])
def test_the_individual_number_sets_the_century(year2, lo, hi, century):
    number = complete(_first_in_band(year2, lo, hi))
    assert nid.parse(number).birth_date.year == century + year2


@pytest.mark.parametrize("year2,lo,hi", [(45, 750, 899), (99, 750, 899), (50, 500, 749), (40, 500, 899)])
def test_an_individual_number_that_fits_no_century_is_rejected(year2, lo, hi):
    number = complete(_first_in_band(year2, lo, hi))
    with pytest.raises(nid.InvalidNationalId, match="individual number"):
        nid.parse(number)


# --- form ------------------------------------------------------------------------------------

@pytest.mark.parametrize("number", [
    "0101701234a", "01017O12345", "0101-701234", " 0101701234", "01017012 34",
    "٠١٠١٧٠١٢٣٤٥",            # Arabic-Indic digits: isdigit() but not ASCII
    "０１０１７０１２３４５",     # full-width digits
])
def test_non_digits_are_rejected(number):
    with pytest.raises(nid.InvalidNationalId, match="11 digits"):
        nid.parse(number)


def test_a_valid_number_written_with_non_ascii_digits_is_rejected():
    number = first_valid(date(1970, 1, 1))
    fullwidth = "".join(chr(ord("０") + int(d)) for d in number)
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
    assert parsed.is_synthetic and parsed.birth_date == born


def test_a_synthetic_d_number_is_refused_unless_allowed():
    born = date(2009, 12, 1)
    number = first_valid(born, 500, 1000, d_number=True, synthetic=True)
    assert number[:4] == "4192"
    with pytest.raises(nid.InvalidNationalId):
        nid.parse(number)
    parsed = nid.parse(number, allow_synthetic=True)
    assert parsed.is_d_number and parsed.is_synthetic and parsed.birth_date == born


def test_allowing_synthetic_numbers_does_not_admit_bad_months():
    # month 93 = synthetic month 13
    with pytest.raises(nid.InvalidNationalId):
        nid.parse(complete("019390123"), allow_synthetic=True)


# --- properties ------------------------------------------------------------------------------

def _individuals_for(year: int) -> st.SearchStrategy[int]:
    """The individual numbers the registry uses for a birth year (the only ones from which the
    century can be read back)."""
    bands = []
    if 1900 <= year <= 1999:
        bands.append(st.integers(0, 499))
    if 1940 <= year <= 1999:
        bands.append(st.integers(900, 999))
    if 1854 <= year <= 1899:
        bands.append(st.integers(500, 749))
    if 2000 <= year <= 2039:
        bands.append(st.integers(500, 999))
    return st.one_of(*bands)


birth_dates = st.dates(min_value=date(1854, 1, 1), max_value=date(2039, 12, 31))


@st.composite
def numbers_from_make(draw):
    born = draw(birth_dates)
    individual = draw(_individuals_for(born.year))
    d_number = draw(st.booleans())
    synthetic = draw(st.booleans())
    return born, individual, d_number, synthetic, nid.make(born, individual, d_number, synthetic)


@settings(max_examples=400, deadline=None)
@given(numbers_from_make())
def test_every_number_make_returns_parses_back_to_the_same_birth_date(drawn):
    born, individual, d_number, synthetic, number = drawn
    if number is None:  # no valid check digits for this individual number
        assert nid.check_digits(number_prefix(born, individual, d_number, synthetic)) is None
        return
    assert len(number) == 11 and number.isdigit()
    parsed = nid.parse(number, allow_synthetic=True)
    assert parsed.birth_date == born
    assert parsed.is_d_number == d_number
    assert parsed.is_synthetic == synthetic
    assert parsed.number == number


def number_prefix(born, individual, d_number, synthetic) -> str:
    return (f"{born.day + (40 if d_number else 0):02d}{born.month + (80 if synthetic else 0):02d}"
            f"{born.year % 100:02d}{individual:03d}")


@settings(max_examples=200, deadline=None)
@given(st.dates(min_value=date(1854, 1, 1), max_value=date(2039, 12, 31)), st.integers(0, 999))
def test_make_with_an_individual_number_outside_the_years_band_never_parses_to_that_date(born, individual):
    """The century is read from the individual number: a number built with one that does not
    belong to the birth year parses to another year, or not at all — never silently to `born`."""
    number = nid.make(born, individual)
    if number is None:
        return
    try:
        parsed = nid.parse(number)
    except nid.InvalidNationalId:
        return
    got = parsed.birth_date
    assert (got.day, got.month, got.year % 100) == (born.day, born.month, born.year % 100)
    fits = any(individual in range(lo, hi + 1) for lo, hi, y0, y1 in [
        (0, 499, 1900, 1999), (900, 999, 1940, 1999), (500, 749, 1854, 1899), (500, 999, 2000, 2039)]
        if y0 <= born.year <= y1)
    assert (parsed.birth_date == born) == fits


@settings(max_examples=300, deadline=None)
@given(numbers_from_make(), st.integers(0, 10), st.integers(1, 9))
def test_changing_any_single_digit_of_a_valid_number_makes_it_invalid(drawn, position, delta):
    """Every weight of the second check digit is non-zero mod 11 and a digit changes by less
    than 11, so a single changed digit always breaks a check digit: mod 11 detects every
    single-digit error, and never turns one valid number into another."""
    number = drawn[-1]
    if number is None:
        return
    changed = number[:position] + str((int(number[position]) + delta) % 10) + number[position + 1:]
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
            assert "check digits" not in str(exc)
    else:
        assert reference_check_digits(number[:9]) == number[9:]
