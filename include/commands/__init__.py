"""One module per ``include.cli`` command; each exposes ``register(subparsers)``.

A command's ``register`` adds its sub-parser and sets ``handler=<function(args) -> int>``
with ``parser.set_defaults``. Keep imports of heavy libraries inside the handler so that
``python -m include.cli --help`` stays fast.
"""
