"""The ``%ws_*`` magics (``%load_ext nbsocket``): commands, their config, argument parsing,
``%%ws_handler`` and ``%ws_wait``."""

__all__: list[str] = []
