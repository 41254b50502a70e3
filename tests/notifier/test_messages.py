"""Templates: every kind in both languages, locale number formats, no applicant ever."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.notifier.messages import TemplateError, Templates, format_number
from shared.events import RECOGNITION_KINDS, RecognitionFacts

TEMPLATES = Templates.load()
FACTS = RecognitionFacts(
    post_count=1,
    impressions=10_250,
    threshold=10_000,
    job_id="job-secret-77",
    colleague_id="emp-9",
    colleague_display_name="Bo Jensen",
)


@pytest.mark.parametrize(
    ("value", "da", "en"),
    [
        (0, "0", "0"),
        (999, "999", "999"),
        (1000, "1.000", "1,000"),
        (10_000, "10.000", "10,000"),
        (1_234_567, "1.234.567", "1,234,567"),
    ],
)
def test_numbers_per_locale(value: int, da: str, en: str) -> None:
    assert format_number(value, "da") == da
    assert format_number(value, "en") == en


@pytest.mark.parametrize("locale", ["da", "en"])
@pytest.mark.parametrize("kind", RECOGNITION_KINDS)
def test_every_kind_renders_in_both_languages(kind: str, locale: str) -> None:
    message = TEMPLATES.render(kind, locale, "Mette Holm", FACTS)  # type: ignore[arg-type]
    assert "Mette Holm" in message.text
    assert message.title
    assert "{" not in message.text + message.title
    # Nothing about an applicant or the job they applied for leaks into a message.
    assert "job-secret-77" not in message.text + message.title


def test_reach_milestone_reads_as_the_issue_asks() -> None:
    facts = RecognitionFacts(threshold=10_000, impressions=10_250)
    da = TEMPLATES.render("reach_milestone", "da", "Mette", facts)
    en = TEMPLATES.render("reach_milestone", "en", "Mette", facts)
    assert "har nu været vist 10.000 gange" in da.text
    assert "have now been seen 10,000 times" in en.text
    assert da.title == "10.000 visninger"
    assert en.title == "10,000 views"


def test_inspired_colleague_names_the_colleague_or_not() -> None:
    named = TEMPLATES.render("inspired_colleague", "en", "Mette", FACTS)
    assert "Bo Jensen started sharing" in named.text
    unnamed = TEMPLATES.render("inspired_colleague", "da", "Mette", RecognitionFacts())
    assert "en kollega er begyndt at dele" in unnamed.text


def test_digest_lists_every_item() -> None:
    message = TEMPLATES.render_digest(
        "da", "Mette", ["Dit første opslag er ude", "1.000 visninger"]
    )
    assert message.text == (
        "Mette, her er hvad din deling har givet (2):\n"
        "• Dit første opslag er ude\n• 1.000 visninger"
    )


def _write(folder: Path, en_extra: str = "", drop: str | None = None) -> None:
    for locale in ("da", "en"):
        text = (
            Path(__file__).parents[2] / f"services/notifier/templates/{locale}.toml"
        ).read_text()
        if drop:
            text = text.replace(f"[{drop}]", "[removed_kind]")
        if locale == "en":
            text += en_extra
        (folder / f"{locale}.toml").write_text(text)


def test_an_unknown_placeholder_is_refused(tmp_path: Path) -> None:
    _write(tmp_path, en_extra="")
    text = (
        (tmp_path / "en.toml")
        .read_text()
        .replace('text = "{name}, someone applied', 'text = "{applicant_name}, someone applied')
    )
    (tmp_path / "en.toml").write_text(text)
    with pytest.raises(TemplateError, match=r"\[first_applicant\] text uses \{applicant_name\}"):
        Templates.load(tmp_path)


def test_a_missing_kind_is_refused(tmp_path: Path) -> None:
    _write(tmp_path, drop="hire")
    with pytest.raises(TemplateError, match=r"the table \[hire\] is missing"):
        Templates.load(tmp_path)
