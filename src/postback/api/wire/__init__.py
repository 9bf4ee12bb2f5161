"""Wire models: Svix v1 field names (camelCase) and the checks made at the edge, one module
per resource beside ``api/routes/<resource>.py``; ``common`` holds what they share."""
