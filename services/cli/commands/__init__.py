"""One module per `rtml` subcommand; each defines ``register(subparsers)`` and sets ``handler``."""
