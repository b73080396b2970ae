"""A real upload through the served app (`st.App` with the upload gate in front): an
editor's browser session uploads a file on the Add data page and its ingest job is queued;
the same request with a session id that never signed in is refused."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid

import pytest

from tests.browser.conftest import no_exception, wait_ready

pytestmark = pytest.mark.browser


def test_editor_upload_passes_the_gate(server, page, tmp_path):
    path = tmp_path / "up.jsonl"
    path.write_text("".join(json.dumps({"text": f"uploaded {i}"}) + "\n" for i in range(3)))
    page.goto(f"{server}/add_data")
    wait_ready(page)
    page.get_by_label("Source name").fill("uploaded-in-browser")
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(path))
    page.wait_for_selector('[data-testid="stFileChipName"]', timeout=30_000)
    page.wait_for_function(  # the PUT has been answered (spinner gone) and not with an error
        "() => !document.querySelector('[data-testid=\"stFileChipIconSpinner\"]')",
        timeout=30_000,
    )
    assert page.locator('[data-testid="stFileChipIconError"]').count() == 0
    page.get_by_role("button", name="Ingest").click()
    page.get_by_text("Queued job").wait_for(timeout=60_000)
    no_exception(page)
    req = urllib.request.Request(
        f"{server}/_stcore/upload_file/{uuid.uuid4()}/f",
        data=b"x",
        method="PUT",
        headers={"Content-Type": "application/octet-stream"},
    )
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(req, timeout=20)
    assert info.value.code == 403


@pytest.fixture(scope="module")
def signed_server(demo_workspace):
    from tests.browser.conftest import serve

    env = {"MIXSCOPE_VIEWER_TOKEN": "v" * 20, "MIXSCOPE_EDITOR_TOKEN": "e" * 20}
    yield from serve(demo_workspace.path, env)


def test_served_app_signs_in_and_keeps_the_deep_link(signed_server, page, demo_workspace):
    """The st.App launcher serves the same app: token sign-in, then the page and the query
    parameters of the link that was opened before signing in."""
    from analytics import overview

    src = overview.facet_values(demo_workspace.cursor(), "source")[0]
    page.goto(f"{signed_server}/explore?src={src}")
    wait_ready(page)
    page.get_by_label("Access token").fill("v" * 20)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"**/explore?src={src}*", timeout=60_000)
    page.get_by_text("signed in as").first.wait_for(timeout=60_000)
    assert "viewer" in page.locator('[data-testid="stSidebar"]').inner_text()
    no_exception(page)
