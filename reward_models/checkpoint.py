"""Finding and reading reward-model checkpoints: local folders or Hugging Face Hub ids.

A checkpoint spec is a local folder (written by `save_pretrained`, or by
`python -m prmbench.testing tiny-rm`) or a Hub id (`Qwen/Qwen2.5-Math-PRM-7B`). Hub ids are
resolved once to a local snapshot (`huggingface_hub.snapshot_download`, which honours
HF_HUB_OFFLINE), so everything below works on folders only. Weights of heads that transformers
does not know (PRM/value heads of remote-code checkpoints) are read straight from the weight files
(safetensors; `.bin` files through `torch.load(weights_only=True)`, which refuses arbitrary pickles).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prmbench.errors import ConfigError, ModelLoadError
from prmbench.hub import snapshot_commit
from prmbench.policies.hf import _first_line, _is_pathlike, _offline

#: Files a reward model needs from the Hub (no images, PDFs or other extras).
HUB_PATTERNS = ["*.json", "*.safetensors", "*.bin", "*.model", "*.txt", "*.jinja", "*.tiktoken"]


def resolve_checkpoint(spec: str, family: str, revision: str | None = None) -> tuple[Path, str | None]:
    """The local folder of a checkpoint spec and, for Hub ids, the snapshot's commit.

    Raises ModelLoadError naming the fix: a missing local folder, a folder without config.json,
    a Hub id that cannot be fetched (offline, typo, gated), or a snapshot whose commit is unknown
    (it would leave the revision out of the cache identity).
    """
    spec = str(spec).strip()
    if not spec:
        raise ConfigError(f"reward model {family} needs a checkpoint: --rm {family}:HUB_ID or --rm {family}:/local/dir")
    if _is_pathlike(spec):
        path = Path(spec).expanduser()
        if not path.is_dir():
            raise ModelLoadError(f"reward model checkpoint folder {spec!r} does not exist; pass --rm {family}:/local/dir "
                                 f"(a save_pretrained folder) or a Hub id; for a test checkpoint run "
                                 f"`python -m prmbench.testing tiny-rm --family {family} DIR`")
        if not (path / "config.json").is_file():
            raise ModelLoadError(f"{spec!r} has no config.json, so it is not a model folder; pass the folder "
                                 f"save_pretrained wrote (or build one: python -m prmbench.testing tiny-rm --family {family} DIR)")
        return path.resolve(), None
    try:
        from huggingface_hub import snapshot_download

        local = Path(snapshot_download(spec, revision=revision, allow_patterns=HUB_PATTERNS))
    except Exception as e:  # offline, unknown repo, gated, network
        hint = ("HF_HUB_OFFLINE=1 is set, so only checkpoints already in the Hugging Face cache load; unset it to download"
                if _offline() else "check the id, your network and, for gated models, HF_TOKEN")
        raise ModelLoadError(f"cannot fetch reward model {spec!r} from the Hugging Face Hub: {_first_line(e)}. "
                             f"Either {hint}, or download it (`hf download {spec}`) and pass the folder: "
                             f"--rm {family}:/local/dir (for a preset: --rm-args checkpoint=/local/dir)") from None
    return local, snapshot_commit(local, spec, revision, "--rm-args")


def _weight_files(path: Path) -> list[Path]:
    for index in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        if (path / index).is_file():
            files = sorted(set(json.loads((path / index).read_text())["weight_map"].values()))
            return [path / f for f in files]
    found = sorted(path.glob("*.safetensors")) or sorted(path.glob("pytorch_model*.bin"))
    return found


def read_tensors(path: Path, prefix: str) -> dict[str, Any]:
    """All tensors of a checkpoint folder whose names start with `prefix`, prefix removed."""
    import torch
    from safetensors import safe_open

    out: dict[str, Any] = {}
    for f in _weight_files(path):
        if f.suffix == ".safetensors":
            with safe_open(str(f), framework="pt") as sf:
                for k in sf.keys():
                    if k.startswith(prefix):
                        out[k[len(prefix):]] = sf.get_tensor(k)
        else:
            state = torch.load(str(f), map_location="cpu", weights_only=True)
            out.update({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})
    return out
