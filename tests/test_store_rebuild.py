"""A lost database never loses saved comics (issue 23, item 3).

The database (``serving.store``) is an index of the comic folders: deleted, emptied, damaged, or
with a damaged ``-wal``, it is rebuilt from the folders on the next start, a damaged file is kept
aside (never deleted), and ``ComicShelf.recover`` never removes a folder without a row. The last
test restarts a real ``app.py`` server on a library whose database was deleted.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from PIL import Image

from identities.owners import LOCAL, Workspace, owner_from_key, owner_from_username
from serving.saved_comics import SIDECAR, ComicShelf
from serving.store import DB_FILE, Store, StoreError

ROOT = Path(__file__).resolve().parents[1]
KEY = "ab" * 16


def _export(folder: Path, title: str, pages: int = 2) -> list[Path]:
    """What ``export_comic`` writes, small: pages, a PDF, a project.json with the title, a zip."""
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for number in range(1, pages + 1):
        Image.new("RGB", (32, 48), (number * 60, 0, 0)).save(folder / f"page_{number}.png")
        files.append(folder / f"page_{number}.png")
    (folder / "project.json").write_text(json.dumps({"format": "comic-identity", "title": title}))
    for name in ("comic.pdf", "comic.zip"):
        (folder / name).write_bytes(name.encode())
    return files + [folder / n for n in ("project.json", "comic.pdf", "comic.zip")]


def _two_owners_comics(tmp_path: Path) -> tuple[Workspace, dict]:
    """Three saved comics of two owners (through the real shelf); the store is closed after."""
    space = Workspace(tmp_path / "data", multi_user=True, examples_dir=None)
    store = Store(space.root / DB_FILE)
    shelf = ComicShelf(store, space)
    ada, bob = owner_from_key(KEY), owner_from_username("bob")
    saved = {"ada": [shelf.save(ada, f"Ada {n}", _export(tmp_path / f"e{n}", f"Ada {n}", n))
                     for n in (1, 2)],
             "bob": [shelf.save(bob, "Bob's day", _export(tmp_path / "e3", "Bob's day"))]}
    store.close()
    return space, saved


def _listed(space: Workspace) -> tuple[Store, dict[str, list[tuple[str, str, int]]]]:
    """Open the store and shelf as a restarted app does; each owner's (id, title, pages)."""
    store = Store(space.root / DB_FILE)
    shelf = ComicShelf(store, space)
    shelf.recover()
    return store, {who: sorted((c.id, c.title, len(c.pages)) for c in shelf.list(owner))
                   for who, owner in (("ada", owner_from_key(KEY)), ("bob", owner_from_username("bob")))}


def _expected(saved: dict) -> dict[str, list[tuple[str, str, int]]]:
    return {who: sorted((c.id, c.title, len(c.pages)) for c in comics)
            for who, comics in saved.items()}


def _db_files(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name.startswith(DB_FILE))


def test_a_deleted_database_is_rebuilt_from_the_comic_folders(tmp_path):
    space, saved = _two_owners_comics(tmp_path)
    for path in space.root.glob(DB_FILE + "*"):
        path.unlink()
    store, listed = _listed(space)
    assert listed == _expected(saved)
    # the rebuilt rows carry the sidecar's dates, and opening again changes nothing
    again = {r.id: r.created for r in store.comics(status=None)}
    assert again == {c.id: c.created for comics in saved.values() for c in comics}
    assert ComicShelf(store, space).recover() == 0


def test_an_emptied_database_is_rebuilt(tmp_path):
    space, saved = _two_owners_comics(tmp_path)
    (space.root / DB_FILE).write_bytes(b"")
    assert _listed(space)[1] == _expected(saved)


def test_a_damaged_database_is_kept_aside_and_rebuilt(tmp_path):
    space, saved = _two_owners_comics(tmp_path)
    path = space.root / DB_FILE
    damaged = b"\x00garbage, not SQLite\x00" * 300 + path.read_bytes()[6000:]
    path.write_bytes(damaged)
    store, listed = _listed(space)
    assert listed == _expected(saved)
    assert store.set_aside is not None and store.set_aside.read_bytes() == damaged  # kept as it was
    assert store.set_aside.name.startswith(DB_FILE + ".damaged-")


def test_a_database_whose_pages_are_damaged_is_kept_aside(tmp_path):
    """A valid header over damaged pages: ``quick_check`` catches it."""
    space, saved = _two_owners_comics(tmp_path)
    path = space.root / DB_FILE
    data = bytearray(path.read_bytes())
    data[4096 + 100:] = b"\xff" * (len(data) - 4096 - 100)  # every page after the first
    path.write_bytes(bytes(data))
    store, listed = _listed(space)
    assert listed == _expected(saved) and store.set_aside is not None


def test_a_damaged_wal_loses_no_comic_and_is_kept(tmp_path):
    """A server killed with its last rows only in the ``-wal``, which is then damaged: SQLite
    ignores the log, the folders give the rows back, and the log is kept for inspection."""
    space, saved = _two_owners_comics(tmp_path)
    script = textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {str(ROOT)!r})
        from pathlib import Path
        from identities.owners import Workspace, owner_from_key
        from serving.saved_comics import ComicShelf
        from serving.store import Store
        space = Workspace({str(space.root)!r}, multi_user=True, examples_dir=None)
        shelf = ComicShelf(Store(space.root / "{DB_FILE}"), space)
        files = [Path(p) for p in {[str(p) for p in _export(tmp_path / "e4", "Late")]!r}]
        shelf.save(owner_from_key({KEY!r}), "Late", files)
        os._exit(0)  # killed: no checkpoint, the new rows are only in the -wal
    """)
    subprocess.run([sys.executable, "-c", script], check=True, cwd=ROOT, timeout=120)
    wal = space.root / f"{DB_FILE}-wal"
    assert wal.stat().st_size > 0
    damaged = b"\xde\xad" * 16 + wal.read_bytes()[32:]  # its header: every frame is ignored
    wal.write_bytes(damaged)
    _store, listed = _listed(space)
    assert sorted(title for _id, title, _pages in listed["ada"]) == ["Ada 1", "Ada 2", "Late"]
    assert listed["bob"] == _expected(saved)["bob"]
    kept = [p for p in space.root.iterdir() if p.name.startswith(f"{DB_FILE}-wal.damaged-")]
    assert len(kept) == 1 and kept[0].read_bytes() == damaged


def test_a_clean_restart_keeps_no_wal_copy(tmp_path):
    space, saved = _two_owners_comics(tmp_path)
    store, listed = _listed(space)
    assert listed == _expected(saved) and store.wal_copy is None
    assert not [n for n in _db_files(space.root) if "damaged" in n or n.endswith(".copy")]


def test_folders_without_sidecar_or_project_keep_their_comics(tmp_path):
    """Comics saved before the sidecar existed (or with unreadable files) are adopted too, with
    the title from project.json or none."""
    space, saved = _two_owners_comics(tmp_path)
    first, second = saved["ada"]
    (first.folder / SIDECAR).unlink()
    (second.folder / SIDECAR).write_text("{ not json")
    (second.folder / "project.json").write_bytes(b"\xff" * 10)
    (space.root / DB_FILE).unlink()
    _store, listed = _listed(space)
    assert listed["ada"] == sorted([(first.id, "Ada 1", 1), (second.id, "", 2)])
    assert first.folder.is_dir() and second.folder.is_dir()


def test_schema_1_rows_are_migrated(tmp_path):
    space = Workspace(tmp_path / "data", multi_user=False, examples_dir=None)
    comic = space.comics_dir(LOCAL) / ("0123456789abcdef")
    _export(comic, "Old one", 1)
    db = sqlite3.connect(space.root / DB_FILE)
    db.executescript("""
        CREATE TABLE comics (id TEXT PRIMARY KEY, owner TEXT NOT NULL, title TEXT NOT NULL,
            pages INTEGER NOT NULL, status TEXT NOT NULL, created REAL NOT NULL,
            updated REAL NOT NULL);
        INSERT INTO comics VALUES ('0123456789abcdef', 'local', 'Old one', 1, 'saved', 5.0, 6.0);
        PRAGMA user_version=1;
    """)
    db.close()
    store = Store(space.root / DB_FILE)
    shelf = ComicShelf(store, space)
    assert shelf.recover() == 0
    assert [(c.id, c.title, c.created) for c in shelf.list(LOCAL)] == [(comic.name, "Old one", 5.0)]
    assert store.comic(comic.name).folder == LOCAL.folder


def test_a_database_that_cannot_be_opened_is_one_line_saying_how_to_recover(tmp_path):
    blocked = tmp_path / DB_FILE
    blocked.mkdir()  # a folder where the file should be: neither readable nor movable aside
    with pytest.raises(StoreError, match="cannot open the database") as caught:
        Store(blocked)
    assert "\n" not in str(caught.value) and "start again" in str(caught.value)


@pytest.mark.slow
def test_deleting_the_database_and_restarting_the_app_keeps_every_comic(tmp_path, monkeypatch):
    """Through a real server: comics saved, the database (and its -wal/-shm) deleted, the app
    started again: every comic is listed in My comics.

    The data root is outside the working folder and the server's temp folder (as
    ``/data/embeddings`` on a Space, issue 23, item 5): the library and My comics still show
    their pictures, and Gradio serves none of the data root's other files."""
    pytest.importorskip("gradio_client")
    import httpx
    import numpy as np
    import torch
    from browser.app_server import app_process
    from gradio_client import Client

    from identities.library import IdentityLibrary

    monkeypatch.setenv("TMPDIR", str(tmp_path / "server-tmp"))  # the server's temp folder
    (tmp_path / "server-tmp").mkdir()
    space = Workspace(tmp_path / "data", multi_user=False, examples_dir=None)
    identity = IdentityLibrary(space.root).add("Ada Lovelace", torch.randn(2, 32),
                                               torch.randn(2, 64), pronouns="she",
                                               face=np.full((64, 64, 3), 90, np.uint8))
    store = Store(space.root / DB_FILE)
    shelf = ComicShelf(store, space)
    saved = [shelf.save(LOCAL, title, _export(tmp_path / title, title, pages))
             for title, pages in (("First day", 1), ("Second day", 2))]
    store.close()
    for path in space.root.glob(DB_FILE + "*"):
        path.unlink()
    private = [p for p in space.root.rglob("*") if p.is_file() and p.suffix != ".png"]
    with app_process(space.root, tmp_path / "server.log") as (_server, url):
        client = Client(url, verbose=False, download_files=False)
        comics, _summary = client.predict(api_name="/my_comics")
        library, *_rest = client.predict(api_name="/library")
        shown = [item["image"]["url"] for item in [*comics, *library]]
        fetched = [httpx.get(link if link.startswith("http") else url + link.lstrip("/"))
                   for link in shown]
        refused = [httpx.get(f"{url}gradio_api/file={p}").status_code for p in private]
    assert sorted(item["caption"].split(" · ")[0] for item in comics) == ["First day", "Second day"]
    assert [item["caption"] for item in library] == ["Ada Lovelace (she)"]
    assert [r.status_code for r in fetched] == [200] * 3
    assert fetched[-1].content == identity.face_path.read_bytes()
    assert private and all(code != 200 for code in refused)  # the .safetensors, the database
    assert all(comic.folder.is_dir() for comic in saved)
    assert (space.root / DB_FILE).is_file()  # the new one, rebuilt
    assert "Traceback" not in (tmp_path / "server.log").read_text(errors="replace")


def _all_bytes(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file())


def test_browser_keys_are_stored_only_as_an_hmac(tmp_path):
    """Issue 23, item 4: the database (and the comic sidecars) hold no raw browser key; the
    secret of the HMAC is in a 0600 file beside the database, not in it."""
    from serving.server_secrets import SECRETS_FILE
    from serving.store import JobRecord

    space, _saved = _two_owners_comics(tmp_path)
    store = Store(space.root / DB_FILE)
    ada = owner_from_key(KEY)
    store.add_job(JobRecord(id="job000000001", owner=ada.id, label="Training A", name="Ada Byron",
                            pronouns="", steps=2, seed=None, status="done", folder=ada.folder))
    assert [j.id for j in store.jobs(ada.id)] == ["job000000001"]
    assert store.jobs(owner_from_key("cd" * 16).id) == []
    stored = store.job("job000000001").owner
    assert stored.startswith("key#") and KEY not in stored and stored == store.owner_ref(ada.id)
    store.close()
    assert KEY.encode() not in _all_bytes(space.root)
    secrets_file = space.root / SECRETS_FILE
    assert secrets_file.stat().st_mode & 0o777 == 0o600
    # another secret, other hashes: the id is keyed, not a plain hash of the key
    other = Store(tmp_path / "other" / DB_FILE)
    assert other.owner_ref(ada.id) != stored and other.owner_ref("hf:bob") == "hf:bob"


def test_schema_1_raw_keys_are_replaced_by_their_hmac_and_nothing_is_lost(tmp_path):
    space = Workspace(tmp_path / "data", multi_user=True, examples_dir=None)
    ada = owner_from_key(KEY)
    comic = space.comics_dir(ada) / "00000000000000aa"
    _export(comic, "Kept", 1)
    db = sqlite3.connect(space.root / DB_FILE)
    db.executescript(f"""
        PRAGMA journal_mode=WAL;
        CREATE TABLE jobs (id TEXT PRIMARY KEY, owner TEXT NOT NULL, label TEXT NOT NULL,
            name TEXT NOT NULL, pronouns TEXT NOT NULL, steps INTEGER NOT NULL, seed INTEGER,
            photo BLOB, status TEXT NOT NULL, message TEXT NOT NULL DEFAULT '',
            step INTEGER NOT NULL DEFAULT 0, total INTEGER NOT NULL DEFAULT 0,
            created REAL NOT NULL, updated REAL NOT NULL);
        CREATE TABLE comics (id TEXT PRIMARY KEY, owner TEXT NOT NULL, title TEXT NOT NULL,
            pages INTEGER NOT NULL, status TEXT NOT NULL, created REAL NOT NULL,
            updated REAL NOT NULL);
        INSERT INTO jobs VALUES ('job000000001', 'key:{KEY}', 'Training A', 'Ada Byron', '', 2,
            NULL, NULL, 'done', 'saved', 2, 2, 1.0, 2.0);
        INSERT INTO jobs VALUES ('job000000002', 'hf:bob', 'Training B', 'Bob Marley', '', 2,
            NULL, NULL, 'done', 'saved', 2, 2, 3.0, 4.0);
        INSERT INTO comics VALUES ('00000000000000aa', 'key:{KEY}', 'Kept', 1, 'saved', 5.0, 6.0);
        PRAGMA user_version=1;
    """)
    db.close()
    store = Store(space.root / DB_FILE)
    shelf = ComicShelf(store, space)
    assert shelf.recover() == 0
    assert [c.title for c in shelf.list(ada)] == ["Kept"]
    assert [j.id for j in store.jobs(ada.id)] == ["job000000001"]
    assert [j.id for j in store.jobs("hf:bob")] == ["job000000002"]
    assert store.job("job000000001").folder == ada.folder
    store.close()
    assert KEY.encode() not in _all_bytes(space.root)


@pytest.mark.slow
def test_the_app_refuses_to_start_with_one_line_when_the_database_cannot_be_opened(tmp_path):
    from browser.app_server import app_env

    library = tmp_path / "data"
    (library / DB_FILE).mkdir(parents=True)  # neither a database nor movable aside as a file
    done = subprocess.run([sys.executable, str(ROOT / "app.py"), "--preset", "tiny", "--library",
                           str(library), "--port", "1"], check=False, cwd=ROOT, env=app_env(),
                          capture_output=True, text=True, timeout=300)
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode == 2 and len(errors) == 1, done.stderr[-2000:]
    assert "cannot open the database" in errors[0] and "start again" in errors[0]
    assert "Traceback" not in done.stderr


def test_a_damaged_secrets_file_is_one_line_and_kept(tmp_path):
    from serving.server_secrets import SECRETS_FILE, SecretsError, ServerSecrets

    path = tmp_path / SECRETS_FILE
    first = ServerSecrets(path).get("owner_keys")
    assert ServerSecrets(path).get("owner_keys") == first  # kept across restarts
    assert ServerSecrets(path).get("visits") != first
    for damaged in (b"{not json", b'["a list"]', b'{"owner_keys": 3}'):
        path.write_bytes(damaged)
        with pytest.raises(SecretsError, match="move it away") as caught:
            Store(tmp_path / DB_FILE, ServerSecrets(path))
        assert "\n" not in str(caught.value) and path.read_bytes() == damaged  # never replaced
