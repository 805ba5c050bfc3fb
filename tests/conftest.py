"""Shared pytest fixtures. Tests run offline: no Hugging Face Hub access."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

for _var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ[_var] = "1"

_SHARED = Path(__file__).resolve().parents[2] / "shared"

# Like scripts/setup.sh: code under test that reads these variables (tasks, the tiny-model
# builder) finds the shared folders too when pytest runs from a bare shell.
for _var, _sub in (("PRMBENCH_DATA_DIR", "data"), ("PRMBENCH_MODELS_DIR", "models")):
    if not os.environ.get(_var) and (_SHARED / _sub).is_dir():
        os.environ[_var] = str(_SHARED / _sub)


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """The shared data folder ($PRMBENCH_DATA_DIR, else ../shared/data next to the checkout)."""
    return Path(os.environ.get("PRMBENCH_DATA_DIR") or _SHARED / "data")


@pytest.fixture(scope="session")
def shared_models_dir() -> Path:
    """The shared tokenizer/config folder ($PRMBENCH_MODELS_DIR, else ../shared/models)."""
    return Path(os.environ.get("PRMBENCH_MODELS_DIR") or _SHARED / "models")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Qwen2 model (2 layers, hidden 64) with a trained 512-token BPE tokenizer.

    Built once per session; loads with `HFPolicy(str(tiny_model_dir))` or `--policy hf:DIR`.
    """
    from prmbench.testing import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model", seed=0)


@pytest.fixture(scope="session")
def tiny_qwen_model_dir(tmp_path_factory: pytest.TempPathFactory, shared_models_dir: Path) -> Path:
    """A tiny random Qwen2 model with the real Qwen2.5 tokenizer and chat template (~40 MB).

    Skips when the shared Qwen2.5-7B-Instruct tokenizer files are absent.
    """
    from prmbench.testing import build_tiny_model

    src = shared_models_dir / "Qwen__Qwen2.5-7B-Instruct"
    if not (src / "tokenizer.json").is_file():
        pytest.skip(f"shared Qwen2.5 tokenizer not found in {src}")
    return build_tiny_model(tmp_path_factory.mktemp("tiny_qwen") / "model", tokenizer_dir=src, seed=0)


@pytest.fixture(scope="session")
def tiny_rm_dirs(tmp_path_factory: pytest.TempPathFactory, shared_models_dir: Path) -> dict[str, Path]:
    """One tiny random reward-model checkpoint per family (1 layer, hidden 32), built once per session.

    Skips when the shared tokenizer files are absent.
    """
    from prmbench.testing.tiny_rm import FAMILIES, build_tiny_rm

    if not (shared_models_dir / "Qwen__Qwen2.5-7B-Instruct" / "tokenizer.json").is_file():
        pytest.skip(f"shared tokenizer files not found in {shared_models_dir}")
    root = tmp_path_factory.mktemp("tiny_rms")
    return {f: build_tiny_rm(root / f, f, hidden=32, layers=1, seed=1) for f in FAMILIES}
