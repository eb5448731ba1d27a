"""Where the declaration is looked for below a root: the names only.

Their own module, free of imports, so that freshroot-generator's cache check
(freshroot.systemd.gencache) can compare the same places without loading the parser.
freshroot.config.load does the searching; its module doc says how.
"""

SEARCH_DIRS = ("/etc/freshroot", "/run/freshroot", "/usr/local/lib/freshroot", "/usr/lib/freshroot")
MAIN_FILE = "freshroot.toml"
DROPIN_DIR = "conf.d"
SUFFIX = ".toml"
MAX_SIZE = 4 << 20  # a declaration is a few KiB; anything this big is a mistake
