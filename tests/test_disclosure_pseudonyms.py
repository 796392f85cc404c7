"""Keyed pseudonyms and key loading (cyberobs_lib.disclosure.pseudonyms)."""

from __future__ import annotations

import hashlib
import hmac

import pandas as pd
import pytest

from cyberobs_lib.config import DEMO_KEY, KEY_ENV_VAR, KEY_FILE_ENV_VAR
from cyberobs_lib.disclosure.pseudonyms import (
    MissingKeyError,
    PseudonymCollisionError,
    UnsafeKeyFileError,
    load_key,
    pseudonymize,
    pseudonymize_columns,
)

REAL_KEY = "3f1c0a9e7b5d4c2a1908f7e6d5c4b3a2"  # 32 characters, made up for these tests


@pytest.fixture
def no_key_env(monkeypatch, tmp_path):
    """No key in the environment and an empty home (no ~/.config/cyberobs/key)."""
    monkeypatch.delenv(KEY_ENV_VAR, raising=False)
    monkeypatch.delenv(KEY_FILE_ENV_VAR, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    return home


# --- HMAC values --------------------------------------------------------------------------------------


def test_rfc4231_case_2_digest():
    # RFC 4231 §4.3, test case 2: key "Jefe", data "what do ya want for nothing?", HMAC-SHA-256 =
    expected = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    out = pseudonymize(pd.Series(["what do ya want for nothing?"]), key=b"Jefe", prefix="", length=64)
    assert out.iloc[0] == expected


def test_matches_independent_hmac_and_truncates():
    key = REAL_KEY.encode()
    values = pd.Series(["010000024", "759999907", "www.chu-x.fr"], index=[10, 20, 30], name="finess")
    out = pseudonymize(values, key=key, prefix="E", length=10)
    expected = ["E" + hmac.new(key, v.encode(), hashlib.sha256).hexdigest()[:10] for v in values]
    assert out.tolist() == expected
    assert out.index.tolist() == [10, 20, 30] and out.name == "finess"


def test_stable_na_preserved_and_input_untouched():
    key = REAL_KEY.encode()
    values = pd.Series(["A", None, "B", "A", pd.NA], dtype=object)
    before = values.copy()
    out = pseudonymize(values, key=key)
    assert out[0] == out[3] and out[0] != out[2]
    assert out[[1, 4]].isna().all()
    pd.testing.assert_series_equal(values, before)
    # Same key, another call, another table: the same pseudonym (joins keep working).
    assert pseudonymize(pd.Series(["A"]), key=key).iloc[0] == out[0]
    # Another key: another pseudonym.
    assert pseudonymize(pd.Series(["A"]), key=b"another-key-0123456789").iloc[0] != out[0]


def test_collision_is_raised_not_silent():
    # With one hex character there are only 16 pseudonyms: 40 distinct values must collide.
    with pytest.raises(PseudonymCollisionError, match="longer length"):
        pseudonymize(pd.Series([str(i) for i in range(40)]), key=b"k", length=1)


@pytest.mark.parametrize(
    "bad", [{"key": "text"}, {"key": b""}, {"key": b"k", "length": 0}, {"key": b"k", "length": 65}]
)
def test_bad_arguments(bad):
    with pytest.raises((TypeError, ValueError)):
        pseudonymize(pd.Series(["x"]), **bad)


def test_pseudonymize_columns():
    key = REAL_KEY.encode()
    frame = pd.DataFrame({"finess": ["759999907", None], "host": ["10.0.0.1", "10.0.0.2"], "n": [1, 2]})
    out = pseudonymize_columns(frame, ["finess", "host"], key=key, prefix={"host": "H"})
    assert list(out.columns) == ["finess", "host", "n"]
    assert out["finess"].iloc[0] == pseudonymize(pd.Series(["759999907"]), key=key).iloc[0]
    assert out["finess"].isna().iloc[1]
    assert out["host"].str.startswith("H").all() and out["n"].tolist() == [1, 2]
    assert frame["finess"].iloc[0] == "759999907"  # not mutated
    with pytest.raises(KeyError, match="name"):
        pseudonymize_columns(frame, ["name"], key=key)


# --- key loading ----------------------------------------------------------------------------------


def test_missing_key_message_says_how(no_key_env):
    with pytest.raises(MissingKeyError) as error:
        load_key(demo=False)
    message = str(error.value)
    assert "export CYBEROBS_KEY=$(python -c 'import secrets;print(secrets.token_hex(32))')" in message
    assert KEY_FILE_ENV_VAR in message


def test_demo_key_only_in_demo_mode_and_only_when_no_key_is_set(no_key_env, monkeypatch):
    assert load_key(demo=True) == DEMO_KEY.encode()
    with pytest.raises(MissingKeyError, match="--demo"):  # outside demo mode, no fallback
        load_key()
    # issue 16: a key that is set is always used, on the demo data too (pseudonyms follow the key)
    monkeypatch.setenv(KEY_ENV_VAR, REAL_KEY)
    assert load_key(demo=True) == REAL_KEY.encode()
    assert load_key(demo=True, key="explicit-key-0123456789") == b"explicit-key-0123456789"
    with pytest.raises(MissingKeyError, match="at least 16"):  # a set key is checked in demo mode too
        load_key(demo=True, key="short")


def test_truth_json_in_dataset_folder_does_not_switch_keys(no_key_env, monkeypatch, tmp_path):
    """Issue 16: a stray truth.json in a real dataset folder switched pseudonyms to the public key."""
    from cyberobs_lib.studies.publish import pseudonymize_establishments, study_key

    dataset = tmp_path / "real"
    dataset.mkdir()
    (dataset / "truth.json").write_text("{}")

    class Data:  # what load_study_data returns, with truth.json among the inputs
        summary = {"inputs": {"truth.json": "0" * 64}}

    monkeypatch.delenv("CYBEROBS_DEMO", raising=False)
    with pytest.raises(MissingKeyError):
        study_key(Data())
    monkeypatch.setenv(KEY_ENV_VAR, REAL_KEY)
    assert study_key(Data()) == REAL_KEY.encode()
    monkeypatch.setenv("CYBEROBS_DEMO", "1")
    assert study_key(Data()) == REAL_KEY.encode()  # the set key wins over demo mode
    table = pd.DataFrame({"establishment": ["010000024"], "audit_from": ["A000119-01"], "n": [1]})
    out = pseudonymize_establishments(table, Data())
    assert (
        out["establishment"].iloc[0] == pseudonymize(pd.Series(["010000024"]), key=REAL_KEY.encode()).iloc[0]
    )
    monkeypatch.setenv(KEY_ENV_VAR, "another-secret-key-0123456789")
    assert pseudonymize_establishments(table, Data())["establishment"].iloc[0] != out["establishment"].iloc[0]


def test_audit_ids_and_join_keys_are_pseudonymised(no_key_env, monkeypatch):
    """Issue 16: raw audit ids (A000119-01 is establishment 119; AUD014053177 carries a FINESS) were published."""
    from cyberobs_lib.studies.publish import pseudonymize_establishments

    monkeypatch.setenv(KEY_ENV_VAR, REAL_KEY)
    table = pd.DataFrame(
        {
            "establishment": ["014053177"],
            "audit_from": ["AUD014053177"],
            "audit_to": ["A000119-02"],
            "host": ["10.1.2.3"],
            "name": ["CH X"],
            "n": [1],
        }
    )
    out = pseudonymize_establishments(table)
    assert "name" not in out.columns
    text = out.to_csv(index=False)
    for raw in ("014053177", "A000119", "10.1.2.3"):
        assert raw not in text
    assert out["audit_from"].iloc[0].startswith("A") and out["host"].iloc[0].startswith("H")
    key = REAL_KEY.encode()
    assert (
        out["audit_from"].iloc[0]
        == pseudonymize(pd.Series(["AUD014053177"]), key=key, prefix="A", length=12).iloc[0]
    )
    # a confidential report keeps the raw values
    assert pseudonymize_establishments(table, published=False).equals(table)


def test_env_var_then_key_file_then_user_file(no_key_env, monkeypatch, tmp_path):
    user_file = no_key_env / ".config" / "cyberobs" / "key"
    user_file.parent.mkdir(parents=True)
    user_file.write_text("user-file-key-0123456789\n")
    assert load_key(demo=False) == b"user-file-key-0123456789"  # newline stripped
    key_file = tmp_path / "secret" / "key"
    key_file.parent.mkdir()
    key_file.write_text("file-env-key-0123456789")
    monkeypatch.setenv(KEY_FILE_ENV_VAR, str(key_file))
    assert load_key(demo=False) == b"file-env-key-0123456789"
    monkeypatch.setenv(KEY_ENV_VAR, REAL_KEY)
    assert load_key(demo=False) == REAL_KEY.encode()
    assert load_key(demo=False, key="explicit-key-0123456789") == b"explicit-key-0123456789"


def test_refuses_key_file_inside_git_work_tree(no_key_env, monkeypatch, tmp_path):
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "conf").mkdir()
    key_file = repo / "conf" / "key"
    key_file.write_text(REAL_KEY)
    monkeypatch.setenv(KEY_FILE_ENV_VAR, str(key_file))
    with pytest.raises(UnsafeKeyFileError, match="inside the git work tree"):
        load_key(demo=False)


def test_refuses_missing_or_empty_key_file(no_key_env, monkeypatch, tmp_path):
    monkeypatch.setenv(KEY_FILE_ENV_VAR, str(tmp_path / "nowhere"))
    with pytest.raises(UnsafeKeyFileError, match="does not exist"):
        load_key(demo=False)
    empty = tmp_path / "empty"
    empty.write_text("  \n")
    monkeypatch.setenv(KEY_FILE_ENV_VAR, str(empty))
    with pytest.raises(UnsafeKeyFileError, match="empty"):
        load_key(demo=False)


def test_refuses_short_or_demo_key_for_real_data(no_key_env, monkeypatch):
    monkeypatch.setenv(KEY_ENV_VAR, "short")
    with pytest.raises(MissingKeyError, match="at least 16"):
        load_key(demo=False)
    monkeypatch.setenv(KEY_ENV_VAR, DEMO_KEY)
    with pytest.raises(MissingKeyError, match="public demo key"):
        load_key(demo=False)
    with pytest.raises(MissingKeyError):
        load_key(demo=False, key="")
