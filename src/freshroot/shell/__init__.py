"""Shell completion for bash, zsh and fish, written from the argparse parsers."""
