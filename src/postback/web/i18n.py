"""Translations of every visible label: English is the key, Spanish and Brazilian
Portuguese the values. A missing entry shows the English text (a test keeps none missing)."""

from __future__ import annotations

from collections.abc import Callable

from postback.web.i18n_catalog import CATALOG_TEXTS
from postback.web.i18n_enterprise import ENTERPRISE_TEXTS
from postback.web.i18n_forms import ENGLISH_NOTICES as FORM_NOTICES
from postback.web.i18n_forms import FORM_TEXTS
from postback.web.i18n_health import HEALTH_TEXTS
from postback.web.i18n_ordering import ENGLISH_ORDERING_NOTICES, ORDERING_TEXTS
from postback.web.i18n_pages import PAGE_TEXTS
from postback.web.i18n_reasons import REASON_TEXTS
from postback.web.i18n_storage import STORAGE_TEXTS

LANGUAGES = [("en", "English"), ("es", "Español"), ("pt-BR", "Português")]
DEFAULT = "en"

# English -> (Spanish, Brazilian Portuguese); the words are kept by topic in the
# i18n_*.py modules.
TEXTS: dict[str, tuple[str, str]] = {
    **PAGE_TEXTS,
    **FORM_TEXTS,
    **HEALTH_TEXTS,
    **ENTERPRISE_TEXTS,
    **CATALOG_TEXTS,
    **STORAGE_TEXTS,
    **REASON_TEXTS,
    **ORDERING_TEXTS,
}
ENGLISH_NOTICES = FORM_NOTICES | ENGLISH_ORDERING_NOTICES


def pick_language(cookie: str | None, accept_language: str | None) -> str:
    """The switcher's choice, else the best of ``Accept-Language`` we speak, else English."""
    codes = dict(LANGUAGES)
    if cookie in codes:
        return cookie  # type: ignore[return-value]
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        ranked.append((-quality, i, tag.strip().lower()))
    for _q, _i, tag in sorted(ranked):
        base = tag.split("-")[0]
        if base == "pt":
            return "pt-BR"  # the Portuguese we speak
        if base in ("es", "en"):
            return base
    return DEFAULT


def translator(lang: str) -> Callable[[str], str]:
    column = {"es": 0, "pt-BR": 1}.get(lang)

    def translate(text: str) -> str:
        if column is None:
            return ENGLISH_NOTICES.get(text, text)
        pair = TEXTS.get(text)
        return pair[column] if pair else ENGLISH_NOTICES.get(text, text)

    return translate
