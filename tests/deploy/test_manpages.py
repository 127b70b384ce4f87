"""The manual pages (docs/man/) describe the real programs: every long
option the --help of build/storaged and build/skv prints is in the page,
and every option in the page is in the --help; the pages format without a
groff warning."""

import os
import re
import subprocess

import pytest

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def help_options(binary):
    r = subprocess.run([os.path.join(TOP, "build", binary), "--help"],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r
    return set(re.findall(r"(?<![\w-])--[a-z][a-z-]*[a-z]", r.stdout))


def page_options(page):
    with open(os.path.join(TOP, "docs", "man", page)) as f:
        text = f.read()
    # roff spells a dash \- ; drop comment lines
    text = "\n".join(l for l in text.splitlines() if not l.startswith('.\\"'))
    return set(o.replace("\\-", "-") for o in
               re.findall(r"\\-\\-[a-z](?:[a-z]|\\-)*[a-z]", text))


@pytest.mark.parametrize("binary,page", [("storaged", "storaged.8"),
                                         ("skv", "skv.1")])
def test_page_and_help_name_the_same_options(binary, page):
    in_help, in_page = help_options(binary), page_options(page)
    assert len(in_help) > 10
    assert in_help - in_page == set(), "options missing from the page"
    assert in_page - in_help == set(), "options the program does not have"


@pytest.mark.parametrize("page", ["storaged.8", "skv.1"])
def test_page_formats_without_warnings(page):
    r = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z",
                        os.path.join(TOP, "docs", "man", page)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and r.stderr == "", r.stderr
