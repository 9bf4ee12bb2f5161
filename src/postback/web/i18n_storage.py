"""Translations for the dashboard's storage and retention panel (merged into
``i18n.TEXTS``)."""

from __future__ import annotations

# English -> (Spanish, Brazilian Portuguese)
STORAGE_TEXTS: dict[str, tuple[str, str]] = {
    "Storage and retention": ("Almacenamiento y retención", "Armazenamento e retenção"),
    "Last retention pass": ("Última pasada de retención", "Última passagem de retenção"),
    "removed": ("eliminados", "removidos"),
    "messages": ("mensajes", "mensagens"),
    "deliveries": ("entregas", "entregas"),
    "attempts": ("intentos", "tentativas"),
    "to be continued": ("continuará", "continua na próxima"),
    "Table": ("Tabla", "Tabela"),
    "Rows": ("Filas", "Linhas"),
    "Size": ("Tamaño", "Tamanho"),
    "Oldest record": ("Registro más antiguo", "Registro mais antigo"),
    "No retention pass has run yet.": (
        "Todavía no se ha hecho ninguna pasada de retención.",
        "Nenhuma passagem de retenção foi feita ainda.",
    ),
}
