"""The ``mdslab`` command line: thin commands over the library functions."""
