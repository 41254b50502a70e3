"""The spreadsheet import rules (services/ingest/imports.py, CONTRACT §11), without I/O."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.ingest import imports
from shared.events import EmployeeUpsertedEvent, JobUpsertedEvent

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
HEADER = "employee_id;display_name;ambassador;locale;notify_channel;notify_address\r\n"


def parse(text: str | bytes, kind: imports.Kind = "employees", max_rows: int = 1000):
    body = text.encode() if isinstance(text, str) else text
    return imports.parse(body, kind, NOW, max_rows)


def test_excel_danish_semicolons_bom_crlf_and_quotes() -> None:
    body = (
        "\ufeff" + HEADER + 'e1;"Søren Ærø; Åse";ja;da;slack;U1\r\n'
        'e2;"Line ""Lis"" Øst";Nej;en;;\r\n'
        ";;;;;\r\n"  # an empty trailing row
    )
    parsed = parse(body)
    assert parsed.errors == []
    assert parsed.rows == 2
    first, second = parsed.events
    assert isinstance(first, EmployeeUpsertedEvent)
    assert first.data.display_name == "Søren Ærø; Åse"
    assert first.data.ambassador is True
    assert first.data.locale == "da"
    assert first.data.notify is not None
    assert first.data.notify.channel == "slack"
    assert first.source == "urn:ripples:import"
    assert first.time == NOW
    assert second.data.display_name == 'Line "Lis" Øst'
    assert second.data.notify is None


def test_google_sheets_commas_without_bom_and_lf() -> None:
    body = "employee_id,display_name,recognition_opt_out,followers\ne1,Ærlige Åge,TRUE,120\n"
    [event] = parse(body).events
    assert event.data.recognition_opt_out is True
    assert event.data.followers == 120


def test_the_same_row_gives_the_same_id_and_a_change_another() -> None:
    a = parse(HEADER + "e1;Åse;ja;da;;\r\n").events[0].id
    b = parse(HEADER.replace(";", ",") + "e1,Åse,yes,da,,\n").events[0].id
    c = parse(HEADER + "e1;Åse;nej;da;;\r\n").events[0].id
    assert a == b != c
    assert a.startswith("import:")
    assert len(a) == len("import:") + 64


def test_every_bad_line_and_column_is_named_and_nothing_is_returned() -> None:
    body = (
        HEADER + "e1;Anne;ja;da;;\r\n"
        "e2;;ja;da;;\r\n"  # line 3: display_name missing
        "e3;Bo;måske;fr;;\r\n"  # line 4: ambassador and locale
        "e4;Carl;nej;en;slack;\r\n"  # line 5: slack without an address
        "e1;Dorte;nej;en;;\r\n"  # line 6: e1 again
    )
    parsed = parse(body)
    assert parsed.events == []
    found = {(e.line, e.column) for e in parsed.errors}
    assert found == {
        (3, "display_name"),
        (4, "ambassador"),
        (5, "notify_address"),
        (6, "employee_id"),
    }
    # (locale of line 4 is reported once its boolean is fixed: one error per cell kind pass)


def test_a_bad_locale_names_its_column() -> None:
    [error] = parse(HEADER + "e1;Anne;ja;fr;;\r\n").errors
    assert (error.line, error.column) == (2, "locale")


def test_line_numbers_count_records_as_a_spreadsheet_does() -> None:
    body = HEADER + 'e1;"two\r\nlines";ja;da;;\r\ne2;Bo;x;da;;\r\n'
    [error] = parse(body).errors
    assert (error.line, error.column) == (3, "ambassador")


def test_the_header_is_checked() -> None:
    errors = parse("employee_id;name\r\ne1;x\r\n").errors
    assert {(e.line, e.column) for e in errors} == {(1, "name"), (1, "display_name")}
    assert [e.line for e in parse("").errors] == [1]


def test_a_file_that_is_not_utf8_names_the_line() -> None:
    body = (HEADER + "e1;Anne;ja;da;;\r\n").encode() + "e2;Søren;ja;da;;\r\n".encode("cp1252")
    [error] = parse(body).errors
    assert error.line == 3
    assert "UTF-8" in error.detail


def test_too_many_rows() -> None:
    with pytest.raises(imports.TooManyRows):
        parse(HEADER + "e1;A;;;;\r\ne2;B;;;;\r\n", max_rows=1)


def test_jobs() -> None:
    body = "job_id;title;family;hard_to_recruit\r\nj1;Sygeplejerske;Sundhed;ja\r\nj2;;;\r\n"
    first, second = parse(body, "jobs").events
    assert isinstance(first, JobUpsertedEvent)
    assert first.data.hard_to_recruit is True
    assert first.data.family == "Sundhed"
    assert second.data.title is None
    assert second.data.hard_to_recruit is False


@pytest.mark.parametrize("value", ["true", "Ja", "YES", "1", "SAND"])
def test_true_values(value: str) -> None:
    assert imports.parse_bool(value) is True


@pytest.mark.parametrize("value", ["false", "nej", "No", "0", "FALSK"])
def test_false_values(value: str) -> None:
    assert imports.parse_bool(value) is False
