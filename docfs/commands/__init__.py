"""The ``docfs`` commands, one module per concern; ``docfs.cli`` builds the parser and runs them."""
