"""Translations of what an endpoint gets and of reasons (web/describe.py): why an endpoint
is disabled, why a message did not go to an endpoint (merged into ``i18n.TEXTS``)."""

from __future__ import annotations

# English -> (Spanish, Brazilian Portuguese)
REASON_TEXTS: dict[str, tuple[str, str]] = {
    "Disabled automatically: every delivery failed since {since} ({attempts} failed attempts).": (
        "Desactivado automáticamente: todas las entregas fallaron desde el {since} "
        "({attempts} intentos fallidos).",
        "Desativado automaticamente: todas as entregas falharam desde {since} "
        "({attempts} tentativas com falha).",
    ),
    "Disabled automatically: every delivery failed since {since}.": (
        "Desactivado automáticamente: todas las entregas fallaron desde el {since}.",
        "Desativado automaticamente: todas as entregas falharam desde {since}.",
    ),
    "Disabled by request.": ("Desactivado a pedido.", "Desativado a pedido."),
    "Not sent: the endpoint is not subscribed to {event_type}.": (
        "No enviado: el endpoint no está suscrito a {event_type}.",
        "Não enviado: o endpoint não está inscrito em {event_type}.",
    ),
    "Not sent: the message names no product; the endpoint is for product {p}.": (
        "No enviado: el mensaje no indica producto; el endpoint es para el producto {p}.",
        "Não enviado: a mensagem não indica produto; o endpoint é para o produto {p}.",
    ),
    "Not sent: the message is for product {found}; the endpoint for product {p}.": (
        "No enviado: el mensaje es del producto {found}; el endpoint, del producto {p}.",
        "Não enviado: a mensagem é do produto {found}; o endpoint, do produto {p}.",
    ),
    "Not sent: the message has none of the endpoint's channels ({channels}).": (
        "No enviado: el mensaje no tiene ninguno de los canales del endpoint ({channels}).",
        "Não enviado: a mensagem não tem nenhum dos canais do endpoint ({channels}).",
    ),
    "Not sent: the payload filter did not match ({clause}).": (
        "No enviado: el filtro del contenido no coincidió ({clause}).",
        "Não enviado: o filtro do conteúdo não correspondeu ({clause}).",
    ),
    "Not sent: the endpoint is disabled.": (
        "No enviado: el endpoint está desactivado.",
        "Não enviado: o endpoint está desativado.",
    ),
    "Not sent: the endpoint was created after the message.": (
        "No enviado: el endpoint se creó después del mensaje.",
        "Não enviado: o endpoint foi criado depois da mensagem.",
    ),
    "Not sent: when the message arrived the endpoint was disabled or subscribed otherwise.": (
        "No enviado: cuando llegó el mensaje, el endpoint estaba desactivado o suscrito "
        "a otra cosa.",
        "Não enviado: quando a mensagem chegou, o endpoint estava desativado ou inscrito "
        "em outra coisa.",
    ),
    # what an endpoint gets
    "What it gets": ("Qué recibe", "O que recebe"),
    "It gets these event types: {names}.": (
        "Recibe estos tipos de evento: {names}.",
        "Recebe estes tipos de evento: {names}.",
    ),
    "It gets every event type.": (
        "Recibe todos los tipos de evento.",
        "Recebe todos os tipos de evento.",
    ),
    "Only product {product}.": ("Solo el producto {product}.", "Só o produto {product}."),
    "Only messages on the channels {channels}.": (
        "Solo los mensajes de los canales {channels}.",
        "Só as mensagens dos canais {channels}.",
    ),
    "Only product {product} (by its payload filter).": (
        "Solo el producto {product} (por su filtro del contenido).",
        "Só o produto {product} (pelo seu filtro do conteúdo).",
    ),
    "The products its payload filter lets through.": (
        "Los productos que deja pasar su filtro del contenido.",
        "Os produtos que o seu filtro do conteúdo deixa passar.",
    ),
    "Every product.": ("Todos los productos.", "Todos os produtos."),
    "Only messages where {condition}.": (
        "Solo los mensajes en que {condition}.",
        "Só as mensagens em que {condition}.",
    ),
    "These fields are removed before sending: {fields}.": (
        "Estos campos se quitan antes del envío: {fields}.",
        "Estes campos são removidos antes do envio: {fields}.",
    ),
    "Only these fields are sent: {fields}.": (
        "Solo se envían estos campos: {fields}.",
        "Só estes campos são enviados: {fields}.",
    ),
    "The whole payload is sent.": ("Se envía todo el contenido.", "Todo o conteúdo é enviado."),
    " and ": (" y ", " e "),
    " or ": (" o ", " ou "),
    "{path} is {value}": ("{path} es {value}", "{path} é {value}"),
    "{path} is not {value}": ("{path} no es {value}", "{path} não é {value}"),
    "{path} is one of {value}": ("{path} es uno de {value}", "{path} é um de {value}"),
    "{path} is none of {value}": (
        "{path} no es ninguno de {value}",
        "{path} não é nenhum de {value}",
    ),
    "{path} is more than {value}": ("{path} es mayor que {value}", "{path} é maior que {value}"),
    "{path} is at least {value}": ("{path} es al menos {value}", "{path} é pelo menos {value}"),
    "{path} is less than {value}": ("{path} es menor que {value}", "{path} é menor que {value}"),
    "{path} is at most {value}": ("{path} es como máximo {value}", "{path} é no máximo {value}"),
    "{path} is present": ("{path} está presente", "{path} está presente"),
    "{path} is absent": ("{path} está ausente", "{path} está ausente"),
    # the product on endpoint pages and forms, the operator's events on the dashboard
    "Product": ("Producto", "Produto"),
    "Product id": ("Id del producto", "Id do produto"),
    "Channels": ("Canales", "Canais"),
    "Where the product id is in the payload (a dotted path, e.g. data.product.id)": (
        "Dónde está el id del producto en el contenido (una ruta con puntos, p. ej. "
        "data.product.id)",
        "Onde está o id do produto no conteúdo (um caminho com pontos, p. ex. data.product.id)",
    ),
    "Write the product's place as a dotted path, e.g. data.product.id.": (
        "Escribe el lugar del producto como una ruta con puntos, p. ej. data.product.id.",
        "Escreva o lugar do produto como um caminho com pontos, p. ex. data.product.id.",
    ),
    "Operational webhooks": ("Webhooks operativos", "Webhooks operacionais"),
    "Operator endpoints": ("Endpoints del operador", "Endpoints do operador"),
    "Recent operator events": (
        "Eventos recientes para el operador",
        "Eventos recentes para o operador",
    ),
    "No operational webhook endpoint yet: register one to be told when an endpoint is "
    "disabled or its circuit opens (see the README).": (
        "Aún no hay endpoint de webhooks operativos: registre uno para enterarse cuando se "
        "desactive un endpoint o se abra su circuito (vea el README).",
        "Ainda não há endpoint de webhooks operacionais: registre um para saber quando um "
        "endpoint for desativado ou seu circuito abrir (veja o README).",
    ),
    "No operator event yet.": (
        "Aún no hay eventos para el operador.",
        "Ainda não há eventos para o operador.",
    ),
    "Event": ("Evento", "Evento"),
    "Details": ("Detalles", "Detalhes"),
}
