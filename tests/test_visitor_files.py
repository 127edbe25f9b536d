"""Per-visitor downloads (issue 23, item 4): the delivery records and the ASGI gate.

The end-to-end check with two real clients of a ``--multi-user`` server is in
tests/test_app_multiuser.py (``_visitor_files_stay_private``).
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from serving.visitor_files import VISIT_COOKIE, VisitorFiles, served_paths
from ui.visitor_files import FILE_ROUTE, VisitorFileGate, app_kwargs

SECRET = b"s" * 32


def test_visit_cookies_are_signed():
    files = VisitorFiles(SECRET)
    cookie = files.new_cookie()
    visit = files.visit_of(cookie)
    assert visit is not None and len(visit) == 32 and cookie.startswith(visit)
    forged = visit + "." + "0" * 32
    other_server = VisitorFiles(b"t" * 32)
    for bad in (forged, visit, "", None, 42, cookie + "x", cookie.upper()):
        assert files.visit_of(bad) is None
    assert other_server.visit_of(cookie) is None
    assert files.new_cookie() != cookie


def test_a_delivered_file_goes_to_its_visits_only(tmp_path):
    files = VisitorFiles(SECRET)
    ada, bob = "a" * 32, "b" * 32
    private, shared, upload = (str(tmp_path / n) for n in ("comic.zip", "face.png", "up.png"))
    files.deliver(ada, [private, shared])
    files.deliver(bob, [shared])
    assert files.may_fetch(ada, private) and not files.may_fetch(bob, private)
    assert not files.may_fetch(None, private)
    assert files.may_fetch(ada, shared) and files.may_fetch(bob, shared)
    assert files.may_fetch(bob, upload) and files.may_fetch(None, upload)  # never delivered
    # the same file by another spelling of its path
    assert not files.may_fetch(bob, str(tmp_path / "x" / ".." / "comic.zip"))
    files.deliver(None, [upload])  # sent without a visit cookie: nobody may fetch it
    assert not files.may_fetch(bob, upload) and not files.may_fetch(None, upload)


def test_served_paths_finds_every_file_of_an_output():
    output = [{"path": "/c/a.png", "url": "u", "meta": {"_type": "gradio.FileData"}},
              [{"image": {"path": "/c/b.png", "url": "u"}, "caption": "x"}],
              {"value": [{"path": "/c/c.zip", "meta": {}}], "__type__": "update"},
              "text", 3, None, {"path": "no url: not a file"}]
    assert sorted(served_paths(output)) == ["/c/a.png", "/c/b.png", "/c/c.zip"]


def _app(files: VisitorFiles) -> TestClient:
    async def serve(request):
        return PlainTextResponse("the file")

    app = Starlette(routes=[Route(FILE_ROUTE + "{path:path}", serve), Route("/", serve)],
                    **app_kwargs(files))
    return TestClient(app)


def test_the_gate_sets_a_cookie_and_hides_other_visits_files(tmp_path):
    files = VisitorFiles(SECRET)
    client_a, client_b = _app(files), _app(files)
    first = client_a.get("/")
    assert VISIT_COOKIE in first.cookies and "httponly" in first.headers["set-cookie"].lower()
    client_b.get("/")
    visit_a = files.visit_of(client_a.cookies[VISIT_COOKIE])
    assert visit_a and files.visit_of(client_b.cookies[VISIT_COOKIE]) not in (None, visit_a)
    zip_path = str(tmp_path / "cache" / "abc" / "comic.zip")
    files.deliver(visit_a, [zip_path])
    url = FILE_ROUTE + zip_path
    assert client_a.get(url).status_code == 200
    assert client_b.get(url).status_code == 404
    # other spellings of the same file: percent-encoded, through a folder and back
    assert client_b.get(url.replace("comic.zip", "%63omic.zip")).status_code == 404
    assert client_b.get(url.replace("/abc/", "/abc/%2E%2E/abc/")).status_code == 404
    assert client_a.get(url.replace("comic.zip", "%63omic.zip")).status_code == 200
    assert TestClient(client_a.app).get(url).status_code == 404  # no cookie
    assert client_b.get(FILE_ROUTE + str(tmp_path / "upload.png")).status_code == 200
    # a second response to a visit with a valid cookie sets none
    assert "set-cookie" not in client_a.get("/").headers


def test_over_https_the_cookie_works_inside_the_space_iframe(tmp_path):
    client = _app(VisitorFiles(SECRET))
    header = client.get("/", headers={"x-forwarded-proto": "https"}).headers["set-cookie"]
    assert "SameSite=None" in header and "Secure" in header


def test_single_user_mode_installs_no_gate():
    assert app_kwargs(None) == {}
    assert app_kwargs(VisitorFiles(SECRET))["middleware"][0].cls is VisitorFileGate
