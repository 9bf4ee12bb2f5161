"""Translations for the forms: the endpoint form's payload rules, the errors a form shows,
and the notice after an action (merged into ``i18n.TEXTS``; a notice's English is in
``ENGLISH_NOTICES``, since its key is a code, not English text)."""

from __future__ import annotations

# English -> (Spanish, Brazilian Portuguese)
FORM_TEXTS: dict[str, tuple[str, str]] = {
    # payload rules on the endpoint form
    "Payload rules (optional)": (
        "Reglas sobre el contenido (opcional)",
        "Regras sobre o conteúdo (opcional)",
    ),
    "Payload filter (JSON; empty: every message)": (
        "Filtro del contenido (JSON; vacío: todos los mensajes)",
        "Filtro do conteúdo (JSON; vazio: todas as mensagens)",
    ),
    "Only messages whose payload matches, e.g.": (
        "Solo los mensajes cuyo contenido coincide, p. ej.",
        "Só as mensagens cujo conteúdo corresponde, p. ex.",
    ),
    "Payload filter": ("Filtro del contenido", "Filtro do conteúdo"),
    "Fields sent": ("Campos enviados", "Campos enviados"),
    "The whole payload": ("Todo el contenido", "Todo o conteúdo"),
    "Only these fields": ("Solo estos campos", "Só estes campos"),
    "Every field but these": ("Todos los campos menos estos", "Todos os campos menos estes"),
    "Fields, one JSON pointer a line (e.g. /data/buyer)": (
        "Campos, un puntero JSON por línea (p. ej. /data/buyer)",
        "Campos, um ponteiro JSON por linha (p. ex. /data/buyer)",
    ),
    "The payload filter must be JSON.": (
        "El filtro del contenido debe ser JSON.",
        "O filtro do conteúdo deve ser JSON.",
    ),
    "The payload filter is not valid.": (
        "El filtro del contenido no es válido.",
        "O filtro do conteúdo não é válido.",
    ),
    "List at least one field, as a JSON pointer such as /data/buyer.": (
        "Indica al menos un campo, como puntero JSON, p. ej. /data/buyer.",
        "Indique pelo menos um campo, como ponteiro JSON, p. ex. /data/buyer.",
    ),
    "The list of fields is not valid.": (
        "La lista de campos no es válida.",
        "A lista de campos não é válida.",
    ),
    "Back": ("Volver", "Voltar"),
    "Not found.": ("No encontrado.", "Não encontrado."),
    "This form has expired or was not sent by us.": (
        "Este formulario caducó o no lo enviamos nosotros.",
        "Este formulário expirou ou não foi enviado por nós.",
    ),
    # form errors
    "Enter a full http:// or https:// URL.": (
        "Escribe una URL completa http:// o https://.",
        "Digite uma URL completa http:// ou https://.",
    ),
    "This server only delivers to https:// URLs.": (
        "Este servidor solo envía a URLs https://.",
        "Este servidor só envia para URLs https://.",
    ),
    "The rate limit is a whole number of messages per second.": (
        "El límite de envío es un número entero de mensajes por segundo.",
        "O limite de envio é um número inteiro de mensagens por segundo.",
    ),
    "Name the product this endpoint is for.": (
        "Indica el producto de este endpoint.",
        "Informe o produto deste endpoint.",
    ),
    "Write one header a line, as Name: value.": (
        "Escribe un encabezado por línea, como Nombre: valor.",
        "Escreva um cabeçalho por linha, como Nome: valor.",
    ),
    "A header is not allowed: check its name and value.": (
        "Un encabezado no está permitido: revisa su nombre y valor.",
        "Um cabeçalho não é permitido: confira o nome e o valor.",
    ),
    "Enter a date and time.": ("Indica una fecha y hora.", "Informe uma data e hora."),
    "Name the event type with letters, digits, '-', '_' or '.', e.g. invoice.paid.": (
        "Nombra el tipo de evento con letras, dígitos, '-', '_' o '.', p. ej. invoice.paid.",
        "Dê um nome ao tipo de evento com letras, dígitos, '-', '_' ou '.', ex. invoice.paid.",
    ),
    "The schema is not a valid JSON Schema.": (
        "El esquema no es un JSON Schema válido.",
        "O esquema não é um JSON Schema válido.",
    ),
    "The description is too long.": (
        "La descripción es demasiado larga.",
        "A descrição é longa demais.",
    ),
    "Choose at most 1000 event types, each named as in the catalog.": (
        "Elige como máximo 1000 tipos de evento, cada uno con su nombre del catálogo.",
        "Escolha no máximo 1000 tipos de evento, cada um com o nome do catálogo.",
    ),
    "Name the product with letters, digits, '-', '_' or '.'.": (
        "Nombra el producto con letras, dígitos, '-', '_' o '.'.",
        "Dê um nome ao produto com letras, dígitos, '-', '_' ou '.'.",
    ),
    "Name the channel with letters, digits, '-', '_' or '.'.": (
        "Nombra el canal con letras, dígitos, '-', '_' o '.'.",
        "Dê um nome ao canal com letras, dígitos, '-', '_' ou '.'.",
    ),
    "Text may not contain the NUL character.": (
        "El texto no puede contener el carácter NUL.",
        "O texto não pode conter o caractere NUL.",
    ),
    "A value in the form is not allowed.": (
        "Un valor del formulario no está permitido.",
        "Um valor do formulário não é permitido.",
    ),
    "The schema is not valid JSON.": (
        "El esquema no es JSON válido.",
        "O esquema não é JSON válido.",
    ),
    "The examples are not valid JSON.": (
        "Los ejemplos no son JSON válido.",
        "Os exemplos não são JSON válido.",
    ),
    "The schema must be a JSON object.": (
        "El esquema debe ser un objeto JSON.",
        "O esquema deve ser um objeto JSON.",
    ),
    # notices after an action
    "notice:created": ("Creado.", "Criado."),
    "notice:saved": ("Cambios guardados.", "Alterações salvas."),
    "notice:disabled": ("Endpoint desactivado.", "Endpoint desativado."),
    "notice:enabled": ("Endpoint activado.", "Endpoint ativado."),
    "notice:deleted": ("Endpoint eliminado.", "Endpoint excluído."),
    "notice:rotated": ("Secreto rotado.", "Segredo trocado."),
    "notice:sent": ("Evento de prueba enviado.", "Evento de teste enviado."),
    "notice:resent": ("Reenvío en cola.", "Reenvio na fila."),
    "notice:recovering": (
        "Recuperando los mensajes fallidos.",
        "Recuperando as mensagens com falha.",
    ),
    "notice:archived": ("Tipo de evento archivado.", "Tipo de evento arquivado."),
    "notice:restored": ("Tipo de evento restaurado.", "Tipo de evento restaurado."),
}

ENGLISH_NOTICES = {
    "notice:created": "Created.",
    "notice:saved": "Changes saved.",
    "notice:disabled": "Endpoint disabled.",
    "notice:enabled": "Endpoint enabled.",
    "notice:deleted": "Endpoint deleted.",
    "notice:rotated": "Secret rotated.",
    "notice:sent": "Test event sent.",
    "notice:resent": "Resend queued.",
    "notice:recovering": "Recovering failed messages.",
    "notice:archived": "Event type archived.",
    "notice:restored": "Event type restored.",
}
