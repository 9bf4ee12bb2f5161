"""The web UI's pieces that need no server: translations, language choice, payload-field
tables from JSON schemas, SVG charts."""

from __future__ import annotations

import re
from pathlib import Path
from xml.etree import ElementTree

import pytest

from postback.web import charts
from postback.web.i18n import ENGLISH_NOTICES, TEXTS, pick_language, translator
from postback.web.i18n_catalog import in_language
from postback.web.schema_fields import schema_fields

WEB = Path(__file__).resolve().parents[2] / "src" / "postback" / "web"
LABEL = re.compile(r"""_\(\s*(?:"([^"]+)"|'([^']+)')\s*\)""")
MESSAGE = re.compile(r"""(?:Invalid|_problem\(request, \d+,)\(?\s*"([^"]+)\"""")


def visible_texts() -> set[str]:
    """Every string the templates and handlers pass through the translator."""
    found: set[str] = set()
    for path in WEB.rglob("*"):
        if path.suffix in (".html", ".py") and path.name != "i18n.py":
            text = path.read_text()
            found |= {a or b for a, b in LABEL.findall(text)}
            found |= set(MESSAGE.findall(text))
    return found


def test_every_visible_text_is_translated() -> None:
    texts = visible_texts()
    assert len(texts) > 150  # the scan itself works
    missing = sorted(t for t in texts if t not in TEXTS)
    assert missing == []
    notices = set(
        re.findall(r"[?&]notice=([a-z]+)", "".join(p.read_text() for p in WEB.glob("*.py")))
    )
    notices |= {"disabled", "enabled", "archived", "restored"}  # built from a condition
    for notice in notices:
        assert f"notice:{notice}" in TEXTS and f"notice:{notice}" in ENGLISH_NOTICES


def test_translations_are_not_left_in_english_by_mistake() -> None:
    same_everywhere = {k for k, (es, pt) in TEXTS.items() if es == pt == k}
    # Words that are the same in all three languages are few and known.
    assert same_everywhere <= {"Endpoints", "Endpoint", "URL", "Payload", "Portal", "Manual"}


@pytest.mark.parametrize(
    ("cookie", "header", "expected"),
    [
        (None, None, "en"),
        (None, "es-MX,es;q=0.9", "es"),
        (None, "pt-BR,pt;q=0.9,en;q=0.8", "pt-BR"),
        (None, "pt-PT", "pt-BR"),
        (None, "fr-FR, en;q=0.3, es;q=0.7", "es"),
        (None, "de", "en"),
        (None, "es;q=bogus, pt;q=0.5", "pt-BR"),
        ("pt-BR", "es", "pt-BR"),
        ("xx", "es", "es"),
    ],
)
def test_language_choice(cookie: str | None, header: str | None, expected: str) -> None:
    assert pick_language(cookie, header) == expected


def test_translator_falls_back_to_english() -> None:
    assert translator("es")("Endpoints") == "Endpoints"
    assert translator("es")("Message log") == "Historial de mensajes"
    assert translator("pt-BR")("Message log") == "Histórico de mensagens"
    assert translator("en")("notice:saved") == "Changes saved."
    assert translator("es")("never seen") == "never seen"


def test_schema_fields_flatten_nested_objects_and_arrays() -> None:
    schema = {
        "type": "object",
        "required": ["id"],
        "properties": {
            "id": {"type": "string", "maxLength": 32, "description": "Purchase code"},
            "buyer": {
                "type": "object",
                "properties": {"email": {"type": "string", "format": "email"}},
            },
            "items": {
                "type": "array",
                "items": {"type": "object", "properties": {"price": {"type": ["number", "null"]}}},
            },
            "status": {"enum": ["APPROVED", "REFUNDED"]},
        },
    }
    fields = {f.name: f for f in schema_fields(schema)}
    assert list(fields) == ["id", "buyer", "buyer.email", "items", "items[].price", "status"]
    assert fields["id"].max_length == 32 and fields["id"].required
    assert fields["id"].description == "Purchase code"
    assert fields["buyer.email"].format == "email" and not fields["buyer.email"].required
    assert fields["items[].price"].type == "number | null"
    assert fields["status"].type == "enum" and fields["status"].format == "APPROVED, REFUNDED"
    assert schema_fields(None) == [] and schema_fields({"type": "string"}) == []


def test_a_self_referencing_schema_stops() -> None:
    node: dict = {"type": "object", "properties": {}}
    node["properties"]["child"] = node  # a cycle, as $ref resolution can produce
    assert len(schema_fields(node)) == 8


def test_charts_are_well_formed_svg_scaled_to_the_tallest_bar() -> None:
    svg = charts.stacked_bars(
        [charts.Bar("10:00", 3, 1), charts.Bar("11:00", 0, 0), charts.Bar("12:00", 8, 0)],
        "Attempts <in> the last hour",
    )
    root = ElementTree.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    assert root.find(f"{ns}title").text == "Attempts <in> the last hour"
    heights = [float(r.get("height")) for r in root.iter(f"{ns}rect")]
    assert len(heights) == 3  # the empty bar draws nothing
    assert max(heights) == charts.HEIGHT - 2 * charts.PAD  # 8 is the tallest
    rows = charts.horizontal_bars([("success", 5, charts.GREEN), ("fail", 0, charts.RED)], "x")
    assert ElementTree.fromstring(rows).find(f"{ns}title").text == "x"
    assert ElementTree.fromstring(charts.stacked_bars([], "empty")) is not None


@pytest.mark.parametrize(
    ("translations", "lang", "expected"),
    [
        (None, "es", "default"),
        ({"es": "español", "pt-BR": "português"}, "es", "español"),
        ({"es": "español", "pt-BR": "português"}, "pt-BR", "português"),
        ({"es": "español"}, "en", "default"),
        ({"pt": "português"}, "pt-BR", "português"),  # the same language, another tag
        ({"PT-br": "português"}, "pt-BR", "português"),  # tags are case-blind
        ({"es-MX": "mexicano"}, "es", "mexicano"),
        ({"es": ""}, "es", "default"),  # an empty translation is none
        ({"en": "english", "es": "español"}, "en", "english"),
    ],
)
def test_operator_texts_in_the_readers_language(
    translations: dict[str, str] | None, lang: str, expected: str
) -> None:
    assert in_language("default", translations, lang) == expected
