#!/usr/bin/env bash
# freshroot's developer entry point. Everything it needs it installs itself, so a fresh
# Debian 12 machine (as root) goes from nothing to a passing test run with one command.
#
#   ./dev.sh demo          run the bundled example into a scratch root (needs python3 >= 3.11 only)
#   ./dev.sh test [ARGS]   set up, then lint, type-check and run the whole test suite
#                          (ARGS go to pytest, e.g. -m 'not vm' or -k chase)
#   ./dev.sh setup         only set up: Debian packages, .venv, reference systemd-tmpfiles
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")"

# Debian packages the tests and benchmarks use. Each is here for a reason:
APT_PACKAGES=(
    python3-venv        # the .venv
    acl attr            # getfacl/setfacl/getfattr to check ACLs and xattrs independently
    e2fsprogs           # lsattr/chattr, mkfs.ext4 for scratch file systems
    btrfs-progs         # subvolume tests (v/q/Q lines), migrate's snapshots on btrfs
    xfsprogs            # mkfs.xfs: migrate's snapshots on XFS (tests/persist/test_migrate_snapshot.py)
    util-linux          # unshare, mount, losetup, partx, blkid, mkswap
    fdisk               # sfdisk --json, to read back the partition table disk apply wrote
    dosfstools          # mkfs.vfat: systemd-repart formats a [disk] ESP (format = "vfat") with it
    squashfs-tools      # mksquashfs/unsquashfs for portable images
    erofs-utils         # mkfs.erofs for --format erofs
    binutils            # readelf, to check our own ELF reader in tests
    systemd             # systemd-escape, systemd-analyze verify, systemd-dissect, sysusers, tmpfiles 252
    systemd-container   # systemd-dissect on Debian 12
    passwd              # useradd, for the concurrent-lock test
    qemu-system-x86 qemu-utils debootstrap debian-archive-keyring   # the VM boot tests (docs/testing-vm.md)
    ca-certificates openssh-server hyperfine
    man-db groff-base   # man -l and groff -ww on the generated man pages
    zsh fish            # the completion scripts run in each shell
    debhelper dh-python lintian fakeroot   # build and lint the Debian package (tests/test_packages.py)
    rpm rpmlint         # lint the RPM spec
)

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# The demo needs Python alone: freshroot is standard library only and the demo runs it from
# src/ on a scratch root, starting no other tool. No venv, no pip, no test tools.
DEMO_PACKAGES=(python3)

setup_apt() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    if ((${#missing[@]})); then
        log "installing Debian packages: ${missing[*]}"
        [[ $(id -u) == 0 ]] || { echo "dev.sh: installing packages needs root" >&2; exit 1; }
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

setup_venv() {
    local stamp=.venv/.freshroot-stamp want
    want=$(cat requirements-dev.txt pyproject.toml | sha256sum)
    if [[ ! -x .venv/bin/python || $(cat "$stamp" 2>/dev/null) != "$want" ]]; then
        log "creating .venv with the pinned dev tools"
        python3 -m venv .venv
        .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements-dev.txt
        .venv/bin/python -m pip install -q --disable-pip-version-check --no-build-isolation --no-deps -e .
        echo "$want" >"$stamp"
    fi
}

setup() {
    local extra=()
    # systemd-repart (disk plan/apply, tests/disk) is in systemd up to Debian 12 and its own
    # package from Debian 13 on.
    [[ -x /usr/bin/systemd-repart || -x /bin/systemd-repart ]] || extra+=(systemd-repart)
    setup_apt "${APT_PACKAGES[@]}" "${extra[@]}"
    setup_venv
    tools/fetch-oracles .cache/oracles >/dev/null
}

cmd=${1:-}
shift || true
case $cmd in
    setup) setup ;;
    demo)
        # Only what the demo needs: the test packages (openssh-server, qemu, ...) and the dev
        # tools (mypy, ruff, pytest, hypothesis) are left off the host until the tests are run.
        setup_apt "${DEMO_PACKAGES[@]}"
        python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
            || { echo "dev.sh: the demo needs Python 3.11 or newer as python3" >&2; exit 1; }
        exec python3 examples/demo.py "$@"
        ;;
    test)
        setup
        export FRESHROOT_ORACLES=$PWD/.cache/oracles FRESHROOT_REQUIRE_ALL=1
        log "ruff"; .venv/bin/ruff check src tests bench
        log "mypy --strict"; .venv/bin/mypy
        log "pytest"
        rc=0
        .venv/bin/pytest -n 2 --dist loadgroup "$@" || rc=$?
        # pytest's 5 means no test ran: that is a failure here, never a pass.
        ((rc == 5)) && echo "dev.sh: no tests ran" >&2
        exit "$rc"
        ;;
    *)
        sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2
        exit 1
        ;;
esac
