"""``fk.Secret``: shown as stars, never stored, keyed by HMAC, masked in text, CLI forms.

Planted secrets (``core_fixtures/secrets.py``) carry a marker no other value holds, so finding
their text in a store file or a header can only be a leak.
"""

from __future__ import annotations

import copy
import dataclasses
import io
import logging
import pickle
import subprocess
import sys
import tempfile
import textwrap
import uuid
from pathlib import Path
from typing import Annotated, Any

import cloudpickle
import pytest
from core_fixtures.secrets import (
    MARKER,
    SETTINGS,
    Holder,
    files_holding,
    holding,
    json_values,
    secret_texts,
)
from hypothesis import given, settings
from hypothesis import strategies as st

import flowkit as fk
from flowkit import keys, secret, serialize
from flowkit.cli import main
from flowkit.cli.params import Converter, parse_value
from flowkit.errors import SerializationError
from flowkit.secret import REDACTED, Secret, SecretError, SecretStorageError, mask
from flowkit.store import Store


@pytest.fixture(autouse=True)
def _forget_secrets_made_here() -> Any:
    """Secrets are known to the whole process once built: the short texts built here
    ("a\nb\n") would be masked in every later test's output, so each test forgets its own."""
    known, pattern = secret._known, secret._pattern
    yield
    secret._known, secret._pattern = known, pattern


def unique(prefix: str = "tok") -> str:
    return f"{MARKER}{prefix}-{uuid.uuid4().hex}"


# -- the value -------------------------------------------------------------------------------


def test_every_way_of_showing_it_shows_stars(caplog: pytest.LogCaptureFixture) -> None:
    value = unique()
    s = Secret(value)
    shown = [repr(s), str(s), f"{s}", f"{s!r}", f"{s:>20}", repr([s, {"k": s}])]
    logging.getLogger("flowkit.test").warning("token %s", s)
    shown.append(caplog.text)
    assert all(value not in text for text in shown)
    assert repr(s) == "Secret('***')" and "Secret('***')" in caplog.text
    assert s.reveal() == value


def test_only_a_str_is_wrapped_and_the_refusal_does_not_quote_it() -> None:
    with pytest.raises(TypeError, match=r"fk\.Secret wraps a str, not a bytes") as info:
        Secret(b"hunter2-bytes")  # type: ignore[arg-type]
    assert "hunter2" not in str(info.value)


def test_equal_by_value_hashable_and_immutable() -> None:
    a, b, c = Secret("same-value"), Secret("same-value"), Secret("other-value")
    assert a == b and a != c and a != "same-value"
    assert len({a, b, c}) == 2
    with pytest.raises(AttributeError, match="immutable"):
        a._value = "x"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        a.extra = 1  # type: ignore[attr-defined]


def test_from_env_reads_the_variable_and_names_it_when_unset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FK_TEST_TOKEN", "from-the-env")
    assert Secret.from_env("FK_TEST_TOKEN").reveal() == "from-the-env"
    monkeypatch.delenv("FK_TEST_TOKEN")
    with pytest.raises(SecretError, match=r"environment variable FK_TEST_TOKEN is not set"):
        Secret.from_env("FK_TEST_TOKEN")
    monkeypatch.setenv("FK_TEST_TOKEN", "")
    with pytest.raises(SecretError, match=r"FK_TEST_TOKEN is empty.*export FK_TEST_TOKEN="):
        Secret.from_env("FK_TEST_TOKEN")


def test_from_file_reads_the_first_line(tmp_path: Path) -> None:
    f = tmp_path / "token.txt"
    f.write_text("first-line-token\r\nsecond line\n")
    assert Secret.from_file(f).reveal() == "first-line-token"
    with pytest.raises(SecretError, match=r"cannot read the secret file .*missing.txt"):
        Secret.from_file(tmp_path / "missing.txt")
    (tmp_path / "empty.txt").write_text("\nlater")
    with pytest.raises(SecretError, match="empty or starts with an empty line"):
        Secret.from_file(tmp_path / "empty.txt")


def test_pickles_and_copies_for_transport() -> None:
    s = Secret(unique())
    assert pickle.loads(pickle.dumps([s]))[0] == s
    assert cloudpickle.loads(cloudpickle.dumps({"k": s}))["k"] == s
    assert copy.copy(s) is s and copy.deepcopy([s])[0] is s


def test_unpickling_in_a_fresh_process_registers_the_value_for_masking(tmp_path: Path) -> None:
    value = unique()
    (tmp_path / "s.pkl").write_bytes(cloudpickle.dumps(Secret(value)))
    script = textwrap.dedent(
        f"""
        import pickle
        from flowkit import secret
        text = "before {value} after"
        assert secret.mask(text) is text  # nothing registered yet: the text as it is
        with open("s.pkl", "rb") as f:
            s = pickle.load(f)
        print(secret.mask(text))
        print(s.reveal() == {value!r})
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["before *** after", "True"]


# -- masking ---------------------------------------------------------------------------------


def test_mask_without_a_registered_secret_is_one_check(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(secret, "_pattern", None)
    text = "nothing to hide " * 10
    assert mask(text) is text


def test_values_shorter_than_four_characters_are_not_masked() -> None:
    Secret("abc")
    Secret("")
    assert mask("abc and abc") == "abc and abc"


def test_overlapping_secrets_are_both_masked() -> None:
    Secret("overlap-abcdef")
    Secret("abcdef-overlap")
    out = mask("xx overlap-abcdef-overlap yy")
    assert "overlap-abcdef" not in out and "abcdef-overlap" not in out


@settings(SETTINGS)
@given(
    value=st.text("ab*-\n", min_size=4, max_size=8),
    pieces=st.lists(st.text("ab*-\n", max_size=6), min_size=1, max_size=4),
)
def test_masked_text_holds_no_known_secret(value: str, pieces: list[str]) -> None:
    Secret(value)  # the alphabet makes secrets overlap, repeat and touch each other's stars
    text = value.join(pieces) + value
    out = mask(text)
    assert all(known not in out for known in secret._known)
    assert mask(out) == out


# -- never stored ------------------------------------------------------------------------------


@settings(SETTINGS, max_examples=80)
@given(data=st.data(), text=st.text(min_size=1, max_size=12))
def test_serialize_refuses_a_planted_secret(data: st.DataObject, text: str) -> None:
    value = data.draw(holding(Secret(MARKER + text)))
    with pytest.raises(
        SecretStorageError,
        match=r"^cannot store task `t` output 0: a fk\.Secret is never written to the store",
    ):
        serialize.dump(value, io.BytesIO(), what="task `t` output 0")


@settings(SETTINGS, max_examples=60)
@given(data=st.data(), text=st.text(min_size=1, max_size=12))
def test_no_store_file_ever_holds_a_planted_secret(data: st.DataObject, text: str) -> None:
    value = data.draw(holding(Secret(MARKER + text)))
    with tempfile.TemporaryDirectory() as root:
        store = Store(root)
        store.check()
        with pytest.raises(SecretStorageError):
            store.put(value, what="value")
        assert files_holding(root, MARKER + text) == []


def test_frames_and_object_arrays_holding_a_secret_are_refused(tmp_path: Path) -> None:
    np = pytest.importorskip("numpy")
    pd = pytest.importorskip("pandas")
    value = unique()
    store = Store(tmp_path / "store")
    frame = pd.DataFrame({"user": ["a", "b"], "token": [Secret(value), Secret(value)]})
    array = np.array([Secret(value), 1], dtype=object)
    for v in (frame, array):
        with pytest.raises(SecretStorageError, match="never written to the store"):
            store.put(v, what="a value")
    assert files_holding(tmp_path, value) == []


def test_a_refused_large_value_leaves_nothing_on_any_store(any_store: Store) -> None:
    """2 MB, so it would be an object of its own (multipart on S3) had it been written."""
    import fsspec

    value = unique()
    with pytest.raises(SecretStorageError):
        any_store.put(["x" * (2 << 20), Holder("h", Secret(value))], what="a value")
    fs, root = fsspec.core.url_to_fs(
        any_store.url, skip_instance_cache=True, **any_store.storage_options
    )
    files = [p for p in fs.find(root) if not fs.isdir(p)]
    assert not [p for p in files if "/objects/" in p]
    assert not [p for p in files if value.encode() in fs.cat_file(p)]


def test_the_refusal_is_a_serialization_error_and_names_the_fix() -> None:
    with pytest.raises(SerializationError, match=r"pass it to tasks as its own parameter"):
        serialize.dump(Holder("x", Secret(unique())), io.BytesIO())


# -- cache keys ----------------------------------------------------------------------------------


# a store whose own secret HMAC key is made once (memory://: nothing left on disk)
_KEY_STORE = Store(f"memory://fk-secret-keys-{uuid.uuid4().hex}")


@settings(SETTINGS, max_examples=80)
@given(data=st.data(), plain=json_values, a=st.text(max_size=8), b=st.text(max_size=8))
def test_a_nested_secret_counts_by_its_hmac(
    data: st.DataObject, plain: Any, a: str, b: str
) -> None:
    sa, sb = Secret(MARKER + a), Secret(MARKER + b)
    # the same structure drawn twice from one seed, with a different secret planted
    seed = data.draw(st.integers(0, 2**32))
    va = data.draw(_seeded(sa, seed))
    vb = data.draw(_seeded(sb, seed))
    ta = keys.input_tokens(frozenset(), "t", {"x": plain, "s": va}, {})
    tb = keys.input_tokens(frozenset(), "t", {"x": plain, "s": vb}, {})
    assert ta is not None and ta == tb  # without a store: a placeholder without the HMAC
    # with the store's key, the placeholder holds the secret's HMAC: it changes with it
    ka = keys.input_tokens(frozenset(), "t", {"x": plain, "s": va}, {}, store=_KEY_STORE)
    kb = keys.input_tokens(frozenset(), "t", {"x": plain, "s": vb}, {}, store=_KEY_STORE)
    assert ka is not None and kb is not None and ka["x"] == kb["x"] == ta["x"]
    assert (ka["s"] == kb["s"]) == (a == b) and ka["s"] != ta["s"]


@settings(SETTINGS, max_examples=80)
@given(plain=json_values, a=secret_texts, b=secret_texts)
def test_a_secret_input_is_keyed_by_its_hmac(plain: Any, a: str, b: str) -> None:
    """Equal secrets give one token, different ones two; the token is not a plain digest of
    the text (nor the text), and without the store there is no key at all."""
    import hashlib

    def tokens(text: str) -> dict[str, str] | None:
        return keys.input_tokens(
            frozenset(), "t", {"x": plain, "s": Secret(text)}, {}, store=_KEY_STORE
        )

    ta, tb = tokens(a), tokens(b)
    assert ta is not None and tb is not None and ta["x"] == tb["x"]
    assert (ta["s"] == tb["s"]) == (a == b) and tokens(a) == ta
    plain_digests = {hashlib.sha256(a.encode()).hexdigest(), keys.value_token(a)}
    assert ta["s"] not in plain_digests and a not in ta["s"]
    assert keys.input_tokens(frozenset(), "t", {"s": Secret(a)}, {}) is None
    assert keys.input_tokens(frozenset({"s"}), "t", {"x": plain, "s": Secret(a)}, {}) == {
        "x": ta["x"]
    }


def test_the_hmac_key_is_the_signing_key_then_the_env_then_the_stores_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flowkit import secretkey

    monkeypatch.delenv("FLOWKIT_STORE_KEY", raising=False)
    monkeypatch.delenv(secretkey.ENV, raising=False)
    s = Secret(unique())
    plain, other = Store(tmp_path / "a"), Store(tmp_path / "b")
    plain.check()
    other.check()
    own = secretkey.secret_token(plain, s)
    assert own is not None and (tmp_path / "a" / "keys" / "secret-hmac").is_file()
    assert secretkey.secret_token(Store(tmp_path / "a"), s) == own  # read back, not remade
    assert secretkey.secret_token(other, s) != own  # each store its own random key
    assert secretkey.secret_token(Store(tmp_path / "a", read_only=True), s) == own
    assert secretkey.secret_token(Store(tmp_path / "c", read_only=True), s) is None
    monkeypatch.setenv(secretkey.ENV, "shared-secret-key")
    by_env = secretkey.secret_token(plain, s)
    assert by_env == secretkey.secret_token(other, s) != own  # one key for every store
    signed = Store(tmp_path / "signed", key="store-signing-key")
    by_store_key = secretkey.secret_token(signed, s)
    assert by_store_key not in (own, by_env)
    assert not (tmp_path / "signed" / "keys").exists()  # nothing written for a signed store
    assert secretkey.secret_token(Store(tmp_path / "x", key="store-signing-key"), s) == (
        by_store_key
    )


def _seeded(s: Secret, seed: int) -> st.SearchStrategy[Any]:
    """``holding(s)``, the same structure for every secret given one seed."""
    import random

    rnd = random.Random(seed)
    value: Any = s
    for _ in range(rnd.randint(1, 4)):
        kind = rnd.choice(["list", "tuple", "dict", "dataclass"])
        if kind == "list":
            value = [rnd.randint(0, 9), value]
        elif kind == "tuple":
            value = (value, "x" * rnd.randint(0, 3))
        elif kind == "dict":
            value = {"k": value, "n": rnd.random()}
        else:
            value = Holder("h", value)
    return st.just(value)


def test_a_nested_secret_still_counts_where_it_is() -> None:
    """Only the secret is left out: the rest of the value stays in the key."""
    s = Secret(unique())
    assert keys.value_token([1, s]) != keys.value_token([2, s])
    assert keys.value_token([1, s]) != keys.value_token([1])


def test_secret_parameters_are_found_by_annotation() -> None:
    @fk.task
    def t(a: Secret, b: Secret | None, c: Annotated[Secret, "doc"], d: str, e: list[Secret]) -> int:
        return 0

    assert keys.secret_params(t.spec) == {"a", "b", "c"}
    assert keys.is_secret(Secret("xxxx")) and not keys.is_secret("xxxx")


# -- in workflows --------------------------------------------------------------------------------


@fk.task(cache=True)
def token_length(token: Secret, n: int) -> int:
    return n + len(token.reveal())


@fk.workflow
def with_token(token: Secret, n: int = 1) -> int:
    return token_length(token, n)


@fk.task(cache=True)
def leaks(token: Secret) -> Secret:
    return token


@fk.workflow
def leaking(token: Secret) -> Secret:
    return leaks(token)


@pytest.mark.parametrize("backend", ["local", "threads"])
def test_a_changed_secret_misses_and_no_store_file_holds_one(tmp_path: Path, backend: str) -> None:
    store = str(tmp_path / "store")
    first, second = unique("first"), unique("second")
    run = fk.run(with_token, token=Secret(first), n=2, backend=backend, store=store)
    assert run.output == 2 + len(first) and not run.tasks[0].cached
    same = fk.run(with_token, token=Secret(first), n=2, backend=backend, store=store)
    assert same.tasks[0].cached  # the same secret: the same key
    again = fk.run(with_token, token=Secret(second), n=2, backend=backend, store=store)
    assert not again.tasks[0].cached and again.output == 2 + len(second)
    assert again.tasks[0].key != run.tasks[0].key
    assert files_holding(store, first) == [] and files_holding(store, second) == []


@fk.task(cache=True)
def total_length(tokens: list[Secret]) -> int:
    return sum(len(t.reveal()) for t in tokens)


@fk.workflow
def with_tokens(tokens: list[Secret]) -> int:
    return total_length(tokens)


def test_a_changed_nested_secret_misses_too(tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    a, b = unique("a"), unique("b")
    first = fk.run(with_tokens, tokens=[Secret(a), Secret(b)], store=store)
    same = fk.run(with_tokens, tokens=[Secret(a), Secret(b)], store=store)
    other = fk.run(with_tokens, tokens=[Secret(a), Secret(b + "x")], store=store)
    assert not first.tasks[0].cached and same.tasks[0].cached and not other.tasks[0].cached
    assert other.output == first.output + 1
    assert files_holding(store, a) == [] and files_holding(store, b) == []


def test_a_task_returning_a_secret_fails_with_the_reason(tmp_path: Path) -> None:
    with pytest.raises(fk.FlowkitError) as info:
        fk.run(leaking, token=Secret(unique()), store=str(tmp_path / "store"))
    text = " ".join(str(e) for e in _chain(info.value))
    assert "task `leaks`" in text and "a fk.Secret is never written to the store" in text


def _chain(e: BaseException | None) -> list[BaseException]:
    out = []
    while e is not None:
        out.append(e)
        e = e.__cause__ or e.__context__
    return out


def test_cli_takes_env_and_file_forms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FK_A", "alpha-token")
    monkeypatch.setenv("FK_B", "beta-token")
    (tmp_path / "t.txt").write_text("file-token\nignored\n")
    assert parse_value("env:FK_A", Secret) == Secret("alpha-token")
    assert parse_value(f"file:{tmp_path / 't.txt'}", Secret) == Secret("file-token")
    assert parse_value("none", Secret | None) is None
    assert parse_value("env:FK_A,env:FK_B", list[Secret]) == [
        Secret("alpha-token"),
        Secret("beta-token"),
    ]
    assert parse_value('{"a": "env:FK_B"}', dict[str, Secret]) == {"a": Secret("beta-token")}


@pytest.mark.parametrize("tp", [Secret, Secret | None, list[Secret]])
@pytest.mark.parametrize("text", ["hunter2-literal", "env:", "vault:hunter2-literal"])
def test_cli_refuses_a_literal_without_quoting_it(tp: Any, text: str) -> None:
    import argparse

    with pytest.raises(argparse.ArgumentTypeError) as info:
        Converter("token", tp)(text)
    message = str(info.value)
    assert "hunter2" not in message
    assert "env:NAME" in message and "file:PATH" in message and "input `token`" in message


def test_cli_names_an_unset_variable() -> None:
    import argparse

    with pytest.raises(argparse.ArgumentTypeError, match="FK_SURELY_UNSET_VAR is not set"):
        Converter("token", Secret)("env:FK_SURELY_UNSET_VAR")


FLOW = """
import flowkit as fk

@fk.task(cache=True)
def token_length(token: fk.secret.Secret) -> int:
    return len(token.reveal())

@fk.workflow
def wf(token: fk.secret.Secret) -> int:
    return token_length(token)
"""


def test_flowkit_run_reads_a_secret_and_refuses_a_literal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "flow.py").write_text("import flowkit.secret\n" + FLOW)
    monkeypatch.chdir(tmp_path)
    value = unique()
    monkeypatch.setenv("FK_TOKEN", value)
    assert main(["run", "flow.py", "--store", "s", "--token", "env:FK_TOKEN"]) == 0
    assert capsys.readouterr().out == f"{len(value)}\n"
    assert main(["run", "flow.py", "--store", "s", "--token", "hunter2-literal"]) == 2
    err = capsys.readouterr().err
    assert "is a fk.Secret: give env:NAME" in err and "hunter2" not in err
    assert files_holding(tmp_path / "s", value) == []


def test_flowkit_run_in_a_fresh_process_with_a_file_secret(tmp_path: Path) -> None:
    (tmp_path / "flow.py").write_text("import flowkit.secret\n" + FLOW)
    value = unique()
    (tmp_path / "token").write_text(value + "\n")
    flowkit = Path(sys.executable).parent / "flowkit"
    out = subprocess.run(
        [str(flowkit), "run", "flow.py", "--store", "s", "--token", "file:token"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout == f"{len(value)}\n"
    assert files_holding(tmp_path / "s", value) == []


# -- what readers get for a secret ---------------------------------------------------------------


def test_redacted_says_how_to_give_the_secret_again() -> None:
    assert pickle.loads(pickle.dumps(REDACTED)) is REDACTED
    with pytest.raises(SecretError, match=r"was not recorded.*env:NAME / file:PATH"):
        REDACTED.reveal()


# -- the wiring in the runner, the records and code fingerprints ---------------------------------


def test_a_secret_constant_leaves_nothing_of_its_value_in_the_fingerprint() -> None:
    from flowkit.codehash.values import ValueEncoder

    encoder = ValueEncoder(lambda obj: repr(obj))
    a, b = unique("constant"), unique("constant")
    assert encoder.encode(Secret(a)) == encoder.encode(Secret(b))
    assert a not in repr(encoder.encode(Secret(a)))


@fk.task
def prints_it(token: Secret) -> int:
    print("the token is", token.reveal())
    raise ValueError(f"bad token {token.reveal()}")


@fk.workflow
def printing(token: Secret) -> int:
    return prints_it(token)


def test_logs_and_errors_in_the_store_are_masked(tmp_path: Path) -> None:
    value = unique()
    store = str(tmp_path / "store")
    with pytest.raises(fk.TaskFailedError):
        fk.run(printing, token=Secret(value), store=store)
    assert files_holding(store, value) == []


def test_the_run_header_marks_the_secret(tmp_path: Path) -> None:
    import json

    store = tmp_path / "store"
    run = fk.run(with_token, token=Secret(unique()), n=1, store=str(store))
    header = json.loads((store / "runs" / run.id / "run.json").read_text().partition("\n")[2])
    assert header["inputs"]["token"] == {"$secret": True}


def test_dataclasses_holding_secrets_compare_by_value() -> None:
    @dataclasses.dataclass(frozen=True)
    class Creds:
        user: str
        token: Secret

    assert Creds("u", Secret("same-token")) == Creds("u", Secret("same-token"))
    assert "same-token" not in repr(Creds("u", Secret("same-token")))


def test_flowkit_run_secret_option_fills_a_secret_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "flow.py").write_text("import flowkit.secret\n" + FLOW)
    monkeypatch.chdir(tmp_path)
    value = unique()
    monkeypatch.setenv("FK_TOKEN", value)
    (tmp_path / "token.txt").write_text(value + "x\n")
    run = ["run", "flow.py", "--store", "s"]
    assert main([*run, "--secret", "token=env:FK_TOKEN"]) == 0
    assert capsys.readouterr().out == f"{len(value)}\n"
    assert main([*run, f"--secret=token=file:{tmp_path / 'token.txt'}"]) == 0
    assert capsys.readouterr().out == f"{len(value) + 1}\n"  # another secret: another key
    assert files_holding(tmp_path / "s", value) == []


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("token=hunter2-literal", "give env:VAR (an environment variable) or file:PATH"),
        ("token", "--secret takes NAME=env:VAR"),
        ("tokn=env:FK_TOKEN", "workflow `wf` has no input `tokn`; its inputs: token, n"),
        ("n=env:FK_TOKEN", "input `n` of workflow `wf` is not typed fk.Secret; give it as --n"),
        ("token=env:FK_SURELY_UNSET_TOKEN", "FK_SURELY_UNSET_TOKEN is not set"),
    ],
)
def test_flowkit_run_secret_option_errors(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    given: str,
    message: str,
) -> None:
    flow = FLOW.replace(
        "def wf(token: fk.secret.Secret)", "def wf(token: fk.secret.Secret, n: int = 1)"
    )
    (tmp_path / "flow.py").write_text("import flowkit.secret\n" + flow)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FK_TOKEN", unique())
    assert main(["run", "flow.py", "--store", "s", "--secret", given]) == 2
    err = capsys.readouterr().err
    assert message in err and "hunter2" not in err


def test_the_stores_own_hmac_key_is_created_once_on_any_store(
    any_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two processes' worth of readers (a fresh Store object, the process cache dropped) agree
    on the key the first one created, on a local folder, memory:// and S3."""
    from flowkit import secretkey

    monkeypatch.delenv(secretkey.ENV, raising=False)
    assert not any_store.signed  # else the signing key would be used, and nothing stored
    s = Secret(unique())
    monkeypatch.setattr(secretkey, "_stored", {})
    first = secretkey.secret_token(any_store, s)
    monkeypatch.setattr(secretkey, "_stored", {})
    again = secretkey.secret_token(any_store, s)
    assert first is not None and first == again
    doc = any_store.read_doc(secretkey.KEY_DOC)
    assert set(doc) == {"hmac_key"} and len(bytes.fromhex(doc["hmac_key"])) == 32


def test_golden_secret_token(monkeypatch: pytest.MonkeyPatch) -> None:
    """The pre-image of a secret input's token is pinned (a change needs the store-format rule
    of docs/store.md): sha256 of ["secret", HMAC-SHA256(k, text) in hex]."""
    import hashlib
    import hmac

    from flowkit import hashing, secretkey

    monkeypatch.setenv(secretkey.ENV, "golden-key")
    token = secretkey.secret_token(Store("memory://golden-secret-token"), Secret("golden-secret"))
    mac = hmac.new(b"golden-key", b"golden-secret", hashlib.sha256).hexdigest()
    assert token == hashing.hash_struct("secret", mac)
    assert token == "e8544d8dc8508c30d4932a98d8b182ea9379f6a3270a92a394e4c38b1b196869"


@fk.task  # kept, not cached: resume matches its calls by key
def kept_length(token: Secret, n: int) -> int:
    return n + len(token.reveal())


@fk.task
def fail_once(x: int, flag: str) -> int:
    import os

    if os.path.exists(flag):
        return x
    raise RuntimeError("first time")


@fk.workflow
def kept_then_fail(token: Secret, flag: str, n: int = 1) -> int:
    return fail_once(kept_length(token, n), flag)


def test_resume_reuses_a_kept_call_only_with_the_same_secret(tmp_path: Path) -> None:
    store, flag = str(tmp_path / "store"), str(tmp_path / "flag")
    a = unique("a")
    with pytest.raises(fk.TaskFailedError) as info:
        fk.run(kept_then_fail, token=Secret(a), flag=flag, store=store)
    failed = info.value.run_id
    Path(flag).write_text("")
    same = fk.run(kept_then_fail, token=Secret(a), flag=flag, store=store, resume=failed)
    other = fk.run(kept_then_fail, token=Secret(a + "b"), flag=flag, store=store, resume=failed)
    reused = {t.node: t.reused_from for t in same.tasks}
    assert reused["kept_length"] == failed
    assert {t.node: t.reused_from for t in other.tasks}["kept_length"] is None
    assert other.output == same.output + 1
    assert files_holding(store, a) == []


def test_the_error_fk_run_raises_is_masked(tmp_path: Path) -> None:
    token = unique("raised")

    @fk.task(retries=1)
    def quote(key: Secret) -> int:
        raise RuntimeError(f"the API refused {key.reveal()!r}")

    @fk.workflow
    def flow(key: Secret) -> int:
        return quote(key)

    with pytest.raises(fk.TaskFailedError) as caught:
        fk.run(flow, key=Secret(token), store=str(tmp_path / "s"), backend="threads")
    assert token not in str(caught.value) and "***" in str(caught.value)
    assert caught.value.remote_traceback is not None
    assert token not in caught.value.remote_traceback


# -- a task parameter typed str ----------------------------------------------------------------


@fk.task(cache=True)
def header_length(token: str) -> int:
    assert isinstance(token, str)
    print(f"using {token} ({token!r})")  # masked in the captured log
    return len(f"Bearer {token}")


@fk.task
def leak(token: str) -> str:
    return token  # returned as it is: refused by the store like the Secret itself


@fk.workflow
def uses_text(token: Secret) -> int:
    return header_length(token)


@fk.workflow
def returns_text(token: Secret) -> str:
    return leak(token)


@pytest.mark.parametrize("backend", ["local", "threads"])
def test_a_str_parameter_gets_the_secrets_text_and_nothing_stores_it(
    tmp_path: Path, backend: str
) -> None:
    token = unique("text")
    store = str(tmp_path / "s")
    run = fk.run(uses_text, token=Secret(token), store=store, backend=backend)
    assert run.output == len("Bearer ") + len(token)
    logs = fk.runs.get(run.id, store=store)["header_length"].logs
    assert token not in logs and "using ***" in logs and "Secret('***')" in logs
    again = fk.run(uses_text, token=Secret(token), store=store, backend=backend)
    assert again.tasks[-1].cached  # the key holds the secret's HMAC: same secret, a hit
    other = fk.run(uses_text, token=Secret(unique("other")), store=store, backend=backend)
    assert not other.tasks[-1].cached  # another secret: a miss
    # returned as it is: the caller gets it in this process, the store keeps no copy
    returned = fk.run(returns_text, token=Secret(token), store=store, backend=backend)
    assert returned.output == token and repr(returned.output) == "Secret('***')"
    for path in (tmp_path / "s").rglob("*"):
        if path.is_file():
            assert token.encode() not in path.read_bytes(), path


def test_secret_text_pickles_for_transport_and_is_refused_by_the_store() -> None:
    token = unique("pickled")
    text = secret.revealed(Secret(token))
    assert type(text) is secret.SecretText and text == token and repr(text) == "Secret('***')"
    back = pickle.loads(pickle.dumps(text))
    assert type(back) is secret.SecretText and back == token
    with pytest.raises(SecretStorageError):
        serialize.dump(text, io.BytesIO(), what="task `t` output 0")
    with pytest.raises(SecretStorageError):
        serialize.dump({"k": [text]}, io.BytesIO(), what="task `t` output 0")
    assert secret.revealed(5) == 5 and mask(f"x {token} y") == "x *** y"


def test_a_secret_still_does_not_fit_other_parameter_types() -> None:
    @fk.task
    def number(x: int) -> int:
        return x

    with pytest.raises(fk.TypeMismatchError, match="Secret"):

        @fk.workflow
        def bad(token: Secret) -> int:
            return number(token)
