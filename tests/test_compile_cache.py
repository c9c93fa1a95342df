"""ssm_lfilter tags torch.compile's cache keys with a fingerprint of its source (compile_cache.py):
a cache warmed by another version of the package must miss, the same source must hit."""
import shutil

import pytest
import torch

import ssm_lfilter
from ssm_lfilter import compile_cache


@pytest.fixture
def restore_tag():
    saved = torch.compiler.config.cache_key_tag
    yield
    torch.compiler.config.cache_key_tag = saved


def test_import_tags_the_compile_cache_key_with_the_source_fingerprint():
    ours = "ssm_lfilter-" + compile_cache.source_fingerprint()
    assert ours in torch.compiler.config.cache_key_tag.split(",")
    assert len(compile_cache.source_fingerprint()) == 16


def test_tagging_keeps_a_user_tag_and_is_idempotent(restore_tag):
    torch.compiler.config.cache_key_tag = "my-experiment"
    first = compile_cache.tag_compile_caches()
    assert first == "my-experiment,ssm_lfilter-" + compile_cache.source_fingerprint()
    assert compile_cache.tag_compile_caches() == first
    assert torch.compiler.config.cache_key_tag == first


def test_fingerprint_covers_the_kernels_and_changes_with_any_source_byte(tmp_path):
    files = compile_cache._package_files()
    names = [name for name, _ in files]
    assert "ssm_lfilter/ops.py" in names and "ssm_lfilter/kernels/lti_adjoint.py" in names
    assert len(names) == len(set(names))
    # the same contents at another place hash alike; one changed byte (here in a kernel launcher) does not
    copies = []
    for name, path in files:
        copy = tmp_path / name
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, copy)
        copies.append((name, copy))
    assert compile_cache._fingerprint(copies) == compile_cache.source_fingerprint()
    edited = dict(copies)["ssm_lfilter/kernels/lti_adjoint.py"]
    edited.write_bytes(edited.read_bytes() + b"\n")
    assert compile_cache._fingerprint(copies) != compile_cache.source_fingerprint()
    # a file's name is hashed too: moving code between files changes the fingerprint
    renamed = [(name + "x" if i == 0 else name, path) for i, (name, path) in enumerate(files)]
    assert compile_cache._fingerprint(renamed) != compile_cache.source_fingerprint()


def _compile_lfilter_backward():
    torch._dynamo.reset()
    x = torch.randn(2, 40, requires_grad=True)
    b, a = torch.tensor([0.2, 0.3]), torch.tensor([1.0, -0.5])
    compiled = torch.compile(lambda x: ssm_lfilter.lfilter(b, a, x), backend="inductor", fullgraph=True)
    compiled(x).sum().backward()


def test_another_source_misses_a_warm_cache_and_the_same_source_hits(restore_tag, tmp_path, monkeypatch):
    from torch._dynamo.utils import counters

    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path))
    counters.clear()
    torch.compiler.config.cache_key_tag = "ssm_lfilter-0000000000000000"  # the cache of "another version"
    _compile_lfilter_backward()
    assert counters["aot_autograd"]["autograd_cache_miss"] >= 1
    for tag, result in [(f"ssm_lfilter-{compile_cache.source_fingerprint()}", "miss"),
                        (f"ssm_lfilter-{compile_cache.source_fingerprint()}", "hit")]:
        torch.compiler.config.cache_key_tag = tag
        counters.clear()
        _compile_lfilter_backward()
        assert counters["aot_autograd"][f"autograd_cache_{result}"] >= 1, dict(counters["aot_autograd"])
        assert counters["aot_autograd"]["autograd_cache_" + ("hit" if result == "miss" else "miss")] == 0


def test_an_unreadable_source_warns_and_leaves_the_tag(restore_tag, monkeypatch):
    """An install whose source cannot be read still imports: the tag stays as it was, with a warning."""
    def unreadable():
        raise OSError("no such file")

    compile_cache.source_fingerprint.cache_clear()
    monkeypatch.setattr(compile_cache, "_package_files", unreadable)
    torch.compiler.config.cache_key_tag = "mine"
    try:
        with pytest.warns(RuntimeWarning, match="cannot fingerprint its source"):
            assert compile_cache.tag_compile_caches() == "mine"
    finally:
        monkeypatch.undo()
        compile_cache.source_fingerprint.cache_clear()
    assert compile_cache.source_fingerprint()  # readable again
