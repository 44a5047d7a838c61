"""The torch matrix: load and validate ``matrix/torch.toml``, then select the cells to run.

Data lives in the TOML file (schema: matrix/README.md); this module only checks it and
applies the ``FAKEDIST_*`` overrides. It never imports torch, so nox and the CLI can use
it before any torch exists. Every problem is a :class:`MatrixError` with one line naming
the file (or variable), the key and the bad value.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from fakedist.tooling.devices import DriverVersion

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised only on Python < 3.11
    import tomli as tomllib

__all__ = [
    "MINOR_PATTERN",
    "PYTHON_PATTERN",
    "RELEASE_PATTERN",
    "Cell",
    "CudaChoiceError",
    "Matrix",
    "MatrixError",
    "Selection",
    "Skipped",
    "TorchRelease",
    "Variant",
    "choose_cuda_variant",
    "find_matrix_file",
    "github_matrix",
    "load_matrix",
    "packaged_matrix_file",
    "select_cells",
]

ENV_MATRIX = "FAKEDIST_MATRIX"
PACKAGED_MATRIX = "torch.toml"  # the default matrix, next to this module in a wheel
ENV_TORCH = "FAKEDIST_TORCH"
ENV_PYTHON = "FAKEDIST_PYTHON"
ENV_INDEX = "FAKEDIST_TORCH_INDEX"
ENV_CUDA = "FAKEDIST_CUDA"
ENV_WHEELHOUSE = "FAKEDIST_WHEELHOUSE"

Kind = Literal["cpu", "cuda"]

# PEP 440 release versions, normalized, no local part: 2.13.0, 2.16.0.dev0, 2.14.0rc1
RELEASE_PATTERN = re.compile(r"\d+\.\d+\.\d+(?:(?:a|b|rc)\d+)?(?:\.post\d+)?(?:\.dev\d+)?")
MINOR_PATTERN = re.compile(r"\d+\.\d+")
PYTHON_PATTERN = re.compile(r"3\.\d+")
_VARIANT_NAME = re.compile(r"cpu|xpu|cu\d{2,3}|rocm\d+(?:\.\d+)*")
_DRIVER = re.compile(r"\d+(?:\.\d+){0,3}")
# a plain requirement: a name and optional version bounds, no URLs, options or markers
_BOUND = r"[<>=!~]=?\s*[0-9][0-9A-Za-z.*]*"
_REQUIREMENT = re.compile(
    rf"[A-Za-z0-9][A-Za-z0-9._-]*(?:\[[A-Za-z0-9,._-]+\])?(?:\s*{_BOUND}(?:\s*,\s*{_BOUND})*)?"
)
_URL_OVERRIDE = re.compile(r"(?:https?|file)://\S+")

_TOP_KEYS = {"schema": True, "defaults": True, "variants": True, "torch": True}
_DEFAULT_KEYS = {"torch": True, "variant": True, "compat": False}
_VARIANT_KEYS = {"index_url": True, "nightly_index_url": False, "cuda": False, "min_driver": False}
_TORCH_KEYS = {
    "minor": True,
    "version": True,
    "python": True,
    "variants": True,
    "nightly": False,
    "test_requires": False,
}


class MatrixError(ValueError):
    """Bad matrix data or a bad override; the message is one line naming the source."""


class CudaChoiceError(ValueError):
    """No CUDA build of a torch release runs with the given driver."""


@dataclass(frozen=True)
class Variant:
    """A build flavour (``cpu``, ``cu126``, ...) and where its wheels live."""

    name: str
    index_url: str
    nightly_index_url: str | None = None
    cuda: str | None = None
    min_driver: DriverVersion | None = None


@dataclass(frozen=True)
class TorchRelease:
    """One ``[[torch]]`` entry: a minor release (or ``nightly``) and its builds."""

    minor: str
    version: str
    python: tuple[str, ...]
    variants: tuple[Variant, ...]
    nightly: bool = False
    test_requires: tuple[str, ...] = ()  # installed next to this torch's test deps

    def variant(self, name: str) -> Variant | None:
        return next((v for v in self.variants if v.name == name), None)


def _cuda_key(variant: Variant) -> tuple[int, ...]:
    return tuple(int(p) for p in (variant.cuda or "0").split("."))


def choose_cuda_variant(release: TorchRelease, driver: DriverVersion) -> Variant:
    """The newest CUDA build of ``release`` that ``driver`` runs.

    Raises CudaChoiceError naming the driver needed when none qualifies.
    """
    cuda = sorted((v for v in release.variants if v.cuda), key=_cuda_key, reverse=True)
    if not cuda:
        raise CudaChoiceError(f"torch {release.version} has no CUDA build in the matrix")
    for variant in cuda:
        if variant.min_driver is None or driver >= variant.min_driver:
            return variant
    oldest = min(cuda, key=lambda v: v.min_driver or DriverVersion(()))
    raise CudaChoiceError(
        f"torch {release.version} needs NVIDIA driver >= {oldest.min_driver} "
        f"(for its {oldest.name} build); this machine has driver {driver}"
    )


@dataclass(frozen=True)
class Matrix:
    """A validated matrix file."""

    path: Path
    releases: tuple[TorchRelease, ...]
    variants: Mapping[str, Variant]
    default_torch: tuple[str, ...]
    default_variant: str
    compat: tuple[str, ...] = ()  # the minors `nox -s ci` sweeps with the compat suite

    def release(self, minor: str) -> TorchRelease | None:
        return next((r for r in self.releases if r.minor == minor), None)


@dataclass(frozen=True)
class Cell:
    """One torch build to test: version x variant x Python, and where to get it."""

    torch: str
    minor: str
    variant: str
    python: str
    index_url: str | None  # None: the installer's own configuration
    nightly: bool = False
    wheelhouse: str | None = None
    test_requires: tuple[str, ...] = ()  # the release's own pins (e.g. numpy<2 before 2.3)

    @property
    def id(self) -> str:
        return f"{self.minor}-{self.variant}"

    @property
    def requirement(self) -> str:
        return f"torch>={self.torch}" if self.nightly else f"torch=={self.torch}"

    def as_dict(self) -> dict[str, str]:
        """Flat strings for a GitHub matrix entry; ``index_url`` is ``default`` when unset."""
        return {
            "id": self.id,
            "torch": self.torch,
            "minor": self.minor,
            "variant": self.variant,
            "python": self.python,
            "index_url": self.index_url or "default",
            "requirement": self.requirement,
        }


@dataclass(frozen=True)
class Skipped:
    """A requested cell that cannot exist, with the reason."""

    id: str
    reason: str


@dataclass(frozen=True)
class Selection:
    cells: tuple[Cell, ...]
    skipped: tuple[Skipped, ...]


# ----------------------------------------------------------------------------- loading


class _Checker:
    """Typed access to raw TOML values; errors name ``file: key: value``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, key: str, problem: str) -> MatrixError:
        return MatrixError(f"{self.path}: {key}: {problem}")

    def table(self, raw: Any, key: str, spec: Mapping[str, bool]) -> dict[str, Any]:
        if not isinstance(raw, dict):
            raise self.fail(key, f"expected a table, got {raw!r}")
        for name in raw:
            if name not in spec:
                raise self.fail(f"{key}.{name}" if key else name, "unknown key")
        for name, required in spec.items():
            if required and name not in raw:
                raise self.fail(f"{key}.{name}" if key else name, "missing field")
        return raw

    def string(self, raw: Any, key: str, pattern: re.Pattern[str], what: str) -> str:
        if not isinstance(raw, str):
            raise self.fail(key, f"expected a string, got {raw!r}")
        if not pattern.fullmatch(raw):
            raise self.fail(key, f"{raw!r} is not {what}")
        return raw

    def strings(self, raw: Any, key: str, pattern: re.Pattern[str], what: str) -> tuple[str, ...]:
        if not isinstance(raw, list) or not raw:
            raise self.fail(key, f"expected a non-empty list of strings, got {raw!r}")
        values = tuple(self.string(v, f"{key}[{i}]", pattern, what) for i, v in enumerate(raw))
        for i, value in enumerate(values):
            if value in values[:i]:
                raise self.fail(f"{key}[{i}]", f"duplicate entry {value!r}")
        return values

    def url(self, raw: Any, key: str) -> str:
        if not isinstance(raw, str):
            raise self.fail(key, f"expected a string, got {raw!r}")
        if not raw.startswith("https://") or len(raw) <= len("https://"):
            raise self.fail(key, f"index URL {raw!r} is not https")
        return raw


def _variant(check: _Checker, name: str, raw: Any) -> Variant:
    key = f"variants.{name}"
    if not _VARIANT_NAME.fullmatch(name):
        raise check.fail(key, f"unknown variant {name!r} (expected cpu, xpu, cuNNN or rocmX.Y)")
    data = check.table(raw, key, _VARIANT_KEYS)
    nightly = data.get("nightly_index_url")
    variant = Variant(
        name=name,
        index_url=check.url(data["index_url"], f"{key}.index_url"),
        nightly_index_url=None
        if nightly is None
        else check.url(nightly, f"{key}.nightly_index_url"),
    )
    if not name.startswith("cu"):
        for extra in ("cuda", "min_driver"):
            if extra in data:
                raise check.fail(f"{key}.{extra}", f"only CUDA variants have {extra}")
        return variant
    for needed in ("cuda", "min_driver"):
        if needed not in data:
            raise check.fail(f"{key}.{needed}", "missing field")
    cuda = check.string(data["cuda"], f"{key}.cuda", MINOR_PATTERN, "a CUDA version like 12.6")
    if "cu" + cuda.replace(".", "") != name:
        raise check.fail(f"{key}.cuda", f"{cuda!r} does not match the variant name {name!r}")
    driver = check.string(
        data["min_driver"], f"{key}.min_driver", _DRIVER, "a driver version like 525.60.13"
    )
    return Variant(
        name, variant.index_url, variant.nightly_index_url, cuda, DriverVersion.parse(driver)
    )


def _release(
    check: _Checker, index: int, raw: Any, variants: Mapping[str, Variant]
) -> TorchRelease:
    data = check.table(raw, f"torch[{index}]", _TORCH_KEYS)
    nightly = data.get("nightly", False)
    if not isinstance(nightly, bool):
        raise check.fail(f"torch[{index}].nightly", f"expected true or false, got {nightly!r}")
    minor_pattern = re.compile(r"[a-z][a-z0-9-]*") if nightly else MINOR_PATTERN
    minor = check.string(data["minor"], f"torch[{index}].minor", minor_pattern, "a minor like 2.13")
    key = f"torch[{minor}]"
    version = check.string(
        data["version"], f"{key}.version", RELEASE_PATTERN, "a PEP 440 version like 2.13.0"
    )
    if not nightly and not version.startswith(minor + "."):
        raise check.fail(f"{key}.version", f"{version!r} is not a {minor} release")
    python = check.strings(
        data["python"], f"{key}.python", PYTHON_PATTERN, "a Python version like 3.11"
    )
    names = check.strings(data["variants"], f"{key}.variants", _VARIANT_NAME, "a variant name")
    for i, name in enumerate(names):
        if name not in variants:
            raise check.fail(f"{key}.variants[{i}]", f"unknown variant {name!r}")
    if nightly and any(variants[n].nightly_index_url is None for n in names):
        bad = next(n for n in names if variants[n].nightly_index_url is None)
        raise check.fail(f"{key}.variants", f"variant {bad!r} has no nightly_index_url")
    requires: tuple[str, ...] = ()
    if "test_requires" in data:
        requires = check.strings(
            data["test_requires"], f"{key}.test_requires", _REQUIREMENT, "a requirement"
        )
    return TorchRelease(
        minor, version, python, tuple(variants[n] for n in names), nightly, requires
    )


def _text(path: Path, data: bytes) -> str:
    """The file's text: UTF-8 without a byte-order mark (TOML's encoding), else MatrixError."""
    boms = {b"\xef\xbb\xbf": "UTF-8", b"\xff\xfe": "UTF-16", b"\xfe\xff": "UTF-16"}
    for bom, encoding in boms.items():
        if data.startswith(bom):
            raise MatrixError(
                f"{path}: starts with a {encoding} byte-order mark ({bom.hex(' ')});"
                " save it as UTF-8 without one"
            )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MatrixError(
            f"{path}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start});"
            " save it as UTF-8"
        ) from None


def load_matrix(path: str | Path) -> Matrix:
    """Read and validate a matrix file; raise MatrixError on the first problem."""
    path = Path(path)
    check = _Checker(path)
    try:
        text = _text(path, path.read_bytes())
    except OSError as exc:
        raise MatrixError(f"{path}: cannot read the matrix file ({exc.strerror})") from None
    if not text.strip():
        raise MatrixError(f"{path}: the matrix file is empty")
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MatrixError(f"{path}: TOML syntax error: {exc}") from None
    data = check.table(raw, "", _TOP_KEYS)
    if type(data["schema"]) is not int or data["schema"] != 1:  # True == 1 in Python
        raise check.fail("schema", f"unsupported schema {data['schema']!r} (expected 1)")
    variants_raw = data["variants"]
    if not isinstance(variants_raw, dict) or not variants_raw:
        raise check.fail("variants", f"expected a table of variants, got {variants_raw!r}")
    variants = {name: _variant(check, name, value) for name, value in variants_raw.items()}
    torch_raw = data["torch"]
    if not isinstance(torch_raw, list) or not torch_raw:
        raise check.fail("torch", "expected [[torch]] entries")
    releases: list[TorchRelease] = []
    for i, entry in enumerate(torch_raw):
        release = _release(check, i, entry, variants)
        if any(r.minor == release.minor for r in releases):
            raise check.fail(f"torch[{i}].minor", f"duplicate entry {release.minor!r}")
        releases.append(release)
    defaults = check.table(data["defaults"], "defaults", _DEFAULT_KEYS)
    minors = {r.minor for r in releases}
    default_torch = check.strings(
        defaults["torch"], "defaults.torch", re.compile(r"\S+"), "a torch minor"
    )
    for i, minor in enumerate(default_torch):
        if minor not in minors:
            raise check.fail(f"defaults.torch[{i}]", f"{minor!r} has no [[torch]] entry")
    default_variant = check.string(
        defaults["variant"], "defaults.variant", _VARIANT_NAME, "a variant"
    )
    if default_variant not in variants:
        raise check.fail("defaults.variant", f"unknown variant {default_variant!r}")
    compat: tuple[str, ...] = ()
    if "compat" in defaults:
        compat = check.strings(
            defaults["compat"], "defaults.compat", MINOR_PATTERN, "a torch minor"
        )
        for i, minor in enumerate(compat):
            if minor not in minors:
                raise check.fail(f"defaults.compat[{i}]", f"{minor!r} has no [[torch]] entry")
    return Matrix(path, tuple(releases), variants, default_torch, default_variant, compat)


def packaged_matrix_file() -> Path | None:
    """The default matrix that ships with fakedist: in the package when installed from a
    wheel (setup.py copies it in), else the checkout's ``matrix/torch.toml`` (editable
    installs, ``PYTHONPATH``); None when neither exists."""
    here = Path(__file__).resolve()
    for candidate in (here.with_name(PACKAGED_MATRIX), here.parents[3] / "matrix" / "torch.toml"):
        if candidate.is_file():
            return candidate
    return None


def find_matrix_file(env: Mapping[str, str], cwd: str | Path | None = None) -> Path:
    """``FAKEDIST_MATRIX``, else ``matrix/torch.toml`` under ``cwd`` or the working directory
    (a project's own matrix), else the default matrix fakedist ships with."""
    if env.get(ENV_MATRIX):
        return Path(env[ENV_MATRIX])
    local = (Path(cwd) if cwd else Path()) / "matrix" / "torch.toml"
    for candidate in (local, Path("matrix") / "torch.toml"):
        if candidate.is_file():
            return candidate
    packaged = packaged_matrix_file()
    if packaged is None:
        raise MatrixError(
            f"{local}: no matrix file here, and this fakedist ships no default matrix"
            f" (fakedist/tooling/{PACKAGED_MATRIX}); set {ENV_MATRIX} to a matrix TOML file"
        )
    return packaged


# --------------------------------------------------------------------------- selection


def _requested(matrix: Matrix, value: str) -> list[tuple[TorchRelease, str]]:
    """Parse FAKEDIST_TORCH into (release, exact version) pairs."""
    token = value.strip()
    if token in ("", "default"):
        chosen = [matrix.release(m) for m in matrix.default_torch]
        return [(r, r.version) for r in chosen if r is not None]
    if token == "all":
        return [(r, r.version) for r in matrix.releases]
    known = ", ".join(r.minor for r in matrix.releases)
    out: list[tuple[TorchRelease, str]] = []
    for part in (p.strip() for p in token.split(",")):
        if not part:
            continue
        if MINOR_PATTERN.fullmatch(part):
            minor, version = part, None
        elif RELEASE_PATTERN.fullmatch(part):
            minor, version = ".".join(part.split(".")[:2]), part
        elif part in {r.minor for r in matrix.releases}:
            minor, version = part, None
        else:
            raise MatrixError(
                f"{ENV_TORCH}: {part!r} is not a torch version "
                "(use e.g. 2.13, 2.13.0, all, default, nightly)"
            )
        release = matrix.release(minor)
        if release is None:
            raise MatrixError(f"{ENV_TORCH}: torch {part} is not in {matrix.path} (known: {known})")
        pair = (release, version or release.version)
        other = next((v for r, v in out if r is release and v != pair[1]), None)
        if other is not None:  # one cell per minor: its id names the venv, junit and coverage
            raise MatrixError(
                f"{ENV_TORCH}: {other} and {pair[1]} are both torch {release.minor}, and a run"
                " has one cell per minor: choose one"
            )
        if pair not in out:
            out.append(pair)
    if not out:
        raise MatrixError(f"{ENV_TORCH}: {value!r} names no torch version")
    return out


def _index_override(value: str) -> str | Literal[False] | None:
    """False: use the matrix URLs; None: installer's configuration; str: a URL template."""
    value = value.strip()
    if not value:
        return False
    if value == "default":
        return None
    if not _URL_OVERRIDE.fullmatch(value):
        raise MatrixError(f"{ENV_INDEX}: {value!r} is not an index URL or 'default'")
    return value


def _variant_for(
    matrix: Matrix,
    release: TorchRelease,
    kind: Kind | None,
    forced: str | None,
    driver: DriverVersion | None,
) -> Variant | str:
    """The variant to use, or the reason none exists."""
    builds = ", ".join(v.name for v in release.variants)
    if kind == "cuda" and forced is None:
        if driver is not None:
            try:
                return choose_cuda_variant(release, driver)
            except CudaChoiceError as exc:
                return str(exc)
        newest = [v for v in release.variants if v.cuda]
        if not newest:
            return f"torch {release.version} has no CUDA build (builds: {builds})"
        return max(newest, key=_cuda_key)
    name = "cpu" if kind == "cpu" else forced or matrix.default_variant
    found = release.variant(name)
    if found is None:
        return f"torch {release.version} has no {name} build (builds: {builds})"
    return found


def select_cells(
    matrix: Matrix,
    env: Mapping[str, str],
    *,
    kind: Kind | None = None,
    driver: DriverVersion | None = None,
    python: str | None = None,
) -> Selection:
    """Cells to run from the matrix plus ``FAKEDIST_*`` overrides in ``env``.

    ``kind="cpu"`` always picks the cpu build; ``kind="cuda"`` picks ``FAKEDIST_CUDA``, else
    the newest CUDA build ``driver`` runs (or simply the newest when ``driver`` is None);
    ``kind=None`` picks ``FAKEDIST_CUDA`` or the matrix default. ``python`` defaults to
    the running interpreter.
    """
    py = env.get(ENV_PYTHON, "").strip() or python or "{}.{}".format(*sys.version_info[:2])
    if not PYTHON_PATTERN.fullmatch(py):
        raise MatrixError(f"{ENV_PYTHON}: {py!r} is not a Python version like 3.11")
    forced = env.get(ENV_CUDA, "").strip() or None
    if forced is not None and forced not in matrix.variants:
        known = ", ".join(matrix.variants)
        raise MatrixError(f"{ENV_CUDA}: unknown variant {forced!r} (known: {known})")
    if forced is not None and kind == "cuda" and matrix.variants[forced].cuda is None:
        raise MatrixError(f"{ENV_CUDA}: {forced!r} is not a CUDA variant")
    index = _index_override(env.get(ENV_INDEX, ""))
    wheelhouse = env.get(ENV_WHEELHOUSE, "").strip() or None
    if wheelhouse is not None:
        if not Path(wheelhouse).is_dir():
            raise MatrixError(f"{ENV_WHEELHOUSE}: {wheelhouse!r} is not a directory")
        wheelhouse = str(Path(wheelhouse).resolve())
    cells: list[Cell] = []
    skipped: list[Skipped] = []
    for release, version in _requested(matrix, env.get(ENV_TORCH, "")):
        variant = _variant_for(matrix, release, kind, forced, driver)
        label = variant.name if isinstance(variant, Variant) else (kind or forced or "cpu")
        cell_id = f"{release.minor}-{label}"
        if isinstance(variant, str):
            skipped.append(Skipped(cell_id, variant))
            continue
        if py not in release.python:
            wheels = ", ".join(release.python)
            reason = f"torch {version} has no wheel for Python {py} (wheels: {wheels})"
            skipped.append(Skipped(cell_id, reason))
            continue
        url: str | None
        if index is False:
            url = variant.nightly_index_url if release.nightly else variant.index_url
        else:
            url = None if index is None else index.replace("{variant}", variant.name)
        cells.append(
            Cell(
                version,
                release.minor,
                variant.name,
                py,
                url,
                release.nightly,
                wheelhouse,
                release.test_requires,
            )
        )
    return Selection(tuple(cells), tuple(skipped))


def github_matrix(cells: Sequence[Cell]) -> dict[str, list[dict[str, str]]]:
    """A GitHub Actions ``strategy.matrix`` object (``{"include": [...]}``)."""
    return {"include": [cell.as_dict() for cell in cells]}
