"""Front doors: each wire format a client can speak, translated at the edge into one
internal representation (an OpenAI Chat Completions body, see :mod:`pointsman.doors.base`)
and back. Nothing past a door knows which door a request came through, except the request
log, which records it."""
