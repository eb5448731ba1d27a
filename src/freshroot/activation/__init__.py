"""Activation: the declaration's snippets and the builtin steps, run as one ordered plan."""
