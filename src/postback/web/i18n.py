"""Translations of every visible label: English is the key, Spanish and Brazilian
Portuguese the values. A missing entry shows the English text (a test keeps none missing)."""

from __future__ import annotations

from collections.abc import Callable

from postback.web.i18n_enterprise import ENTERPRISE_TEXTS
from postback.web.i18n_health import HEALTH_TEXTS
from postback.web.i18n_reasons import REASON_TEXTS

LANGUAGES = [("en", "English"), ("es", "Español"), ("pt-BR", "Português")]
DEFAULT = "en"

# English -> (Spanish, Brazilian Portuguese)
TEXTS: dict[str, tuple[str, str]] = {
    # navigation and page furniture
    "Skip to content": ("Saltar al contenido", "Pular para o conteúdo"),
    "Main": ("Principal", "Principal"),
    "Language": ("Idioma", "Idioma"),
    "Dashboard": ("Panel", "Painel"),
    "Overview": ("Resumen", "Visão geral"),
    "Endpoints": ("Endpoints", "Endpoints"),
    "Endpoint": ("Endpoint", "Endpoint"),
    "Message log": ("Historial de mensajes", "Histórico de mensagens"),
    "Event catalog": ("Catálogo de eventos", "Catálogo de eventos"),
    "Log out": ("Cerrar sesión", "Sair"),
    "Log in": ("Iniciar sesión", "Entrar"),
    "Error": ("Error", "Erro"),
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
    # entering the portal
    "Webhook portal": ("Portal de webhooks", "Portal de webhooks"),
    "Opening the portal…": ("Abriendo el portal…", "Abrindo o portal…"),
    "Access token": ("Token de acceso", "Token de acesso"),
    "Open": ("Abrir", "Abrir"),
    "Your session has ended. Open the portal again from the link you were given.": (
        "Tu sesión terminó. Vuelve a abrir el portal con el enlace que recibiste.",
        "Sua sessão terminou. Abra o portal novamente pelo link que você recebeu.",
    ),
    "This link is not valid or has expired. Ask for a new one.": (
        "Este enlace no es válido o caducó. Pide uno nuevo.",
        "Este link não é válido ou expirou. Peça um novo.",
    ),
    "You have logged out.": ("Cerraste la sesión.", "Você saiu."),
    # endpoints
    "Add endpoint": ("Agregar endpoint", "Adicionar endpoint"),
    "Edit endpoint": ("Editar endpoint", "Editar endpoint"),
    "Delete endpoint": ("Eliminar endpoint", "Excluir endpoint"),
    "No endpoints yet. Add the URL where you want to receive webhooks.": (
        "Aún no hay endpoints. Agrega la URL donde quieres recibir los webhooks.",
        "Ainda não há endpoints. Adicione a URL onde você quer receber os webhooks.",
    ),
    "URL": ("URL", "URL"),
    "State": ("Estado", "Estado"),
    "Last status": ("Último estado", "Último status"),
    "Failure streak": ("Fallos seguidos", "Falhas seguidas"),
    "Event types": ("Tipos de evento", "Tipos de evento"),
    "Event type": ("Tipo de evento", "Tipo de evento"),
    "All event types": ("Todos los tipos de evento", "Todos os tipos de evento"),
    "Disabled": ("Desactivado", "Desativado"),
    "Enabled": ("Activo", "Ativo"),
    "Failing": ("Fallando", "Falhando"),
    "Never attempted": ("Sin intentos", "Sem tentativas"),
    "Description": ("Descripción", "Descrição"),
    "None ticked: every event type.": (
        "Ninguno marcado: todos los tipos de evento.",
        "Nenhum marcado: todos os tipos de evento.",
    ),
    "The catalog is empty.": ("El catálogo está vacío.", "O catálogo está vazio."),
    "Products": ("Productos", "Produtos"),
    "All products": ("Todos los productos", "Todos os produtos"),
    "One product": ("Un producto", "Um produto"),
    "The product's id as the platform's messages name it; they need not send channels.": (
        "El id del producto tal como lo nombran los mensajes de la plataforma; no hace falta "
        "que envíen canales.",
        "O id do produto como as mensagens da plataforma o nomeiam; elas não precisam enviar "
        "canais.",
    ),
    "Rate limit": ("Límite de envío", "Limite de envio"),
    "Rate limit (messages per second, empty for none)": (
        "Límite de envío (mensajes por segundo, vacío para ninguno)",
        "Limite de envio (mensagens por segundo, vazio para nenhum)",
    ),
    "Custom headers (one per line, Name: value)": (
        "Encabezados propios (uno por línea, Nombre: valor)",
        "Cabeçalhos próprios (um por linha, Nome: valor)",
    ),
    "Save": ("Guardar", "Salvar"),
    "Cancel": ("Cancelar", "Cancelar"),
    "Edit": ("Editar", "Editar"),
    "Enable": ("Activar", "Ativar"),
    "Disable": ("Desactivar", "Desativar"),
    "Delete": ("Eliminar", "Excluir"),
    "Delete this endpoint? Its delivery history goes with it.": (
        "¿Eliminar este endpoint? Su historial de envíos se elimina con él.",
        "Excluir este endpoint? O histórico de envios é excluído junto.",
    ),
    "Yes, delete it": ("Sí, eliminarlo", "Sim, excluir"),
    "Created": ("Creado", "Criado"),
    "None": ("Ninguno", "Nenhum"),
    "Signing secret": ("Secreto de firma", "Segredo de assinatura"),
    "Reveal secret": ("Mostrar secreto", "Mostrar segredo"),
    "Hide": ("Ocultar", "Ocultar"),
    "Rotate secret": ("Rotar secreto", "Trocar segredo"),
    "After a rotation the old secret keeps signing beside the new one for a while, so you "
    "can switch without losing a delivery.": (
        "Tras una rotación, el secreto anterior sigue firmando junto al nuevo durante un "
        "tiempo, para que cambies sin perder ningún envío.",
        "Depois de uma troca, o segredo antigo continua assinando junto com o novo por um "
        "tempo, para você mudar sem perder nenhum envio.",
    ),
    "Deliveries by status": ("Envíos por estado", "Envios por status"),
    "Send test event": ("Enviar evento de prueba", "Enviar evento de teste"),
    "Show example": ("Ver ejemplo", "Ver exemplo"),
    "Example payload": ("Payload de ejemplo", "Payload de exemplo"),
    "Send example": ("Enviar ejemplo", "Enviar exemplo"),
    "Recover failed messages": ("Recuperar mensajes fallidos", "Recuperar mensagens com falha"),
    "Failed since (UTC)": ("Fallidos desde (UTC)", "Com falha desde (UTC)"),
    "Recover": ("Recuperar", "Recuperar"),
    "Recent attempts": ("Intentos recientes", "Tentativas recentes"),
    # attempts and messages
    "Time": ("Hora", "Horário"),
    "Status code": ("Código de estado", "Código de status"),
    "Duration": ("Duración", "Duração"),
    "Trigger": ("Origen", "Origem"),
    "Message": ("Mensaje", "Mensagem"),
    "No response": ("Sin respuesta", "Sem resposta"),
    "Manual": ("Manual", "Manual"),
    "Scheduled": ("Programado", "Programado"),
    "No attempts yet.": ("Aún no hay intentos.", "Ainda não há tentativas."),
    "All": ("Todos", "Todos"),
    "Status": ("Estado", "Status"),
    "From": ("Desde", "De"),
    "To": ("Hasta", "Até"),
    "Filter": ("Filtrar", "Filtrar"),
    "Deliveries": ("Envíos", "Envios"),
    "Older messages": ("Mensajes anteriores", "Mensagens anteriores"),
    "No messages match.": ("Ningún mensaje coincide.", "Nenhuma mensagem corresponde."),
    "Payload": ("Payload", "Payload"),
    "The payload is no longer kept.": (
        "El payload ya no se conserva.",
        "O payload não é mais mantido.",
    ),
    "Next attempt": ("Próximo intento", "Próxima tentativa"),
    "Resend": ("Reenviar", "Reenviar"),
    "No endpoint was subscribed to this message.": (
        "Ningún endpoint estaba suscrito a este mensaje.",
        "Nenhum endpoint estava inscrito nesta mensagem.",
    ),
    "Attempts": ("Intentos", "Tentativas"),
    "Request headers": ("Encabezados enviados", "Cabeçalhos enviados"),
    "different on every attempt, not stored": (
        "distintos en cada intento, no se guardan",
        "diferentes a cada tentativa, não são guardados",
    ),
    "Response body": ("Cuerpo de la respuesta", "Corpo da resposta"),
    "success": ("éxito", "sucesso"),
    "pending": ("pendiente", "pendente"),
    "fail": ("fallido", "falha"),
    "sending": ("enviando", "enviando"),
    "canceled": ("cancelado", "cancelado"),
    # catalog
    "Deprecated": ("Obsoleto", "Obsoleto"),
    "Payload fields": ("Campos del payload", "Campos do payload"),
    "Name": ("Nombre", "Nome"),
    "Type": ("Tipo", "Tipo"),
    "Format": ("Formato", "Formato"),
    "Max length": ("Longitud máxima", "Tamanho máximo"),
    "required": ("obligatorio", "obrigatório"),
    "No schema: the payload is free-form.": (
        "Sin esquema: el payload es libre.",
        "Sem esquema: o payload é livre.",
    ),
    "Example": ("Ejemplo", "Exemplo"),
    # dashboard
    "Operator login": ("Acceso de operador", "Acesso do operador"),
    "Operator token": ("Token de operador", "Token de operador"),
    "That token is not a valid operator token.": (
        "Ese token no es un token de operador válido.",
        "Esse token não é um token de operador válido.",
    ),
    "Create one with: postback token create": (
        "Crea uno con: postback token create",
        "Crie um com: postback token create",
    ),
    "Find a message by id or eventId": (
        "Buscar un mensaje por id o eventId",
        "Buscar uma mensagem por id ou eventId",
    ),
    "Message id or eventId": ("Id de mensaje o eventId", "Id da mensagem ou eventId"),
    "Search": ("Buscar", "Buscar"),
    "Queue": ("Cola", "Fila"),
    "Due now": ("Pendientes ahora", "Pendentes agora"),
    "Oldest due delivery": ("Envío pendiente más antiguo", "Envio pendente mais antigo"),
    "Scheduled retries": ("Reintentos programados", "Novas tentativas programadas"),
    "Being sent": ("Enviándose", "Sendo enviados"),
    "Health": ("Salud", "Saúde"),
    "Healthy": ("Sano", "Saudável"),
    "Behind": ("Atrasada", "Atrasada"),
    "Events feed": ("Feed de eventos", "Feed de eventos"),
    "Live": ("Al día", "Em dia"),
    "Held back": ("Retenido", "Retido"),
    "waiting for": ("esperando a", "esperando"),
    "Throughput": ("Rendimiento", "Vazão"),
    "Attempts in the last hour": ("Intentos en la última hora", "Tentativas na última hora"),
    "Attempts in the last day": ("Intentos en el último día", "Tentativas no último dia"),
    "success rate": ("tasa de éxito", "taxa de sucesso"),
    "Applications": ("Aplicaciones", "Aplicações"),
    "Application": ("Aplicación", "Aplicação"),
    "Portal": ("Portal", "Portal"),
    "Open portal": ("Abrir portal", "Abrir portal"),
    "Open in portal": ("Abrir en el portal", "Abrir no portal"),
    "No applications yet.": ("Aún no hay aplicaciones.", "Ainda não há aplicações."),
    "Disabled endpoints": ("Endpoints desactivados", "Endpoints desativados"),
    "Reason": ("Motivo", "Motivo"),
    "Since": ("Desde", "Desde"),
    "No endpoint is disabled.": (
        "Ningún endpoint está desactivado.",
        "Nenhum endpoint está desativado.",
    ),
    "No message has this id or eventId.": (
        "Ningún mensaje tiene este id o eventId.",
        "Nenhuma mensagem tem este id ou eventId.",
    ),
    "New event type": ("Nuevo tipo de evento", "Novo tipo de evento"),
    "Edit event type": ("Editar tipo de evento", "Editar tipo de evento"),
    "Schema": ("Esquema", "Esquema"),
    "Archive": ("Archivar", "Arquivar"),
    "Archived": ("Archivado", "Arquivado"),
    "Restore": ("Restaurar", "Restaurar"),
    "Yes": ("Sí", "Sim"),
    "No": ("No", "Não"),
    "JSON schema of the payload": ("Esquema JSON del payload", "Esquema JSON do payload"),
    "Examples (a JSON array of payloads)": (
        "Ejemplos (un arreglo JSON de payloads)",
        "Exemplos (um array JSON de payloads)",
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

TEXTS |= HEALTH_TEXTS
TEXTS |= ENTERPRISE_TEXTS
TEXTS |= REASON_TEXTS

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
