"""Owners, private libraries, the SQLite store, saved comics and crash safety (kill -9), in-process
and in killed subprocesses."""

from __future__ import annotations

import os
import signal
import time
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from serving.saved_comics import ComicNotFound, ComicShelf
from identities.catalog import ReadOnlyIdentity
from identities.library import IdentityLibrary, IdentityNotFound
from identities.owners import (LOCAL, InvalidOwner, NotSignedIn, Owner, Workspace, data_root,
                                   new_key, on_space, owner_from_key, owner_from_username,
                                   parse_owner)
from serving.store import DB_FILE, INTERRUPTED_MESSAGE, JobRecord, Store

ROOT = Path(__file__).resolve().parents[1]


def _identity(library: IdentityLibrary, name: str, pronouns: str = "", width=(32, 64)) -> None:
    library.add(name, torch.randn(2, width[0]), torch.randn(2, width[1]), pronouns=pronouns,
                face=np.full((64, 64, 3), 128, np.uint8))


# ----------------------------------------------------------------------------- owners


@pytest.mark.parametrize("bad", ["", "ABCDEF" * 6, "0" * 31, "0" * 33, "../" + "0" * 29,
                                 "0" * 31 + "/", None, 12, "g" * 32])
def test_browser_keys_are_validated(bad):
    with pytest.raises(InvalidOwner, match="not valid"):
        owner_from_key(bad)


@pytest.mark.parametrize("bad", ["", "../etc", "a/b", "-x", "a..b", "x" * 97, "name with space",
                                 None, "ünï"])
def test_usernames_are_validated(bad):
    with pytest.raises(InvalidOwner):
        owner_from_username(bad)


def test_owner_ids_round_trip_and_never_become_paths():
    key = new_key()
    assert len(key) == 32 and owner_from_key(key).id == f"key:{key}" and new_key() != key
    for owner in (LOCAL, owner_from_key(key), owner_from_username("ada-l.ovelace_1")):
        assert parse_owner(owner.id) == owner
        assert owner.folder.startswith("u") and len(owner.folder) == 33
        assert key not in owner.folder and "ovelace" not in owner.folder
    assert owner_from_key(key).folder != owner_from_key(new_key()).folder
    for bad in ("key:../../x", "hf:", "hf:a/b", "admin", None):
        with pytest.raises(InvalidOwner):
            parse_owner(bad)


def test_who_a_page_visit_belongs_to():
    from identities.owners import resolve_owner

    key = new_key()
    assert resolve_owner(multi_user=False, login=False, browser_key=key, username="x") == (LOCAL, key)
    assert resolve_owner(multi_user=False, login=False, browser_key=None, username=None) == (LOCAL, "")
    # locally: the browser's key, or a fresh one for a missing or forged key
    assert resolve_owner(multi_user=True, login=False, browser_key=key, username=None) == \
        (owner_from_key(key), key)
    for bad in (None, "", "../../x", "A" * 32, {"key": key}):
        owner, fresh = resolve_owner(multi_user=True, login=False, browser_key=bad, username=None)
        assert owner == owner_from_key(fresh) and fresh != key
    # on a Space: the login alone; a key sent by the browser claims nothing
    assert resolve_owner(multi_user=True, login=True, browser_key=key, username="ada")[0] == \
        owner_from_username("ada")
    assert resolve_owner(multi_user=True, login=True, browser_key=key, username=None)[0] is None
    with pytest.raises(InvalidOwner):
        resolve_owner(multi_user=True, login=True, browser_key=None, username="../ada")


def test_space_detection_and_data_root(tmp_path):
    assert on_space({"SPACE_ID": "user/app"}) and not on_space({})
    data = tmp_path / "data"
    assert data_root(None, "embeddings", space=True, space_data=data) == Path("embeddings")
    data.mkdir()
    assert data_root(None, "embeddings", space=True, space_data=data) == data / "embeddings"
    assert data_root(None, "embeddings", space=False, space_data=data) == Path("embeddings")
    assert data_root(tmp_path / "lib", "embeddings", space=True, space_data=data) == tmp_path / "lib"


def test_private_libraries_with_shared_read_only_examples(tmp_path):
    examples = tmp_path / "examples"
    _identity(IdentityLibrary(examples), "Alan Turing", "he")
    space = Workspace(tmp_path / "data", multi_user=True, examples_dir=examples)
    ada, bob = owner_from_key(new_key()), owner_from_username("bob")
    _identity(space.library(ada), "Ada Lovelace", "she")
    assert space.catalog(ada).names() == ["Ada Lovelace", "Alan Turing"]
    assert space.catalog(bob).names() == ["Alan Turing"]  # examples only: Ada's is private
    assert space.catalog(None).names() == ["Alan Turing"]  # nobody signed in: examples alone
    with pytest.raises(IdentityNotFound):
        space.catalog(bob).get("Ada Lovelace")
    with pytest.raises(IdentityNotFound):
        space.catalog(bob).delete("Ada Lovelace")
    with pytest.raises(ReadOnlyIdentity):
        space.catalog(ada).delete("Alan Turing")
    assert "Ada Lovelace" in space.catalog(ada)  # bob's attempts changed nothing
    with pytest.raises(NotSignedIn, match="log in"):
        space.library(None)
    with pytest.raises(InvalidOwner, match="not used in multi-user mode"):
        space.library(LOCAL)
    with pytest.raises(InvalidOwner):
        space.library(Owner("key:../../evil"))  # a forged owner object is validated again
    folders = [p.name for p in (tmp_path / "data" / "users").iterdir()]
    assert folders == [ada.folder]
    # single-user mode: the library is the root itself, as before; browser owners are refused
    single = Workspace(tmp_path / "single", multi_user=False, examples_dir=examples)
    assert single.library(LOCAL).root == tmp_path / "single"
    with pytest.raises(InvalidOwner, match="not used in single-user mode"):
        single.library(ada)
    # the reserved folders of a data root never show up as broken identities
    single.comics_dir(LOCAL).mkdir(parents=True)
    (tmp_path / "single" / "users").mkdir()
    _identity(single.library(LOCAL), "Grace Hopper")
    assert single.library(LOCAL).problems() == [] and single.catalog(LOCAL).names()[0] == "Grace Hopper"


# ----------------------------------------------------------------------------- the store


def _job(job_id: str, owner: str = LOCAL.id, status: str = "queued", name: str = "Ada Lovelace"):
    return JobRecord(id=job_id, owner=owner, label=f"Training {name}", name=name, pronouns="she",
                     steps=2, seed=None, status=status, total=2, photo=b"photo-bytes")


def test_store_records_jobs_in_wal_mode_and_recovers_them(tmp_path):
    path = tmp_path / DB_FILE
    store = Store(path)
    secret = store.secret("browser")
    store.add_job(_job("a"))
    store.add_job(_job("b"))
    store.add_job(_job("c", owner="key:" + "0" * 32))
    store.set_job("a", "running", step=0, total=2)
    store.set_job("c", "done", "saved", step=2)
    assert store.job("c").photo is None and store.job("b").photo == b"photo-bytes"
    assert [j.id for j in store.jobs(LOCAL.id)] == ["b", "a"] and store.jobs("hf:x") == []
    with pytest.raises(ValueError):
        store.set_job("a", "exploded")
    store.close()

    again = Store(path)  # "after a restart"
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert again.secret("browser") == secret
    interrupted, queued = again.recover_jobs()
    assert [j.id for j in interrupted] == ["a"] and [j.id for j in queued] == ["b"]
    assert queued[0].photo == b"photo-bytes"
    a = again.job("a")
    # an interrupted job keeps its photo until it is trained again (one click)
    assert (a.status, a.message, a.photo) == ("interrupted", INTERRUPTED_MESSAGE, b"photo-bytes")
    assert again.retrainable(LOCAL.id) == ["a"] and again.retrainable("hf:x") == []
    assert again.job("c").status == "done"
    assert again.recover_jobs() == ([], queued)  # idempotent
    again.drop_photo("a", "trained again")
    assert again.job("a").photo is None and again.retrainable(LOCAL.id) == []


def _write_in_child(store: Store) -> None:
    store.add_job(_job("from0child0"))
    store.set_job("from0child0", "done", "written by a forked child")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX")
def test_a_forked_child_writes_on_its_own_connection(tmp_path):
    import multiprocessing

    store = Store(tmp_path / DB_FILE)
    store.add_job(_job("parent00001"))
    child = multiprocessing.get_context("fork").Process(target=_write_in_child, args=(store,))
    child.start()
    child.join(60)
    assert child.exitcode == 0
    assert store.job("from0child0").message == "written by a forked child"  # parent still works
    store.set_job("parent00001", "done")
    assert Store(tmp_path / DB_FILE).job("parent00001").status == "done"


def test_a_damaged_or_newer_database_is_one_line(tmp_path):
    from serving.store import StoreError

    bad = tmp_path / "bad.sqlite3"
    bad.write_bytes(b"not a database at all" * 100)
    store = Store(bad)  # kept aside, a new one started (tests/test_store_rebuild.py)
    assert store.set_aside.read_bytes() == b"not a database at all" * 100
    newer = tmp_path / "newer.sqlite3"
    sqlite3.connect(newer).execute("PRAGMA user_version=99")
    with pytest.raises(StoreError, match="newer version"):
        Store(newer)


# ----------------------------------------------------------------------------- training service


def test_jobs_are_private_and_resume_after_a_restart(tmp_path, tiny_components, astronaut):
    from serving.jobs import TrainingQueue
    from serving.training_service import TrainingService

    buffer = tmp_path / "a.png"
    Image.fromarray(astronaut).save(buffer)
    photo = buffer.read_bytes()
    space = Workspace(tmp_path / "data", multi_user=True, examples_dir=None)
    store = Store(tmp_path / "data" / DB_FILE)
    ada, bob = owner_from_key(new_key()), owner_from_key(new_key())
    # what a killed server left: one job running, two queued (one of a mode that cannot run)
    store.add_job(JobRecord(id="running0001", owner=ada.id, label="Training Ada Lovelace",
                            name="Ada Lovelace", pronouns="she", steps=2, seed=None,
                            status="queued", total=2, photo=photo))
    store.set_job("running0001", "running")
    store.add_job(JobRecord(id="queued00001", owner=ada.id, label="Training Alan Turing",
                            name="Alan Turing", pronouns="he", steps=2, seed=1,
                            status="queued", total=2, photo=photo))
    store.add_job(JobRecord(id="queued00002", owner=LOCAL.id, label="Training X Y",
                            name="X Y", pronouns="", steps=2, seed=1, status="queued", total=2,
                            photo=photo))
    queue = TrainingQueue()
    service = TrainingService(lambda: tiny_components, space, queue, store)
    try:
        resumed = service.resume()
        assert [v.id for v in resumed] == ["queued00001"]
        interrupted = service.view("running0001", ada)
        assert interrupted.status == "interrupted" and "restarted" in interrupted.message
        assert queue.wait("queued00001", timeout_s=120).status == "done"
        assert store.job("queued00001").status == "done" and store.job("queued00001").photo is None
        failed = store.job("queued00002")
        assert failed.status == "failed" and "single-user library is not used" in failed.message
        assert space.catalog(ada).names() == ["Alan Turing"]
        assert space.library(ada).get("Alan Turing").metadata["job"] == "queued00001"
        # privacy: bob sees, cancels and trains nothing of ada's
        assert service.views(["running0001", "queued00001"], bob) == []
        assert service.view("queued00001", ada).status == "done"
        assert [v.id for v in service.recent(ada)] == ["queued00001", "running0001"]
        assert service.recent(bob) == []
        request = service.check(photo, "Alan Turing", "he", True, 400, owner=bob)  # bob's own
        view = service.submit(request)
        assert not service.cancel(view.id, ada) and service.view(view.id, ada) is None
        assert service.cancel(view.id, bob)
        assert queue.wait(view.id, timeout_s=60).status == "cancelled"
        assert store.job(view.id).status == "cancelled"
        assert space.catalog(bob).names() == []
        with pytest.raises(NotSignedIn):
            service.check(photo, "Alan Turing", "he", True, 2, owner=None)
    finally:
        queue.shutdown()

    # a job that saved its identity just before the kill is done, not interrupted
    store.add_job(JobRecord(id="savedjust01", owner=ada.id, label="Training Grace Hopper",
                            name="Grace Hopper", pronouns="she", steps=2, seed=None,
                            status="running", total=2, photo=photo))
    space.library(ada).add("Grace Hopper", torch.randn(2, 32), torch.randn(2, 64),
                           metadata={"job": "savedjust01"})
    queue = TrainingQueue()
    try:
        TrainingService(lambda: tiny_components, space, queue, store).resume()
        assert store.job("savedjust01").status == "done"
    finally:
        queue.shutdown()


# ----------------------------------------------------------------------------- saved comics


def _export(folder: Path, pages: int = 2) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for number in range(1, pages + 1):
        Image.new("RGB", (32, 48), (number * 60, 0, 0)).save(folder / f"page_{number}.png")
        files.append(folder / f"page_{number}.png")
    Image.new("RGB", (8, 8)).save(folder / "panel_01.png")
    for name in ("comic.pdf", "project.json", "comic.zip"):
        (folder / name).write_bytes(name.encode())
        files.append(folder / name)
    return [folder / "panel_01.png", *files]


def test_saved_comics_are_per_owner(tmp_path):
    space = Workspace(tmp_path / "data", multi_user=True, examples_dir=None)
    store = Store(tmp_path / "data" / DB_FILE)
    shelf = ComicShelf(store, space)
    ada, bob = owner_from_key(new_key()), owner_from_username("bob")
    first = shelf.save(ada, "  The   Apple ", _export(tmp_path / "export1"))
    second = shelf.save(ada, "", _export(tmp_path / "export2", pages=3))
    listed = shelf.list(ada)
    assert [c.id for c in listed] == [second.id, first.id] and shelf.list(bob) == []
    assert first.title == "The Apple" and [p.name for p in first.pages] == ["page_1.png", "page_2.png"]
    assert first.thumbnail.name == "page_1.png" and "panel_01.png" not in [f.name for f in first.files]
    assert second.caption().startswith("Untitled comic · 20") and second.caption().endswith("UTC")
    for action in (lambda: shelf.get(bob, first.id), lambda: shelf.delete(bob, first.id),
                   lambda: shelf.save(bob, "mine now", [], comic_id=first.id),
                   lambda: shelf.get(ada, "../" + first.id), lambda: shelf.get(ada, None)):
        with pytest.raises(ComicNotFound):
            action()
    # saving again replaces the files, keeps the id
    again = shelf.save(ada, "The Apple, redrawn", _export(tmp_path / "export3", pages=1),
                       comic_id=first.id)
    assert again.id == first.id and len(again.pages) == 1 and again.title == "The Apple, redrawn"
    shelf.delete(ada, first.id)
    assert [c.id for c in shelf.list(ada)] == [second.id] and not first.folder.exists()
    assert store.comic(first.id) is None


# ----------------------------------------------------------------------------- kill -9


def _killed(script: str, crash_at: str, cwd: Path) -> None:
    """Run ``script`` in a fresh Python that SIGKILLs itself at ``crash_at``."""
    env = {"COMIC_CRASH_AT": crash_at, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1",
           "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == -signal.SIGKILL, (result.returncode, result.stderr[-2000:])


PRELUDE = """
    import sys, torch
    from pathlib import Path
    from identities.owners import Workspace, parse_owner
    from serving.store import Store
    from serving.saved_comics import ComicShelf
    root = Path("data")
    space = Workspace(root, multi_user=True, examples_dir=None)
    owner = parse_owner(sys.argv[1] if len(sys.argv) > 1 else "key:" + "a" * 32)
    shelf = ComicShelf(Store(root / "comic-identity.sqlite3"), space)
"""


def test_kill_during_identity_save_and_delete_leaves_no_half_entry(tmp_path):
    space = Workspace(tmp_path / "data", multi_user=True, examples_dir=None)
    owner = parse_owner("key:" + "a" * 32)
    library = space.library(owner)
    _identity(library, "Alan Turing", "he")
    _killed(PRELUDE + """
    space.library(owner).add("Ada Lovelace", torch.randn(2, 32), torch.randn(2, 64))
    """, "library-add", tmp_path)
    assert library.names() == ["Alan Turing"] and library.problems() == []
    assert any(p.name.startswith(".tmp.") for p in library.root.iterdir())  # the staged half
    _killed(PRELUDE + """
    space.library(owner).delete("Alan Turing")
    """, "library-delete", tmp_path)
    assert library.names() == [] and library.problems() == []
    _identity(library, "Grace Hopper")  # the next write tidies the leftovers
    assert [p.name for p in library.root.iterdir() if p.name.startswith(".") and p.is_dir()] == []
    assert library.names() == ["Grace Hopper"]


def test_kill_during_comic_save_and_delete_leaves_no_half_entry(tmp_path):
    space = Workspace(tmp_path / "data", multi_user=True, examples_dir=None)
    owner = parse_owner("key:" + "a" * 32)
    export = _export(tmp_path / "export")
    shelf = ComicShelf(Store(tmp_path / "data" / DB_FILE), space)
    kept = shelf.save(owner, "Kept", export)
    files = ", ".join(repr(str(p)) for p in export)
    _killed(PRELUDE + f"""
    shelf.save(owner, "Half", [{files}])
    """, "comic-save", tmp_path)
    _killed(PRELUDE + f"""
    shelf.save(owner, "Kept, saved again", [{files}][:2], comic_id={kept.id!r})
    """, "comic-save", tmp_path)
    store = Store(tmp_path / "data" / DB_FILE)  # "after the restart"
    shelf = ComicShelf(store, space)
    assert [c.title for c in shelf.list(owner)] == ["Kept"]  # the half save is never listed
    assert [r.status for r in store.comics(status=None)] == ["saving", "saved"]
    shelf.recover()
    assert [r.title for r in store.comics(status=None)] == ["Kept"]
    assert sorted(p.name for p in space.comics_dir(owner).iterdir()) == [kept.id]
    assert len(shelf.get(owner, kept.id).pages) == 2  # the interrupted re-save changed nothing

    _killed(PRELUDE + f"""
    shelf.delete(owner, {kept.id!r})
    """, "comic-delete", tmp_path)
    store = Store(tmp_path / "data" / DB_FILE)
    shelf = ComicShelf(store, space)
    assert shelf.list(owner) == []  # marked as being deleted: not listed
    shelf.recover()
    assert store.comics(status=None) == [] and list(space.comics_dir(owner).iterdir()) == []


def test_a_space_visitor_without_login_sees_the_examples_and_is_asked_to_log_in(
        tiny_config, tiny_components, tmp_path, monkeypatch):
    import gradio.oauth

    from ui.app import build_demo

    # the environment a Space with `hf_oauth: true` provides (gradio reads some at import);
    # gradio registers its real login routes, which reach huggingface.co only when clicked
    monkeypatch.setenv("SYSTEM", "spaces")
    monkeypatch.setenv("SPACE_ID", "someone/comic-identity")
    for name, value in (("OAUTH_CLIENT_ID", "client"), ("OAUTH_CLIENT_SECRET", "secret"),
                        ("OAUTH_SCOPES", "openid profile"),
                        ("OPENID_PROVIDER_URL", "https://huggingface.co")):
        monkeypatch.setattr(gradio.oauth, name, value)
    from session import Session, Studio, StudioError

    examples = tmp_path / "examples"
    _identity(IdentityLibrary(examples), "Alan Turing", "he")
    studio = Studio(tiny_config, tiny_components, examples_dir=examples,
                    export_root=tmp_path / "exports", multi_user=True, login=True,
                    data_root=tmp_path / "data")
    try:
        guest, key = Session(), new_key()
        assert studio.sign_in(guest, key, None) == key and guest.owner is None
        assert studio.owner_of(guest) is None  # no key-based owner on a Space
        assert [e.name for e in studio.library_entries(guest)] == ["Alan Turing"]
        assert "log in with Hugging Face" in studio.library_summary(guest)
        with pytest.raises(NotSignedIn, match="log in"):
            studio.training.check(b"photo", "Ada Lovelace", "she", True, 2,
                                  owner=studio.owner_of(guest))
        with pytest.raises(StudioError, match="shipped example"):
            studio.request_delete(guest, "Alan Turing")
        assert studio.my_comics(guest) == []
        ada = Session()
        studio.sign_in(ada, None, "ada")
        assert studio.owner_of(ada) == owner_from_username("ada")
        _identity(studio.workspace.library(ada.owner), "Ada Lovelace", "she")
        assert [e.name for e in studio.library_entries(ada)] == ["Ada Lovelace", "Alan Turing"]
        assert [e.name for e in studio.library_entries(guest)] == ["Alan Turing"]
        components = build_demo(studio).get_config_file()["components"]
        assert any(c.get("props", {}).get("elem_id") == "login" for c in components)
    finally:
        studio.shutdown()


def test_while_the_models_load_a_dead_job_already_shows_interrupted(tiny_config, tiny_components,
                                                                    tmp_path, monkeypatch,
                                                                    astronaut):
    import io
    import threading

    from models import loading
    from session import Studio

    release = threading.Event()

    def slow_load(config):  # the models arrive when the test says so (a first download)
        assert release.wait(60)
        return tiny_components

    buffer = io.BytesIO()
    Image.fromarray(astronaut).save(buffer, format="PNG")
    store = Store(tmp_path / "library" / DB_FILE)
    for job_id, status in (("was0running", "running"), ("was0queued0", "queued")):
        store.add_job(JobRecord(id=job_id, owner=LOCAL.id, label="Training Ada Lovelace",
                                name="Ada Lovelace", pronouns="she", steps=2, seed=None,
                                status=status, total=2, photo=buffer.getvalue()))
    store.close()
    monkeypatch.setattr(loading, "load_components", slow_load)
    studio = Studio.create_in_background(tiny_config.replace(library_dir=str(tmp_path / "library")),
                                         export_root=tmp_path / "exports")
    try:
        assert studio.loading
        assert studio.training.view("was0running").status == "interrupted"  # at once
        assert studio.training.view("was0queued0").status == "queued"  # waits for the models
        release.set()
        deadline = time.monotonic() + 120
        while studio.training.view("was0queued0").status != "done":
            assert time.monotonic() < deadline, studio.training.view("was0queued0")
            time.sleep(0.2)
        assert "Ada Lovelace" in studio.catalog
    finally:
        release.set()
        studio.shutdown()
