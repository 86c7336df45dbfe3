"""``flowkit report`` (:mod:`flowkit.ui.report`, :mod:`flowkit.cli.commands_report`): one
self-contained HTML file per run: no URL outside the file (checked by parsing it), every call
in its task table embedded and linked by fragment, markup from the run escaped, secrets
absent; unknown or ambiguous run ids exit 2 naming the candidates."""

from __future__ import annotations

import os
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

import flowkit as fk
from flowkit import runs
from flowkit.cli import main
from flowkit.runview import RunView
from flowkit.ui.report import external_refs, report_html, write_report

HOSTILE = '<script>alert(1)</script> " & ü'
SECRET = "s3cr3t-report-31"


@fk.task
def parts(n: int) -> list[int]:
    print(f"parts {HOSTILE}")
    return list(range(n))


@fk.task
def half(x: int, token: fk.Secret) -> float:
    if x == 7:
        raise RuntimeError(f"seven {HOSTILE}")
    fk.card.markdown(f"**item** {x} [site](https://example.org) {HOSTILE}")
    return x / 2


@fk.workflow
def report_wf(n: int, token: fk.Secret, note: str = HOSTILE) -> list[float]:
    return half.map(x=parts(n), token=fk.unmapped(token))


class Links(HTMLParser):
    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []
        self.ids: set[str] = set()
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if found.get("id"):
            self.ids.add(found["id"] or "")
        if tag == "a" and found.get("href"):
            self.hrefs.append(found["href"] or "")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("report") / "store")


@pytest.fixture(scope="module")
def run(store: str) -> RunView:
    with pytest.raises(fk.TaskFailedError):
        fk.run(report_wf, n=300, token=fk.Secret(SECRET), store=store)
    return runs.latest("report_wf", store=store)


def test_the_report_names_nothing_outside_itself(run: RunView, tmp_path: Path) -> None:
    path = write_report(run, tmp_path / "run.html")
    html = path.read_text(encoding="utf-8")
    assert external_refs(html) == []
    assert "https://example.org" not in html  # a card's link keeps its text only
    assert "xmlns" not in html
    assert "/static/" not in html and 'href="/' not in html and 'src="/' not in html
    assert "<style>" in html and "<script>" in html  # the assets, inlined
    assert "<body data-live" not in html
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # shareable as any file written


def test_every_call_shown_is_embedded_and_linked(run: RunView) -> None:
    html = report_html(run)
    links = Links(html)
    fragments = [h for h in links.hrefs if h.startswith("#")]
    assert len(fragments) > 200
    assert all(h[1:] in links.ids for h in fragments)
    assert html.count('<section class="task-detail"') == html.count('<tr class="task"')
    failed = re.search(
        r'<section class="task-detail" id="[^"]+" data-node="half\[7\]">(.*?)</section>', html, re.S
    )
    assert failed is not None
    assert '<pre class="traceback">' in failed.group(1) and "seven" in failed.group(1)
    assert 'id="inputs"' not in html  # many sections in one page: classes, not ids


def test_markup_from_the_run_is_escaped_and_secrets_absent(run: RunView) -> None:
    html = report_html(run)
    assert html.count("<script>") == 1  # flowkit.js, inlined
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)" in html
    assert SECRET not in html


def test_the_command_writes_the_default_file_and_refuses_bad_ids(
    run: RunView,
    store: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["report", run.id[:20], "--store", store]) == 0
    written = tmp_path / f"{run.id}.html"
    assert written.is_file() and capsys.readouterr().out.strip() == f"{run.id}.html"
    assert main(["report", run.id, "--store", store, "-o", "named.html"]) == 0
    assert (tmp_path / "named.html").read_text(encoding="utf-8").startswith("<!doctype html>")

    assert main(["report", "nope", "--store", store]) == 2
    err = capsys.readouterr().err
    assert "no run 'nope'" in err and run.id in err
    assert main(["report", "2", "--store", store]) == 2 or len(runs.list(store=store)) == 1
    assert main(["report", "x", "--store", str(tmp_path / "absent")]) == 2
    assert "there is no store" in capsys.readouterr().err
