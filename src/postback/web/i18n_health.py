"""Translations for an endpoint's delivery health: its circuit breaker, a receiver's
Retry-After pause and the cap on deliveries in flight (merged into ``i18n.TEXTS``)."""

from __future__ import annotations

# English -> (Spanish, Brazilian Portuguese)
HEALTH_TEXTS: dict[str, tuple[str, str]] = {
    "Circuit breaker": ("Disyuntor", "Disjuntor"),
    "Circuit closed": ("Circuito cerrado", "Circuito fechado"),
    "Circuit open": ("Circuito abierto", "Circuito aberto"),
    "Circuit half-open": ("Circuito semiabierto", "Circuito semiaberto"),
    "Too many attempts failed in a row: deliveries wait, and at the next probe one is "
    "sent to test the endpoint.": (
        "Demasiados intentos fallaron seguidos: las entregas esperan y, en el próximo "
        "sondeo, se envía una para probar el endpoint.",
        "Tentativas demais falharam seguidas: as entregas aguardam e, na próxima "
        "sondagem, uma é enviada para testar o endpoint.",
    ),
    "One delivery is out as a probe; if it succeeds, deliveries resume.": (
        "Una entrega salió como sondeo; si tiene éxito, las entregas se reanudan.",
        "Uma entrega saiu como sondagem; se tiver sucesso, as entregas são retomadas.",
    ),
    "Circuit state since": ("Estado del circuito desde", "Estado do circuito desde"),
    "Next probe": ("Próximo sondeo", "Próxima sondagem"),
    "Probe in progress": ("Sondeo en curso", "Sondagem em andamento"),
    "Failures in a row": ("Fallos seguidos", "Falhas seguidas"),
    "Paused": ("En pausa", "Em pausa"),
    "Paused until": ("En pausa hasta", "Em pausa até"),
    "The receiver asked us to wait (Retry-After).": (
        "El receptor pidió que esperemos (Retry-After).",
        "O receptor pediu que esperemos (Retry-After).",
    ),
    "Max in flight": ("Máximo en curso", "Máximo em andamento"),
    "Server default": ("Valor del servidor", "Padrão do servidor"),
    "Max in flight (deliveries sent at once; empty for the server default)": (
        "Máximo en curso (entregas enviadas a la vez; vacío: el valor del servidor)",
        "Máximo em andamento (entregas enviadas ao mesmo tempo; vazio: o padrão do servidor)",
    ),
    "Max in flight is a whole number from 1 to 10000.": (
        "El máximo en curso es un número entero de 1 a 10000.",
        "O máximo em andamento é um número inteiro de 1 a 10000.",
    ),
    # the operator's overview
    "Open circuits": ("Circuitos abiertos", "Circuitos abertos"),
    "Paused endpoints": ("Endpoints en pausa", "Endpoints em pausa"),
    "No circuit is open.": ("Ningún circuito está abierto.", "Nenhum circuito está aberto."),
}
