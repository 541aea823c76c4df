"""Redirect targets stay on this site."""

import pytest

from portal.web.urls import is_local_path


@pytest.mark.parametrize("target", ["/", "/cases/3?x=1", "/auth/login?next=/x"])
def test_local_paths_are_accepted(target):
    assert is_local_path(target)


@pytest.mark.parametrize(
    "target",
    [
        None,
        "",
        "https://evil.example/",
        "//evil.example",
        "/\\evil.example",
        "javascript:x",
        "evil.example/path",
    ],
)
def test_anything_that_could_leave_the_site_is_refused(target):
    assert not is_local_path(target)
