"""Hints for a key or section the declaration does not know: "did you mean", and the
freshroot name of what NixOS and impermanence call something else.

People come to freshroot with an impermanence or NixOS declaration in mind (and in their
fingers): ``environment.persistence."/persist"``, ``hideMounts``, ``directory``. A bare "unknown
key" with a list of every key leaves them guessing; the name to write instead does not.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

# impermanence / NixOS spelling -> what freshroot calls it (None: no such setting, and why).
FOREIGN: dict[str, str | None] = {
    "directory": "path",
    "file": "path",
    "hideMounts": "hide-mounts",
    "allowTrash": "allow-trash",
    "method": 'how ("bind" | "symlink" | "auto")',
    "persistentStoragePath": 'the storage table\'s name: [persist."/persist"]',
    "parentDirectory": "parent",
    "enableWarnings": None,
    "enable": None,
    "mountOptions": "mount-options",
    "createLinkTarget": None,
    "configureParent": None,
    "inInitrd": "early",
    "neededForBoot": "early",
    "initrd": "early",
    "isNormalUser": "system (false is the default)",
    "extraGroups": "extra-groups",
    "hashedPassword": "hashed-password",
    "createHome": "create-home",
    "persistence": 'the section [persist."/persist"]',
    "preservation": 'the section [persist."/persist"]',
    "etc": '[etc."path"]',
    "activationScripts": "[activation.<name>]",
}

# Whole sections as NixOS writes them -> freshroot's section.
FOREIGN_SECTIONS: dict[str, str] = {
    "environment.persistence": '[persist."/persist"]',
    "preservation.preserveAt": '[persist."/persist"]',
    "preservation": '[persist."/persist"]',
    "persistence": '[persist."/persist"]',
    "system.activationScripts": "[activation.<name>]",
    "systemd.tmpfiles": '[tmpfiles] (rules = [...] or settings."<name>"...)',
    "environment.etc": '[etc."path"]',
    "users.users": "[users.<name>]",
    "users.groups": "[groups.<name>]",
}


def suggest(name: str, known: Iterable[str]) -> str | None:
    """What to write instead of the unknown ``name``, or None when nothing is close."""
    if name in FOREIGN:
        instead = FOREIGN[name]
        if instead is None:
            return f"{name} is an impermanence/NixOS setting freshroot has no equivalent of; remove it"
        return f"{name} is impermanence's/NixOS's name: freshroot calls it {instead}"
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    if not close:
        lowered = {k.lower().replace("-", "").replace("_", ""): k for k in known}
        found = lowered.get(name.lower().replace("-", "").replace("_", ""))
        close = [found] if found else []
    return f"did you mean {close[0]}?" if close else None


def suggest_section(name: str, sub: Iterable[str], known: Iterable[str]) -> str | None:
    """For an unknown top-level section ``name`` (with its keys ``sub``): the NixOS section it
    looks like, else the closest freshroot section."""
    keys = list(sub)
    for key in keys:
        foreign = FOREIGN_SECTIONS.get(f"{name}.{key}")
        if foreign is not None:
            return f"[{name}.{key}] is NixOS's name: freshroot's is {foreign}"
    foreign = FOREIGN_SECTIONS.get(name)
    if foreign is not None:
        return f"[{name}] is NixOS's name: freshroot's is {foreign}"
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f"did you mean [{close[0]}]?" if close else None
