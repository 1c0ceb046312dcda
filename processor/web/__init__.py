"""HTTP handlers only: parse the request, call a service, shape the answer. Nothing imports this."""
