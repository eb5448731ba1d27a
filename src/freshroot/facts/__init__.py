"""``freshroot facts``: what a controller must know about a machine before it installs it."""
