"""The module path of ``freshroot-tmpfiles`` console scripts installed before the command line
moved to freshroot.tmpfiles.commands (pyproject.toml now names ``commands:main``). An
installed script imports ``main`` from here until the package is installed again; nothing in
freshroot imports this module. Delete it once no such install is left to serve.
"""

from freshroot.tmpfiles.commands import main

__all__ = ["main"]
