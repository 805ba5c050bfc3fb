"""The Hub commit a model was loaded from: part of every policy's and reward model's cache identity.

A Hub id names a moving target (`main` today is not `main` tomorrow), so results and cache keys
record the commit that was actually loaded. When it cannot be found, loading fails with the fix
(pin a commit, or pass a local folder) instead of silently keying results by the id alone.
"""

from __future__ import annotations

import re
from pathlib import Path

from prmbench.errors import ModelLoadError

_COMMIT = re.compile(r"[0-9a-f]{40}")


def is_commit(text: str | None) -> bool:
    """Whether `text` is a full 40-hex-digit commit hash."""
    return bool(text) and _COMMIT.fullmatch(str(text)) is not None


def _unknown(spec: str, revision: str | None, flag: str, why: str) -> ModelLoadError:
    return ModelLoadError(f"cannot tell which commit of {spec!r} (revision {revision or 'main'}) was loaded ({why}), "
                          f"so results could not be tied to it; pin one with {flag} revision=<40-hex commit> or "
                          f"pass a local folder")


def snapshot_commit(snapshot: Path, spec: str, revision: str | None, flag: str) -> str:
    """The commit of a `snapshot_download` folder (named after it), else a pinned `revision`."""
    if is_commit(snapshot.name):
        return snapshot.name
    if is_commit(revision):
        return str(revision)
    raise _unknown(spec, revision, flag, f"the snapshot folder {snapshot.name!r} is not named by a commit")


def hub_commit(spec: str, revision: str | None, flag: str) -> str:
    """The commit the Hugging Face cache resolves `spec`'s config.json to (transformers' lookup)."""
    try:
        from transformers.utils.hub import cached_file, extract_commit_hash

        commit = extract_commit_hash(cached_file(spec, "config.json", revision=revision), None)
    except Exception as e:  # the lookup itself failed (cache layout, network)
        if is_commit(revision):
            return str(revision)
        raise _unknown(spec, revision, flag, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None
    if is_commit(commit):
        return str(commit)
    if is_commit(revision):
        return str(revision)
    raise _unknown(spec, revision, flag, "the Hugging Face cache records none")
