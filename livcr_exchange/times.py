"""Times as a person reads them: ISO 8601 in UTC, to the second, computed from the number alone.

The core reads no clock and imports no date library; the civil date follows from the day count
(H. Hinnant's ``civil_from_days``, proleptic Gregorian calendar).
"""

from __future__ import annotations

DAY_SECONDS = 86_400


def iso8601(seconds: int) -> str:
    """``2026-12-03T08:17:05Z`` for a Unix time in seconds (from 1970 on)."""
    days, second_of_day = divmod(seconds, DAY_SECONDS)
    year, month, day = _civil_from_days(days)
    hour, rest = divmod(second_of_day, 3600)
    minute, second = divmod(rest, 60)
    return f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}Z"


def _civil_from_days(days: int) -> tuple[int, int, int]:
    shifted = days + 719_468  # days since 0000-03-01
    era = shifted // 146_097
    day_of_era = shifted - era * 146_097
    year_of_era = (
        day_of_era - day_of_era // 1460 + day_of_era // 36_524 - day_of_era // 146_096
    ) // 365
    day_of_year = day_of_era - (365 * year_of_era + year_of_era // 4 - year_of_era // 100)
    month_index = (5 * day_of_year + 2) // 153  # 0 = March
    day = day_of_year - (153 * month_index + 2) // 5 + 1
    month = month_index + 3 if month_index < 10 else month_index - 9
    year = year_of_era + era * 400 + (1 if month <= 2 else 0)
    return year, month, day
