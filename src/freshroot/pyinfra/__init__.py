"""freshroot for pyinfra (the ``freshroot[pyinfra]`` extra; docs/fleet.md).

:mod:`freshroot.pyinfra.facts` reads a host: its plan, status, generations, the staged
declaration and ``freshroot facts``. :mod:`freshroot.pyinfra.operations` changes it:
``install``, ``apply``, ``rollback``, ``confirm``. They follow pyinfra's rules: every fact
is read before the first command is yielded (so change detection is exact), an operation
that has nothing to do says so with ``host.noop`` and yields nothing, and the declaration
itself never goes into a fact's arguments (pyinfra logs those): it is uploaded as files,
and facts get the remote directory and the digest.

Only this package and :mod:`freshroot.deploy` import pyinfra; freshroot's core never does.
"""
