"""Keeps ``torch.compile``'s on-disk caches from replaying another version of this package's ops.

``torch.compile`` keys its FX-graph and AOTAutograd caches on the traced graph, torch's version and
its configs, not on a custom op's Python: a graph that calls ``ssm_lfilter::lti`` gets the same key
whatever that op's registered backward and fake implementation are. After this package changes, a
warm cache (``/tmp/torchinductor_<user>`` by default, kept between runs) would replay the backward
graph traced from the previous version. That happened here: ``lti_adjoint``'s outputs changed, and the
cached backward asserted the old shapes on CI's machine. The assertion was the lucky outcome: a change
that kept the shapes would have run the old graph silently.

So importing ``ssm_lfilter`` adds a fingerprint of its own source (``ssm_lfilter`` and
``ssm_lfilter.kernels``, every ``.py`` file) to ``torch.compiler.config.cache_key_tag``, the tag torch
mixes into every compile cache key. Another version compiles afresh; the same source keeps its cache
(the fingerprint depends on the files' contents only, so it is the same on every machine with this
version, and prebuilt cache artifacts still match). A tag set before the import is kept, ours appended.
"""
from __future__ import annotations

import functools
import hashlib
import importlib.util
import warnings
from pathlib import Path

import torch

__all__ = ["source_fingerprint", "tag_compile_caches"]

_PREFIX = "ssm_lfilter-"


def _package_files() -> list[tuple[str, Path]]:
    """Every ``.py`` file of the package, named by its place in the package (``ssm_lfilter/...``), so
    an editable install and a wheel of the same source hash alike."""
    here = Path(__file__).resolve().parent
    files = {f"ssm_lfilter/{p.relative_to(here).as_posix()}": p for p in here.rglob("*.py")}
    # ssm_lfilter.kernels is installed from the repository's kernels/ (package-dir), so it is found by
    # its spec, not always under ssm_lfilter/; find_spec imports no Triton.
    spec = importlib.util.find_spec("ssm_lfilter.kernels")
    for root in (Path(p).resolve() for p in (spec.submodule_search_locations or [])) if spec else ():
        files.update({f"ssm_lfilter/kernels/{p.relative_to(root).as_posix()}": p for p in root.rglob("*.py")})
    return sorted(files.items())


def _fingerprint(files: list[tuple[str, Path]]) -> str:
    digest = hashlib.sha256()
    for name, path in files:
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


@functools.lru_cache(maxsize=1)
def source_fingerprint() -> str:
    """A hex digest of this package's Python source (contents and file names)."""
    return _fingerprint(_package_files())


def tag_compile_caches() -> str:
    """Appends ``ssm_lfilter-<fingerprint>`` to ``torch.compiler.config.cache_key_tag`` (once, however
    often it is called) and returns the tag. A torch without that setting is left as it is (``""``);
    so is the tag where the source cannot be read (an install without its ``.py`` files), with a
    warning: the import must not fail for it."""
    config = getattr(torch, "compiler", None) and getattr(torch.compiler, "config", None)
    if config is None or not hasattr(config, "cache_key_tag"):
        return ""
    try:
        ours = _PREFIX + source_fingerprint()
    except OSError as err:
        warnings.warn(f"ssm_lfilter: cannot fingerprint its source ({err}); torch.compile's caches may "
                      "replay graphs traced with another version of ssm_lfilter", RuntimeWarning, stacklevel=2)
        return config.cache_key_tag
    tag = config.cache_key_tag
    if ours not in tag.split(","):
        config.cache_key_tag = f"{tag},{ours}" if tag else ours
    return config.cache_key_tag
