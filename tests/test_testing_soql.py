"""The SOQL tokenizer and parser of the local org (sfjwt_ext.testing.core.soql)."""

from __future__ import annotations

import pytest

from sfjwt_ext.testing.core import soql
from sfjwt_ext.testing.core.soql import (
    Aggregate,
    BoolOp,
    Comparison,
    DateLiteral,
    FieldRef,
    Literal,
    Not,
    SoqlError,
    Subquery,
    parse,
    tokenize,
)


def kinds(text: str) -> list:
    return [(t.kind, t.value) for t in tokenize(text)]


# --------------------------------------------------------------------------- tokenizer


def test_tokenizer_keywords_are_case_insensitive_and_idents_keep_case() -> None:
    assert kinds("select Id, Account.Owner.Name FrOm Contact") == [
        ("KEYWORD", "SELECT"), ("IDENT", "Id"), ("PUNCT", ","), ("IDENT", "Account.Owner.Name"),
        ("KEYWORD", "FROM"), ("IDENT", "Contact"), ("EOF", ""),
    ]


def test_tokenizer_strings_with_escapes() -> None:
    toks = tokenize(r"'it\'s a \"q\" \\ \n end'")
    assert toks[0].kind == "STRING"
    assert toks[0].value == "it's a \"q\" \\ \n end"


def test_tokenizer_like_escapes_keep_percent_literal() -> None:
    tok = tokenize(r"'50\% off_%'")[0]
    assert tok.value == r"50\% off_%"  # outside LIKE the backslash stays
    assert tok.like == r"50\% off_%"  # sqlite LIKE ... ESCAPE '\': \% literal, _ and % wildcards


def test_tokenizer_backslash_in_like_is_escaped() -> None:
    tok = tokenize(r"'a\\b%'")[0]
    assert tok.value == "a\\b%"
    assert tok.like == "a\\\\b%"


def test_tokenizer_numbers_dates_datetimes() -> None:
    toks = kinds("x = 42 AND y > -3.5 AND d = 2024-01-31 AND t < 2024-01-31T10:00:00Z AND u >= 2024-01-31T10:00:00.123+05:30")
    assert ("NUMBER", "42") in toks
    assert ("NUMBER", "-3.5") in toks
    assert ("DATE", "2024-01-31") in toks
    assert ("DATETIME", "2024-01-31T10:00:00Z") in toks
    assert ("DATETIME", "2024-01-31T10:00:00.123+05:30") in toks


def test_tokenizer_operators() -> None:
    ops = [v for k, v in kinds("a = 1 a != 1 a <> 1 a < 1 a > 1 a <= 1 a >= 1") if k == "OP"]
    assert ops == ["=", "!=", "<>", "<", ">", "<=", ">="]


@pytest.mark.parametrize("text", ["SELECT Id FROM Account WHERE Name = 'open", "SELECT Id FROM Account WHERE a = #",
                                  "SELECT Id FROM Account WHERE d = 2024-01-31T10:00", r"SELECT Id FROM A WHERE n = 'x\q'"])
def test_tokenizer_errors_are_malformed_query(text: str) -> None:
    with pytest.raises(SoqlError) as info:
        parse(text)
    assert info.value.error_code == "MALFORMED_QUERY"
    assert info.value.status == 400


# --------------------------------------------------------------------------- parser: good queries


def test_simple_select() -> None:
    q = parse("SELECT Id, Name FROM Account")
    assert q.sobject == "Account"
    assert [s.path for s in q.select] == [("Id",), ("Name",)]
    assert q.where is None and q.limit is None and not q.is_aggregate


def test_parent_paths_and_child_subquery() -> None:
    q = parse("SELECT Id, Account.Owner.Name, (SELECT Id, LastName FROM Contacts WHERE LastName != null "
              "ORDER BY LastName LIMIT 5) FROM Account")
    assert q.select[1] == FieldRef(("Account", "Owner", "Name"), pos=11)
    sub = q.select[2]
    assert isinstance(sub, Subquery)
    assert sub.query.sobject == "Contacts"
    assert sub.query.limit == 5
    assert sub.query.order_by[0].expr.path == ("LastName",)


def test_count_and_aggregates_with_aliases() -> None:
    q = parse("SELECT COUNT() FROM Account")
    assert q.is_count_only and q.is_aggregate
    q = parse("SELECT Industry, COUNT(Id) n, COUNT_DISTINCT(Type), SUM(AnnualRevenue), AVG(NumberOfEmployees) avg, "
              "MIN(CreatedDate), MAX(Name) FROM Account GROUP BY Industry HAVING COUNT(Id) > 1")
    aggs = [s for s in q.select if isinstance(s, Aggregate)]
    assert [(a.function, a.alias) for a in aggs] == [("COUNT", "n"), ("COUNT_DISTINCT", None), ("SUM", None),
                                                     ("AVG", "avg"), ("MIN", None), ("MAX", None)]
    assert q.group_by[0].path == ("Industry",)
    assert isinstance(q.having, Comparison) and isinstance(q.having.left, Aggregate)


def test_where_precedence_not_and_parentheses() -> None:
    q = parse("SELECT Id FROM Account WHERE (Name = 'a' OR Name = 'b') AND NOT Industry = null AND Type IN ('x', 'y')")
    assert isinstance(q.where, BoolOp) and q.where.op == "AND"
    first, second, third = q.where.items
    assert isinstance(first, BoolOp) and first.op == "OR"
    assert isinstance(second, Not)
    assert isinstance(third, Comparison) and third.op == "IN"
    assert [v.value for v in third.value] == ["x", "y"]


def test_not_in_like_and_operators() -> None:
    q = parse("SELECT Id FROM Account WHERE Name NOT IN ('a') AND Name LIKE 'Ac%' AND AnnualRevenue <> 5")
    ops = [c.op for c in q.where.items]
    assert ops == ["NOT IN", "LIKE", "!="]


def test_literals() -> None:
    q = parse("SELECT Id FROM Opportunity WHERE IsWon = true AND IsClosed = FALSE AND Amount = null "
              "AND CloseDate = 2024-01-31 AND CreatedDate > 2024-01-31T10:00:00Z AND Amount > 1.5 "
              "AND CloseDate = LAST_N_DAYS:30 AND CloseDate < TODAY")
    values = [c.value for c in q.where.items]
    assert values[0] == Literal("boolean", True, values[0].pos)
    assert values[1].value is False
    assert values[2].kind == "null"
    assert values[3].kind == "date" and values[3].value == "2024-01-31"
    assert values[4].kind == "datetime"
    assert values[5].value == 1.5
    assert values[6] == DateLiteral("LAST_N_DAYS", 30, values[6].pos)
    assert values[7].name == "TODAY" and values[7].n is None


def test_order_by_limit_offset_and_trailing_clauses() -> None:
    q = parse("SELECT Id FROM Account WITH SECURITY_ENFORCED ORDER BY Name DESC NULLS FIRST, Id ASC NULLS LAST, "
              "Industry LIMIT 10 OFFSET 20 FOR VIEW")
    assert [(o.descending, o.nulls_first) for o in q.order_by] == [(True, True), (False, False), (False, None)]
    assert [o.effective_nulls_first for o in q.order_by] == [True, False, True]
    assert (q.limit, q.offset, q.for_clause, q.with_clause) == (10, 20, "VIEW", "SECURITY_ENFORCED")
    assert parse("SELECT Id FROM Account FOR REFERENCE").for_clause == "REFERENCE"
    assert parse("select id from account order by name desc").order_by[0].descending is True


def test_semi_join() -> None:
    q = parse("SELECT Id FROM Account WHERE Id IN (SELECT AccountId FROM Contact WHERE LastName = 'x')")
    assert isinstance(q.where.value, Subquery)
    assert q.where.value.query.sobject == "Contact"


def test_alias_on_grouped_field() -> None:
    q = parse("SELECT Industry ind, COUNT(Id) FROM Account GROUP BY Industry")
    assert q.select[0].alias == "ind"


# --------------------------------------------------------------------------- parser: bad queries


def err(text: str) -> SoqlError:
    with pytest.raises(SoqlError) as info:
        parse(text)
    return info.value


def test_unexpected_token_message_like_salesforce() -> None:
    e = err("SELECT Id FORM Account")
    assert e.error_code == "MALFORMED_QUERY"
    assert e.message.endswith("ERROR at Row:1:Column:11\nunexpected token: 'FORM'")
    assert "\nSELECT Id FORM Account\n          ^\n" in e.message
    assert e.to_json() == [{"message": e.message, "errorCode": "MALFORMED_QUERY"}]


@pytest.mark.parametrize("text,token", [
    ("SELECT FROM Account", "FROM"),
    ("SELECT Id FROM Account WHERE", "<EOF>"),
    ("SELECT Id FROM Account LIMIT", "<EOF>"),
    ("SELECT Id FROM Account LIMIT x", "x"),
    ("SELECT Id, FROM Account", "FROM"),
    ("SELECT Id FROM Account WHERE Name = 'a' AND Name = 'b' OR Name = 'c'", "OR"),
    ("SELECT Id FROM Account ORDER Name", "Name"),
    ("SELECT Id FROM Account WHERE Name 'x'", "'x'"),
    ("SELECT Id FROM Account WHERE Name IN 'x'", "'x'"),
    ("SELECT Id FROM Account junk junk", "junk"),
    ("SELECT Id FROM Account ORDER BY Name NULLS MIDDLE", "MIDDLE"),
    ("SELECT Id FROM Account WHERE (Name = 'x'", "<EOF>"),
    ("SELECT Name n FROM Account", "n"),
])
def test_malformed(text: str, token: str) -> None:
    e = err(text)
    assert e.error_code == "MALFORMED_QUERY"
    assert e.message.endswith(f"unexpected token: '{token}'"), e.message


@pytest.mark.parametrize("text", [
    "", "   ", "SELECT Id FROM Account WHERE COUNT(Id) > 1", "SELECT Id FROM Account WHERE Name = :name",
    "SELECT SUM() FROM Opportunity", "SELECT FORMAT(Name FROM Account",
    "SELECT Id FROM Account GROUP BY ROLLUP(Name", "SELECT Id FROM Account GROUP BY ROLLUP(Name), Type",
    "SELECT Id FROM Account GROUP BY CUBE(Name, Type, Site, Industry)", "SELECT TYPEOF What ELSE Name END FROM Event",
    "SELECT Id, (SELECT Id, (SELECT Id, (SELECT Id, (SELECT Id, (SELECT Id FROM A) FROM B) FROM C) FROM D) FROM E) "
    "FROM Account",
    "SELECT Id FROM Account HAVING COUNT(Id) > 1",
])
def test_other_malformed(text: str) -> None:
    assert err(text).error_code == "MALFORMED_QUERY"


def test_error_position_on_later_line() -> None:
    e = err("SELECT Id\nFROM Account\nWHERE Name == 'x'")
    assert "ERROR at Row:3:Column:13" in e.message


def test_aggregate_signature_and_query_text_kept() -> None:
    q = parse("SELECT COUNT(Id) FROM Account")
    assert q.select[0].signature() == "COUNT(id)"
    assert q.text == "SELECT COUNT(Id) FROM Account"
    assert soql.AGGREGATE_FUNCTIONS >= {"COUNT", "SUM"}
