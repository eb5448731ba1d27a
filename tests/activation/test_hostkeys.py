"""``install --host-keys DIR`` read and checked (activation/hostkeys.py): keys as ssh-keygen
writes them pass, in every format sshd reads; each refusal names the file and why, and every
problem of the directory is listed at once."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from freshroot.activation.hostkeys import LIMIT, PRIVATE_MODE, PUBLIC_MODE, read_host_keys
from freshroot.errors import ConfigError
from tests.hostkeys import KEYGEN, keygen


def refusal(directory: Path) -> str:
    with pytest.raises(ConfigError) as info:
        read_host_keys(str(directory))
    assert info.value.exit_code == 65
    return str(info.value)


def test_ssh_keygen_keys_pass(keys: Path) -> None:
    got = read_host_keys(str(keys))
    assert sorted(k.name for k in got) == sorted(p.name for p in keys.iterdir())
    assert len(got) == 6
    for k in got:
        assert k.data == (keys / k.name).read_bytes()
        assert k.mode == (PUBLIC_MODE if k.name.endswith(".pub") else PRIVATE_MODE)
        assert k.private is not k.name.endswith(".pub")


@pytest.mark.parametrize(("key_type", "extra", "armor"), [
    ("rsa", ("-m", "PEM"), "RSA PRIVATE KEY"),
    ("ecdsa", ("-m", "PEM"), "EC PRIVATE KEY"),
    ("rsa", ("-m", "PKCS8"), "PRIVATE KEY"),
    ("ecdsa", ("-b", "521"), "OPENSSH PRIVATE KEY"),
])
def test_pem_and_pkcs8_keys_pass(tmp_path: Path, key_type: str, extra: tuple[str, ...], armor: str) -> None:
    key = keygen(tmp_path / f"ssh_host_{key_type}_key", key_type, *extra)
    assert key.read_text().startswith(f"-----BEGIN {armor}-----")
    assert [k.name for k in read_host_keys(str(tmp_path))] == [key.name, key.name + ".pub"]


def test_a_host_certificate_passes_with_its_key(keys: Path, tmp_path: Path) -> None:
    ca = keygen(tmp_path / "ca" / "ca", "ed25519")
    subprocess.run([KEYGEN, "-q", "-s", str(ca), "-I", "web1", "-h", "-n", "web1.example",
                    str(keys / "ssh_host_ed25519_key.pub")], check=True)
    assert (keys / "ssh_host_ed25519_key-cert.pub").is_file()
    names = {k.name: k.mode for k in read_host_keys(str(keys))}
    assert names["ssh_host_ed25519_key-cert.pub"] == PUBLIC_MODE
    (keys / "ssh_host_ed25519_key").unlink()
    (keys / "ssh_host_ed25519_key.pub").unlink()
    assert "ssh_host_ed25519_key-cert.pub has no private key ssh_host_ed25519_key beside it" in refusal(keys)


def _symlink(d: Path) -> str:
    (d / "ssh_host_rsa_key").unlink()
    (d / "ssh_host_rsa_key").symlink_to(d / "ssh_host_ecdsa_key")
    return "ssh_host_rsa_key is a symbolic link; only regular files are copied"


def _dangling_symlink(d: Path) -> str:
    (d / "ssh_host_rsa_key.pub").unlink()
    (d / "ssh_host_rsa_key.pub").symlink_to("/nonexistent/key.pub")
    return "ssh_host_rsa_key.pub is a symbolic link"


def _fifo(d: Path) -> str:
    # Opened for reading, a FIFO nobody writes to would block install for ever.
    (d / "ssh_host_ed25519_key").unlink()
    os.mkfifo(d / "ssh_host_ed25519_key")
    return "ssh_host_ed25519_key is a FIFO; only regular files are copied"


def _directory(d: Path) -> str:
    (d / "ssh_host_ecdsa_key.pub").unlink()
    (d / "ssh_host_ecdsa_key.pub").mkdir()
    return "ssh_host_ecdsa_key.pub is a directory"


def _other_file(d: Path) -> str:
    (d / "sshd_config").write_text("PermitRootLogin no\n")
    return "sshd_config is not a host key name"


def _unknown_type(d: Path) -> str:
    shutil.copy(d / "ssh_host_ed25519_key", d / "ssh_host_ed448_key")
    return "ssh_host_ed448_key is not a host key name"


def _no_pub(d: Path) -> str:
    (d / "ssh_host_ed25519_key.pub").unlink()
    return "ssh_host_ed25519_key has no ssh_host_ed25519_key.pub beside it"


def _no_private(d: Path) -> str:
    (d / "ssh_host_rsa_key").unlink()
    return "ssh_host_rsa_key.pub has no private key ssh_host_rsa_key beside it"


def _encrypted(d: Path) -> str:
    subprocess.run([KEYGEN, "-q", "-p", "-P", "", "-N", "secret", "-f", str(d / "ssh_host_ed25519_key")], check=True)
    return "ssh_host_ed25519_key is encrypted with a passphrase"


def _encrypted_pem(d: Path) -> str:
    (d / "ssh_host_rsa_key").unlink()
    (d / "ssh_host_rsa_key.pub").unlink()
    keygen(d / "ssh_host_rsa_key", "rsa", "-m", "PEM", "-b", "1024")
    subprocess.run([KEYGEN, "-q", "-p", "-m", "PEM", "-P", "", "-N", "secret", "-f", str(d / "ssh_host_rsa_key")],
                   check=True)
    assert "ENCRYPTED" in (d / "ssh_host_rsa_key").read_text()
    return "ssh_host_rsa_key is encrypted with a passphrase"


def _wrong_type(d: Path) -> str:
    shutil.copy(d / "ssh_host_ed25519_key", d / "ssh_host_rsa_key")
    shutil.copy(d / "ssh_host_ed25519_key.pub", d / "ssh_host_rsa_key.pub")
    return "ssh_host_rsa_key holds a ssh-ed25519 key, not rsa as its name says"


def _wrong_pem_type(d: Path) -> str:
    keygen(d / "pem" / "k", "rsa", "-m", "PEM", "-b", "1024")
    shutil.copy(d / "pem" / "k", d / "ssh_host_ecdsa_key")
    shutil.rmtree(d / "pem")
    return "ssh_host_ecdsa_key is a RSA PRIVATE KEY (rsa), not ecdsa as its name says"


def _pub_of_another_type(d: Path) -> str:
    shutil.copy(d / "ssh_host_rsa_key.pub", d / "ssh_host_ed25519_key.pub")
    return "ssh_host_ed25519_key.pub holds a ssh-rsa key, not ed25519 as its name says"


def _pub_of_another_key(d: Path) -> str:
    other = keygen(d / "other" / "k", "ed25519")
    shutil.copy(other.with_suffix(".pub"), d / "ssh_host_ed25519_key.pub")
    shutil.rmtree(d / "other")
    return "ssh_host_ed25519_key.pub is not the public key of ssh_host_ed25519_key"


def _pub_type_and_data_differ(d: Path) -> str:
    words = (d / "ssh_host_rsa_key.pub").read_text().split()
    (d / "ssh_host_ed25519_key.pub").write_text(f"ssh-ed25519 {words[1]}\n")
    return "ssh_host_ed25519_key.pub says ssh-ed25519 but its key data is a ssh-rsa key"


def _public_key_as_private(d: Path) -> str:
    shutil.copy(d / "ssh_host_ecdsa_key.pub", d / "ssh_host_ecdsa_key")
    return "ssh_host_ecdsa_key is not a private key"


def _empty_private(d: Path) -> str:
    (d / "ssh_host_ecdsa_key").write_bytes(b"")
    return "ssh_host_ecdsa_key is not a private key"


def _empty_pub(d: Path) -> str:
    (d / "ssh_host_ecdsa_key.pub").write_bytes(b"")
    return "ssh_host_ecdsa_key.pub is empty"


def _two_lines(d: Path) -> str:
    line = (d / "ssh_host_ecdsa_key.pub").read_text()
    (d / "ssh_host_ecdsa_key.pub").write_text(line + line)
    return "ssh_host_ecdsa_key.pub is not one line"


def _binary(d: Path) -> str:
    (d / "ssh_host_rsa_key").write_bytes(b"\x00\xff" * 100)
    return "ssh_host_rsa_key is not text"


def _bad_base64(d: Path) -> str:
    (d / "ssh_host_ed25519_key.pub").write_text("ssh-ed25519 AAAA!!!notbase64\n")
    return "ssh_host_ed25519_key.pub is not valid base64"


def _cut_short(d: Path) -> str:
    text = (d / "ssh_host_ed25519_key").read_text().splitlines()
    (d / "ssh_host_ed25519_key").write_text("\n".join(text[:-1]) + "\n")
    return "ssh_host_ed25519_key is cut short"


def _too_big(d: Path) -> str:
    with open(d / "ssh_host_rsa_key", "ab") as f:
        f.truncate(LIMIT + 1)
    return f"ssh_host_rsa_key is {LIMIT + 1} bytes"


REFUSALS: dict[str, Callable[[Path], str]] = {f.__name__.strip("_"): f for f in (
    _symlink, _dangling_symlink, _fifo, _directory, _other_file, _unknown_type, _no_pub, _no_private, _encrypted,
    _encrypted_pem, _wrong_type, _wrong_pem_type, _pub_of_another_type, _pub_of_another_key,
    _pub_type_and_data_differ, _public_key_as_private, _empty_private, _empty_pub, _two_lines, _binary, _bad_base64,
    _cut_short, _too_big)}


@pytest.mark.parametrize("spoil", list(REFUSALS))
def test_each_refusal_names_the_file(keys: Path, spoil: str) -> None:
    expected = REFUSALS[spoil](keys)
    message = refusal(keys)
    assert f"--host-keys {keys}/{expected}" in message
    assert "hint: DIR holds only ssh_host_TYPE_key" in message


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0, reason="mknod needs root")
def test_a_device_is_refused_without_being_opened(keys: Path) -> None:
    (keys / "ssh_host_rsa_key").unlink()
    os.mknod(keys / "ssh_host_rsa_key", stat.S_IFCHR | 0o600, os.makedev(1, 3))  # /dev/null
    assert "ssh_host_rsa_key is a character device; only regular files are copied" in refusal(keys)


def test_every_problem_is_listed_at_once(keys: Path) -> None:
    wanted = [_fifo(keys), _other_file(keys), _no_private(keys)]
    message = refusal(keys)
    for expected in wanted:
        assert expected in message
    assert "3 problems; nothing was changed" in message


def test_an_empty_or_missing_directory_is_refused(tmp_path: Path) -> None:
    assert f"--host-keys {tmp_path}: no host keys in it" in refusal(tmp_path)
    assert f"--host-keys {tmp_path}/none: No such file or directory" in refusal(tmp_path / "none")
    (tmp_path / "file").write_text("")
    assert "not a directory" in refusal(tmp_path / "file")
