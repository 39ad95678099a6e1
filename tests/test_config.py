"""The extra.llm_exec section: defaults, and every mistake as one clear error naming the key."""

from pathlib import Path

import pytest

from llmexec.core.settings import load_settings
from llmexec.errors import ConfigError


def test_defaults_are_the_offline_pair(tmp_path):
    settings = load_settings({}, tmp_path)
    assert (settings.models["base"].kind, settings.models["base"].ref) == ("preset", "gemma-3-270m")
    assert settings.models["instruct"].ref == "smollm2-135m-instruct"
    assert settings.cache_dir == tmp_path / ".cache" / "llm-exec"


def test_paths_resolve_against_the_config_folder(tmp_path):
    settings = load_settings({"llm_exec": {"models": {"base": {"path": "m/base"}}, "cache_dir": "c"}}, tmp_path)
    assert settings.models["base"].ref == str(tmp_path / "m" / "base")
    assert settings.cache_dir == tmp_path / "c"


@pytest.mark.parametrize(
    "section, expected",
    [
        ({"timeout": 0}, "extra.llm_exec.timeout: must be a positive number"),
        ({"timout": 5}, "extra.llm_exec.timout: unknown key (the keys here are: enabled, mode, lockfile"),
        ({"max_new_tokens": "many"}, "extra.llm_exec.max_new_tokens"),
        (
            {"models": {"chat": {}}},
            "extra.llm_exec.models.chat: unknown role (the roles are: base, instruct, tuned, preferred)",
        ),
        ({"models": {"base": {"preset": "gpt-2"}}}, "expected one of gemma-3-270m, smollm2-135m-instruct, got 'gpt-2'"),
        ({"models": {"base": {"hub": "a/b"}}}, "models.base.revision: a hub model needs a pinned 40-hex commit id"),
        (
            {"models": {"base": {"hub": "a/b", "revision": "0" * 40, "path": "x"}}},
            "give exactly one of preset, hub, path",
        ),
    ],
)
def test_mistakes_are_one_error_that_names_the_key(tmp_path: Path, section, expected):
    with pytest.raises(ConfigError) as err:
        load_settings({"llm_exec": section}, tmp_path)
    assert expected in str(err.value)
    assert "--> " in str(err.value)


def test_a_bad_config_aborts_the_build_at_start_up(bare_site):
    bare_site.llm_exec["timeout"] = -1
    bare_site.write("docs/index.md", "# x\n")
    result = bare_site.build_cli()
    assert result.returncode != 0
    assert "extra.llm_exec.timeout: must be a positive number of seconds, got -1" in result.stderr
    assert "Traceback" not in result.stderr
