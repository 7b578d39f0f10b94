"""The Grafana expander of tests/grafana_sql.py against Grafana's own vectors (TESTING-NOTES.md)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from tests.grafana_sql import (
    MacroError,
    TimeRange,
    VariableValue,
    expand,
    expand_macros,
    format_interval,
    go_float,
    interpolate_builtins,
    interpolate_variables,
    rfc3339,
)
from tests.test_dashboards_queries import ALL_QUERIES

# Grafana's macros_test.go uses 2018-04-12T18:00:00Z .. +5 min.
RANGE = TimeRange(datetime(2018, 4, 12, 18, 0, tzinfo=UTC), datetime(2018, 4, 12, 18, 5, tzinfo=UTC))


def test_grafana_time_group_vector_plain_and_timescaledb() -> None:
    sql = "SELECT $__timeGroup(time_column,'5m'), value"
    assert expand_macros(sql, RANGE, timescaledb=False) == (
        'SELECT floor(extract(epoch from time_column)/300)*300 AS "time", value'
    )
    assert expand_macros(sql, RANGE, timescaledb=True) == (
        "SELECT time_bucket('300.000s',time_column) AS \"time\", value"
    )
    assert expand_macros("GROUP BY $__timeGroup(c, '5m')", RANGE, timescaledb=True) == (
        "GROUP BY time_bucket('300.000s',c)"
    )


def test_time_group_alias_and_the_first_occurrence_rule() -> None:
    assert expand_macros("$__timeGroupAlias(ts, 1h)", RANGE, timescaledb=False) == (
        'floor(extract(epoch from ts)/3600)*3600 AS "time"'
    )
    # Grafana looks the macro text up with strings.Index: the first occurrence is
    # followed by ',' so the GROUP BY copy gets the alias too (and breaks the SQL).
    sql = "SELECT $__timeGroup(ts,'5m'), v FROM t GROUP BY $__timeGroup(ts,'5m')"
    assert expand_macros(sql, RANGE, timescaledb=False).endswith(
        'GROUP BY floor(extract(epoch from ts)/300)*300 AS "time"'
    )


def test_go_float_formatting_of_intervals() -> None:
    assert [go_float(x) for x in (300, 0.02, 1036800, 86400, 604800, 3_600_000, 1e-05)] == [
        "300",
        "0.02",
        "1.0368e+06",
        "86400",
        "604800",
        "3.6e+06",
        "1e-05",
    ]
    assert expand_macros("$__timeGroup(ts, 12d)", RANGE, timescaledb=False) == (
        "floor(extract(epoch from ts)/1.0368e+06)*1.0368e+06"
    )
    assert expand_macros("$__timeGroup(ts, 20ms)", RANGE, timescaledb=True) == "time_bucket('0.020s',ts)"


def test_filters_and_time_macros() -> None:
    assert rfc3339(RANGE.start) == "2018-04-12T18:00:00Z"
    assert rfc3339(datetime(2018, 4, 12, 18, 0, 0, 500_000, tzinfo=UTC)) == "2018-04-12T18:00:00.5Z"
    assert expand_macros("WHERE $__timeFilter(time_column)", RANGE, timescaledb=False) == (
        "WHERE time_column BETWEEN '2018-04-12T18:00:00Z' AND '2018-04-12T18:05:00Z'"
    )
    assert expand_macros("$__timeFrom() $__timeTo()", RANGE, timescaledb=False) == (
        "'2018-04-12T18:00:00Z' '2018-04-12T18:05:00Z'"
    )
    assert expand_macros("$__time(c), $__timeEpoch(c)", RANGE, timescaledb=False) == (
        'c AS "time", extract(epoch from c) as "time"'
    )
    start = int(RANGE.start.timestamp())
    assert expand_macros("$__unixEpochFilter(e)", RANGE, timescaledb=False) == (
        f"e >= {start} AND e <= {start + 300}"
    )
    assert expand_macros("$__unixEpochGroup(e, 5m)", RANGE, timescaledb=True) == "floor((e)/300)*300"


def test_interval_builtins() -> None:
    assert format_interval(timedelta(seconds=90)) == "1m"
    assert format_interval(timedelta(hours=47)) == "1d"
    assert format_interval(timedelta(0)) == "1ms"
    sql = "$__interval_ms $__interval $__unixEpochFrom() $__unixEpochTo()"
    start = int(RANGE.start.timestamp())
    assert interpolate_builtins(sql, RANGE, timedelta(seconds=90)) == f"90000 1m {start} {start + 300}"


def test_macro_errors_and_parentheses_in_arguments() -> None:
    with pytest.raises(MacroError, match="undefined macro"):
        expand_macros("$__nope(x)", RANGE, timescaledb=False)
    with pytest.raises(MacroError):
        expand_macros("$__timeGroup(ts)", RANGE, timescaledb=False)
    # The argument list ends at the first ')': a nested call is cut in two.
    broken = expand_macros("$__timeFilter(coalesce(a, b))", RANGE, timescaledb=False)
    assert broken.startswith("coalesce(a BETWEEN")


def test_template_variables() -> None:
    values = {
        "one": VariableValue(("it's",), multi=False),
        "many": VariableValue(("a", "b'c"), multi=True),
        "all_one": VariableValue(("x",), multi=True),
    }
    sql = "'$one' IN ($many) ${all_one} [[one]] $__timeFilter(ts) $unknown $one_x"
    assert interpolate_variables(sql, values) == (
        "'it''s' IN ('a','b''c') 'x' it''s $__timeFilter(ts) $unknown $one_x"
    )


def test_expand_order_variables_then_macros() -> None:
    sql = "SELECT $__timeGroupAlias(ts, $__interval) FROM t WHERE $__timeFilter(ts) AND c IN ($c)"
    got = expand(
        sql, RANGE, timedelta(minutes=5), timescaledb=True, variables={"c": VariableValue(("A",), multi=True)}
    )
    assert got == (
        "SELECT time_bucket('300.000s',ts) AS \"time\" FROM t"
        " WHERE ts BETWEEN '2018-04-12T18:00:00Z' AND '2018-04-12T18:05:00Z' AND c IN ('A')"
    )


@pytest.mark.parametrize("query", ALL_QUERIES, ids=[q.where for q in ALL_QUERIES])
def test_no_macro_argument_contains_a_parenthesis(query: object) -> None:
    sql = query.sql  # type: ignore[attr-defined]
    for match in re.finditer(r"\$(__\w+)\(", sql):
        args = sql[match.end() : sql.index(")", match.end())]
        assert "(" not in args, f"macro {match.group(1)} has a parenthesis in its arguments: {args!r}"
