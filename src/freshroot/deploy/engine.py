"""The fleet run through pyinfra's API: an inventory from fleet.toml, one freshroot operation
per host (its own declaration parts), pyinfra's parallelism and fail-percent, then one report
per host from the operation's result and a last read of the host's generations.

pyinfra, and gevent's monkey patching that lets its greenlets overlap SSH round trips, are
imported here only: by ``freshroot deploy``, never by freshroot's core.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import tempfile
import time
from collections.abc import Mapping, Sequence
from typing import Any

from freshroot.deploy.fleet import Host
from freshroot.deploy.report import CHANGED, FAILED, NO_CHANGE, NOT_RUN, UNREACHABLE, DeployReport, HostReport

ACTIONS = ("plan", "apply", "install", "rollback", "confirm")


def patch_gevent() -> None:
    """As pyinfra's CLI does first thing: sockets that yield to other hosts' greenlets."""
    from gevent import monkey  # type: ignore[import-untyped]

    if not monkey.is_module_patched("socket"):
        monkey.patch_all()


def _inventory_data(host: Host) -> tuple[str, dict[str, Any]]:
    data: dict[str, Any] = {"freshroot_command": host.freshroot, "fleet_name": host.name}
    if host.address.startswith("@"):  # a pyinfra connector (@local, @docker/..., @fake/...)
        return host.address, data
    data.update(ssh_hostname=host.address, ssh_user=host.user, ssh_port=host.port, ssh_allow_agent=False,
                ssh_look_for_keys=host.key is None,
                ssh_strict_host_key_checking="yes" if host.strict_host_keys else "accept-new")
    if host.key:
        data["ssh_key"] = host.key
    if host.known_hosts:
        data["ssh_known_hosts_file"] = host.known_hosts
    return host.name, data


class _Collector(logging.Handler):
    """pyinfra says why a host failed in its log: keep the lines per host."""

    def __init__(self, names: Sequence[str]) -> None:
        super().__init__(logging.WARNING)
        self.names = names
        self.lines: dict[str, list[str]] = {}

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        for name in self.names:
            if name in message:
                self.lines.setdefault(name, []).append(_plain(message))


def _plain(text: str) -> str:
    """pyinfra's coloured log line without the escape sequences."""
    import re

    return re.sub(r"\x1b\[[0-9;]*m", "", text).strip()


def _answers(address: str, port: int, timeout: float = 2.0) -> bool:
    """Whether the host's SSH port still answers (after a failed run: unreachable or not)."""
    if address.startswith("@"):
        return True
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except OSError:
        return False


def _json_out(stdout: str) -> dict[str, Any] | None:
    start = stdout.find("{")
    if start < 0:
        return None
    try:
        data = json.loads(stdout[start:])
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def run(hosts: Sequence[Host], action: str, *, fleet: str, parallel: int = 0, fail_percent: int | None = None,
        extra_data: Mapping[str, dict[str, Any]] | None = None) -> DeployReport:
    from pyinfra.api.config import Config
    from pyinfra.api.connect import connect_all, disconnect_all
    from pyinfra.api.exceptions import PyinfraError
    from pyinfra.api.facts import get_fact
    from pyinfra.api.inventory import Inventory
    from pyinfra.api.operation import add_op
    from pyinfra.api.operations import run_ops
    from pyinfra.api.state import BaseStateCallback, State

    from freshroot.pyinfra import facts, operations

    by_pyinfra: dict[str, Host] = {}
    names: list[tuple[str, dict[str, Any]]] = []
    for host in hosts:
        name, data = _inventory_data(host)
        data.update((extra_data or {}).get(host.name, {}))
        by_pyinfra[name] = host
        names.append((name, data))
    reports = {h.name: HostReport(h.name, h.address) for h in hosts}
    started = time.monotonic()
    ended: dict[str, float] = {}
    connect_errors: dict[str, str] = {}

    class Timing(BaseStateCallback):
        @staticmethod
        def host_connect_error(state: State, host: Any, error: Any) -> None:
            connect_errors[host.name] = _plain(str(error))

        @staticmethod
        def operation_host_success(state: State, host: Any, op_hash: Any, retry_count: int = 0) -> None:
            ended[host.name] = time.monotonic()

        @staticmethod
        def operation_host_error(state: State, host: Any, op_hash: Any, retry_count: int = 0,
                                 max_retries: int = 0) -> None:
            ended[host.name] = time.monotonic()

    collector = _Collector([n for n, _ in names])
    pyinfra_log = logging.getLogger("pyinfra")
    pyinfra_log.addHandler(collector)
    config = Config(  # type: ignore[no-untyped-call]
        PARALLEL=parallel, FAIL_PERCENT=fail_percent, CONNECT_TIMEOUT=max(h.connect_timeout for h in hosts))
    state = State(inventory=Inventory((names, {})), config=config)  # type: ignore[no-untyped-call]
    state.add_callback_handler(Timing())  # type: ignore[no-untyped-call]
    deploy = DeployReport(action, fleet)
    metas: dict[str, Any] = {}
    shipped = _ship(hosts)
    try:
        try:
            connect_all(state)
            for pyhost in list(state.inventory.get_active_hosts()):
                host = by_pyinfra[pyhost.name]
                if host.pyz and shipped is not None:
                    from pyinfra.operations import files

                    # pyinfra's own upload: compared by checksum, sent only when it differs.
                    add_op(state, files.put, src=os.path.join(shipped.name, "freshroot.pyz"), dest=host.pyz,
                           mode="755", host=pyhost, name="upload freshroot.pyz")
                op_args = _op_args(action, host)
                op = getattr(operations, "stage" if action == "plan" else action)
                metas[pyhost.name] = add_op(state, op, **op_args, host=pyhost,
                                            name=f"freshroot {action}")[pyhost]
            run_ops(state)
        except PyinfraError as e:
            deploy.stopped = _plain(str(e))
        # The host's state after the run: its plan (plan, or --diff), its generations.
        for pyhost in state.inventory:
            host = by_pyinfra[pyhost.name]
            report = reports[host.name]
            report.duration = round(ended.get(pyhost.name, time.monotonic()) - started, 3)
            if pyhost.name not in {h.name for h in state.activated_hosts}:
                report.status, report.reachable = UNREACHABLE, False
                report.error = connect_errors.get(pyhost.name) or "\n".join(collector.lines.get(pyhost.name, [])) \
                    or "could not connect"
                continue
            report.reachable = True
            meta = metas.get(pyhost.name)
            failed = pyhost in state.failed_hosts
            executed = meta is not None and meta.is_complete()
            if meta is None or not executed:
                report.status = FAILED if failed else NOT_RUN
                report.error = "\n".join(collector.lines.get(pyhost.name, [])) or (
                    f"not run: {deploy.stopped}" if deploy.stopped else None)
                report.ok = False
                continue
            if failed or not meta.did_succeed():
                report.status, report.ok = FAILED, False
                out = _json_out(meta.stdout)
                report.apply = out
                lines = [*collector.lines.get(pyhost.name, []), *meta.stderr_lines[-5:]]
                report.error = "\n".join(lines) or "the operation failed"
                if not _answers(host.address, host.port):
                    report.reachable, report.status = False, UNREACHABLE
                continue
            report.ok = True
            report.status = CHANGED if meta.did_change() else NO_CHANGE
            out = _json_out(meta.stdout)
            if out is not None and action != "plan":
                report.apply = {k: out[k] for k in ("ok", "counts", "failed", "generation", "rollback") if k in out}
                if out.get("ok") is False:
                    report.ok, report.status = False, FAILED
            stage_root = host.install.root if action == "install" else host.root
            if action == "install":
                continue
            freshroot_cmd = host.freshroot
            generation = (out or {}).get("generation") if action == "apply" else None
            gens: dict[str, Any] | None = None
            with _host_context(state, pyhost):
                if action == "plan" or (action == "apply" and not generation):
                    # One read: the plan of the staged declaration and the root's generation.
                    plan = get_fact(state, pyhost, facts.FreshrootPlan,
                                    kwargs={"root": stage_root, "digest": _digest(host), "freshroot": freshroot_cmd})
                    generation = (plan or {}).get("generation")
                    if action == "plan":
                        report.plan = plan
                        if plan is None or "error" in plan:
                            report.ok, report.status = False, FAILED
                            report.error = (plan or {}).get("error", "freshroot plan printed nothing")
                        else:
                            report.status = CHANGED if facts.plan_changes(plan) else NO_CHANGE
                elif action in ("rollback", "confirm"):
                    gens = get_fact(state, pyhost, facts.FreshrootGenerations,
                                    kwargs={"root": stage_root, "freshroot": freshroot_cmd})
            if isinstance(generation, dict):
                number = generation.get("number", generation.get("current"))
                report.generation = number if isinstance(number, int) else None
                report.confirmed = generation.get("confirm")
            current = facts.current_generation(gens)
            if current is not None:
                report.generation = current.get("number")
                report.confirmed = (current.get("confirm") or {}).get("state")
            report.rolled_back = (action == "rollback" and meta.did_change()) or any(
                (g.get("confirm") or {}).get("state") == "rolled-back" and g.get("number", 0) > (report.generation or 0)
                for g in (gens or {}).get("generations", []))
    finally:
        pyinfra_log.removeHandler(collector)
        disconnect_all(state)
        if shipped is not None:
            shipped.cleanup()
    deploy.hosts = [reports[h.name] for h in hosts]
    return deploy


def _ship(hosts: Sequence[Host]) -> tempfile.TemporaryDirectory[str] | None:
    """This freshroot as a zipapp (freshroot.deploy.pyz), built once per run for the hosts
    whose fleet.toml sets ``pyz``: a rescue system runs the controller's own freshroot."""
    if not any(h.pyz for h in hosts):
        return None
    from freshroot.deploy import pyz

    scratch = tempfile.TemporaryDirectory(prefix="freshroot-deploy-")
    pyz.write(os.path.join(scratch.name, "freshroot.pyz"))
    return scratch


class _host_context:  # noqa: N801 - a context manager used like a function
    """pyinfra's facts read the current state and host from its context variables."""

    def __init__(self, state: Any, host: Any) -> None:
        from pyinfra.context import ctx_host, ctx_state

        self._uses = (ctx_state.use(state), ctx_host.use(host))

    def __enter__(self) -> None:
        for use in self._uses:
            use.__enter__()

    def __exit__(self, *exc: object) -> None:
        for use in reversed(self._uses):
            use.__exit__(*exc)


def _digest(host: Host) -> str:
    from freshroot.pyinfra.common import declaration_digest, parts

    return declaration_digest(parts(host.parts))


def _op_args(action: str, host: Host) -> dict[str, Any]:
    match action:
        case "plan":
            return {"declaration": list(host.parts), "root": host.root}
        case "apply":
            return {"declaration": list(host.parts), "root": host.root, "confirm_timeout": host.confirm_timeout}
        case "rollback" | "confirm":
            return {"root": host.root}
        case "install":
            i = host.install
            return {"declaration": list(host.parts), "root": i.root, "machine_id": i.machine_id,
                    "host_keys": i.host_keys, "copy_self": i.copy_self, "hostname": host.name}
    raise AssertionError(action)


def run_batches(hosts: Sequence[Host], action: str, *, fleet: str, parallel: int = 0, fail_percent: int | None = None,
                extra_data: Mapping[str, dict[str, Any]] | None = None) -> DeployReport:
    """``--parallel N``: N hosts at a time, as a rolling deploy (ansible's serial), checking
    ``--fail-percent`` over all hosts so far after each batch: once more than P% failed, the
    hosts not started yet are not touched ("not run"). Without it, one pyinfra run over all
    hosts, pyinfra checking the percentage after connecting and after each operation."""
    if not parallel or parallel >= len(hosts):
        return run(hosts, action, fleet=fleet, fail_percent=fail_percent, extra_data=extra_data)
    merged = DeployReport(action, fleet)
    for start in range(0, len(hosts), parallel):
        batch = hosts[start:start + parallel]
        if merged.stopped:
            merged.hosts += [HostReport(h.name, h.address, error=f"not run: {merged.stopped}") for h in batch]
            continue
        report = run(batch, action, fleet=fleet, extra_data=extra_data)
        merged.hosts += report.hosts
        failed = len([h for h in merged.hosts if not h.ok])
        if fail_percent is not None and failed * 100 > fail_percent * len(hosts):
            merged.stopped = (f"over {fail_percent}% of the hosts failed ({failed} of {len(hosts)}) after "
                              f"{len(merged.hosts)} host(s)")
    return merged
