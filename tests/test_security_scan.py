"""Static checks over the product code for the security rules of this project."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
PRODUCT_DIRS = ["app.py", "home.py", "pages", "services", "models", "serve", "bench"]


def product_sources() -> list[Path]:
    files: list[Path] = []
    for entry in PRODUCT_DIRS:
        path = REPO_ROOT / entry
        files.extend([path] if path.is_file() else sorted(path.rglob("*.py")))
    return files


def all_python_sources() -> list[Path]:
    return [p for p in REPO_ROOT.rglob("*.py") if ".venv" not in p.parts and "tests" not in p.parts] + [
        p for p in (REPO_ROOT / "tests").rglob("*.py") if p.name != Path(__file__).name
    ]


@pytest.mark.parametrize(
    "pattern, why",
    [
        (r"\bimport\s+pickle\b|\bfrom\s+pickle\b|\bpickle\.loads?\(", "pickle can execute code from a file"),
        (r"\bimport\s+dill\b|\bimport\s+joblib\b", "joblib/dill load pickles"),
        (r"torch\.load\((?![^)]*weights_only\s*=\s*True)", "torch.load without weights_only=True unpickles"),
        (r"allow_pickle\s*=\s*True", "numpy allow_pickle unpickles"),
        (r"(?<![.\w])(eval|exec)\(", "eval/exec of strings"),
    ],
)
def test_no_unsafe_deserialisation(pattern, why):
    offenders = [
        f"{path.relative_to(REPO_ROOT)}:{number}"
        for path in all_python_sources()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(pattern, line) and not line.lstrip().startswith("#")
    ]
    assert not offenders, f"{why}: {offenders}"


def test_unsafe_allow_html_never_used():
    # Any HTML the pages need is built from escaped text with st.markdown's own syntax instead.
    offenders = [
        str(path.relative_to(REPO_ROOT))
        for path in product_sources()
        if re.search(r"unsafe_allow_html\s*=\s*True", path.read_text(encoding="utf-8"))
    ]
    assert not offenders, offenders


def test_uploaded_file_names_never_become_paths():
    # An upload's .name is attacker-chosen: it may be shown, never joined into a filesystem path.
    pattern = re.compile(r"(open|Path|os\.path\.join|\.joinpath)\([^)]*\b\w*(upload|file|audio)\w*\.name\b")
    offenders = [
        f"{path.relative_to(REPO_ROOT)}:{number}"
        for path in product_sources()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert not offenders, offenders


def test_streamlit_config_keeps_xsrf_protection_and_upload_limit():
    config = tomllib.loads((REPO_ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert config["server"].get("enableXsrfProtection", True) is True
    assert 0 < config["server"]["maxUploadSize"] <= 50
    assert config["client"]["showErrorDetails"] in ("none", False)


def test_weights_are_safetensors_only():
    unsafe = [
        str(p.relative_to(REPO_ROOT))
        for p in (REPO_ROOT / "models").rglob("*")
        if p.suffix in {".pt", ".pth", ".pkl", ".pickle", ".bin", ".ckpt", ".joblib"}
    ]
    assert not unsafe, unsafe


def test_pages_import_no_torch():
    # Pages are thin UI; tensors live in services/ and models/.
    offenders = [
        str(path.relative_to(REPO_ROOT))
        for path in [
            REPO_ROOT / "app.py",
            REPO_ROOT / "home.py",
            *sorted((REPO_ROOT / "pages").rglob("*.py")),
        ]
        if re.search(r"^\s*(import torch|from torch)", path.read_text(encoding="utf-8"), re.MULTILINE)
    ]
    assert not offenders, offenders


def test_services_import_no_streamlit_fastapi_or_ray():
    # One contract for every caller: pages, the REST API and Ray Serve wrap services, never the reverse.
    offenders = [
        str(path.relative_to(REPO_ROOT))
        for path in sorted((REPO_ROOT / "services").rglob("*.py"))
        if re.search(
            r"^\s*(import|from) (streamlit|fastapi|starlette|ray)\b",
            path.read_text(encoding="utf-8"),
            re.MULTILINE,
        )
    ]
    assert not offenders, offenders
