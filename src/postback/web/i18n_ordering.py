"""Translations for ordered delivery: an endpoint's blocked ordering keys, retrying and
skipping a key's head, the dashboard's panel of keys blocked too long, and the event
type's ordering key path (merged into ``i18n.TEXTS``)."""

from __future__ import annotations

# English -> (Spanish, Brazilian Portuguese)
ORDERING_TEXTS: dict[str, tuple[str, str]] = {
    "Blocked ordering keys": ("Claves de orden bloqueadas", "Chaves de ordem bloqueadas"),
    "Deliveries go out one at a time per ordering key, in message order. A key is blocked "
    "while its first waiting message is not delivered: the later ones wait behind it.": (
        "Las entregas salen de una en una por clave de orden, en el orden de los mensajes. "
        "Una clave está bloqueada mientras su primer mensaje en espera no se entrega: los "
        "siguientes esperan detrás de él.",
        "As entregas saem uma de cada vez por chave de ordem, na ordem das mensagens. Uma "
        "chave fica bloqueada enquanto sua primeira mensagem em espera não é entregue: as "
        "seguintes esperam atrás dela.",
    ),
    "Ordering key": ("Clave de orden", "Chave de ordem"),
    "(no key)": ("(sin clave)", "(sem chave)"),
    "Blocked since": ("Bloqueada desde", "Bloqueada desde"),
    "Last attempt": ("Último intento", "Última tentativa"),
    "Actions": ("Acciones", "Ações"),
    "Retry now": ("Reintentar ahora", "Tentar agora"),
    "Skip": ("Omitir", "Pular"),
    "No ordering key is blocked.": (
        "Ninguna clave de orden está bloqueada.",
        "Nenhuma chave de ordem está bloqueada.",
    ),
    "Skip the message": ("Omitir el mensaje", "Pular a mensagem"),
    "Skip this message? It is not sent to this endpoint again, and the next message of its "
    "ordering key goes out.": (
        "¿Omitir este mensaje? No se vuelve a enviar a este endpoint y sale el siguiente "
        "mensaje de su clave de orden.",
        "Pular esta mensagem? Ela não é enviada de novo a este endpoint, e a próxima "
        "mensagem da sua chave de ordem sai.",
    ),
    "Yes, skip it": ("Sí, omitirlo", "Sim, pular"),
    "notice:retried": (
        "El mensaje en cabeza se envía ahora.",
        "A mensagem à frente é enviada agora.",
    ),
    "notice:skipped": (
        "Mensaje omitido: sale el siguiente de su clave.",
        "Mensagem pulada: a próxima da sua chave sai.",
    ),
    "Keys blocked too long": (
        "Claves bloqueadas demasiado tiempo",
        "Chaves bloqueadas há muito tempo",
    ),
    "No ordering key has been blocked longer than the alert setting.": (
        "Ninguna clave de orden lleva bloqueada más que el aviso configurado.",
        "Nenhuma chave de ordem está bloqueada há mais que o alerta configurado.",
    ),
    "Checked": ("Comprobado", "Verificado"),
    "Where the ordering key is in the payload (a dotted path, e.g. data.subscription.id)": (
        "Dónde está la clave de orden en el contenido (una ruta con puntos, p. ej. "
        "data.subscription.id)",
        "Onde está a chave de ordem no conteúdo (um caminho com pontos, p. ex. "
        "data.subscription.id)",
    ),
    "Write the ordering key's place as a dotted path, e.g. data.subscription.id.": (
        "Escriba el lugar de la clave de orden como una ruta con puntos, p. ej. "
        "data.subscription.id.",
        "Escreva o lugar da chave de ordem como um caminho com pontos, p. ex. "
        "data.subscription.id.",
    ),
}

ENGLISH_ORDERING_NOTICES = {
    "notice:retried": "The head message is being sent now.",
    "notice:skipped": "Message skipped: the next one of its key goes out.",
}
