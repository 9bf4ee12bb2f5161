"""Translations for the event catalog's search and its descriptions in other languages,
the test event's preview and recovery attempts (merged into ``i18n.TEXTS``); and how an
operator's text written in several languages is picked for a reader."""

from __future__ import annotations

# English -> (Spanish, Brazilian Portuguese)
CATALOG_TEXTS: dict[str, tuple[str, str]] = {
    "Recovery": ("Recuperación", "Recuperação"),
    "As this endpoint receives it: its field rules are applied.": (
        "Tal como lo recibe este endpoint: con sus reglas de campos aplicadas.",
        "Como este endpoint o recebe: com as suas regras de campos aplicadas.",
    ),
    "Optional: shown to readers of that language instead of the description above.": (
        "Opcional: se muestra a quien lee en ese idioma en lugar de la descripción de arriba.",
        "Opcional: mostrada a quem lê nesse idioma no lugar da descrição acima.",
    ),
    "Search event types": ("Buscar tipos de evento", "Buscar tipos de evento"),
    "event types shown": ("tipos de evento mostrados", "tipos de evento mostrados"),
    "No event type matches.": (
        "Ningún tipo de evento coincide.",
        "Nenhum tipo de evento corresponde.",
    ),
    "Other": ("Otros", "Outros"),
}


def in_language(default: str, translations: dict[str, str] | None, lang: str) -> str:
    """A text the operator wrote in several languages, for a reader of ``lang``: the
    translation for that tag, else one of the same language ("pt" for "pt-BR", "pt-PT" for
    "pt-BR"), else ``default``."""
    if not translations:
        return default
    by_tag = {tag.lower(): text for tag, text in translations.items() if text}
    base = lang.lower().split("-")[0]
    same_language = (text for tag, text in by_tag.items() if tag.split("-")[0] == base)
    return by_tag.get(lang.lower()) or next(same_language, default)
