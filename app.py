"""Comic Identity: the Gradio web app's command line, model loading and launch.

    python app.py [--preset tiny|sdxl] [--config FILE] [--library DIR] [--host H] [--port P] [--share]
                  [--multi-user | --single-user] [--examples DIR] [--base REPO|FILE.safetensors] [--loras DIR]

Four steps, one tab each: Characters (train identities, the library, the cast), Story (parse the
story into an editable panel list), Style and settings, Comic (generate, pick candidates, redraw,
download, open a saved project), one module each in the ``ui`` package (``ui.app.build_demo``
builds the page). Handlers are thin calls into :class:`session.Studio`; per-browser data lives
in a ``gr.State`` holding a :class:`session.Session`. Every event
has an ``api_name`` (see docs/APP.md) so the whole flow can be driven with ``gradio_client``.
Runs unchanged as a Hugging Face Space (docs/APP.md, "Run it as a Space"): drawing handlers are
wrapped in ``spaces.GPU``, and on ZeroGPU training runs inside ``spaces.GPU`` from the Train
request (``serving/zero_gpu.py``, ``ui/zero_gpu.py``) instead of the background queue.
``--multi-user`` (the default on a Space, where ``SPACE_ID`` is set) gives every visitor a private
library and My comics; see ``identities/owners.py``.
"""

import argparse
import os
import signal
import sys

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from serving.zero_gpu import import_spaces_first  # noqa: E402  (torch-free)

import_spaces_first()  # on a ZeroGPU Space `spaces` must be imported before CUDA is initialised

from configs import AppConfig, ConfigError, available_presets, load_config  # noqa: E402

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="app.py", description="Comic Identity: identity-preserving comics from a story and one photo per character.")
    parser.add_argument("--preset", choices=available_presets(), default=None,
                        help="model preset (default: $COMIC_PRESET or sdxl; 'tiny' runs offline with random weights)")
    parser.add_argument("--config", default=None, help="a preset YAML file (wins over --preset)")
    parser.add_argument("--base", default=None,
                        help="any SDXL checkpoint: a Hugging Face repo id (diffusers layout) or a local "
                             "single-file .safetensors (default: the preset's model.base, else model.pretrained)")
    parser.add_argument("--library", default=os.environ.get("COMIC_LIBRARY") or None,
                        help="identity library folder (default: $COMIC_LIBRARY, else /data/embeddings on a "
                             "Space with persistent storage, else the preset's library_dir)")
    parser.add_argument("--loras", default=None,
                        help="folder of style LoRA .safetensors files offered in the Style step "
                             "(default: the preset's loras_dir)")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"), help="address to serve on")
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
                        help="port to serve on")
    parser.add_argument("--share", action="store_true", help="create a public Gradio share link")
    parser.add_argument("--check", action="store_true", help="load every model of the preset, then exit")
    users = parser.add_mutually_exclusive_group()
    users.add_argument("--multi-user", dest="multi_user", action="store_true", default=None,
                       help="a private identity library and comics per visitor (default on a "
                            "Hugging Face Space: the HF login; locally: a key kept in the browser)")
    users.add_argument("--single-user", dest="multi_user", action="store_false",
                       help="one shared library (the default outside a Space)")
    parser.add_argument("--examples", default=None,
                        help="read-only example identities shared by all (default: embeddings/examples)")
    return parser.parse_args(argv)


def resolve_config(args: argparse.Namespace) -> AppConfig:
    """The preset chosen on the command line, with ``--library`` applied."""
    config = load_config(preset=args.preset, path=args.config).with_base(args.base)
    if args.library:
        config = config.replace(library_dir=args.library)
    if args.loras:
        config = config.replace(loras_dir=args.loras)
    return config


def check_models(config: AppConfig) -> None:
    """Load every component once (downloads on first use), so failures show before serving."""
    from models.loading import load_components

    components = load_components(config)
    print(f"preset '{config.name}' ready on {components.device} ({components.dtype})")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        config = resolve_config(args)
        if args.check:
            check_models(config)
            return 0
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - model loading errors become one line
        from models.loading import ModelUnavailable

        if isinstance(exc, ModelUnavailable):
            print(f"error: {exc}", file=sys.stderr)
            return 2
        raise
    from core.run_folder import open_run_folder

    run = open_run_folder()  # also removes the folders of killed runs
    os.environ.setdefault("GRADIO_TEMP_DIR", str(run.uploads))  # uploads die with the run
    stops = (signal.SIGTERM, signal.SIGINT)  # both clean up (SIGINT even when started ignored)
    previous = {sig: signal.signal(sig, _interrupt) for sig in stops}
    try:
        return _serve(args, config, run)
    except KeyboardInterrupt:  # interrupted before the server ran
        return 130
    finally:
        for sig in stops:  # a second signal must not stop the cleanup
            signal.signal(sig, signal.SIG_IGN)
        run.remove()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM / SIGINT handler: raise KeyboardInterrupt in the main thread, so Gradio closes its
    server (and deletes its cache) and ``main`` removes the run folder."""
    raise KeyboardInterrupt


def _serve(args: argparse.Namespace, config: AppConfig, run) -> int:
    """Load the models, build the page and serve until interrupted; the studio is shut down after."""
    from configs import load_limits
    from identities.names import LibraryError
    from identities.owners import data_root, on_space
    from ui.app import CSS, build_demo
    from ui.visitor_files import app_kwargs
    from session import Studio

    from serving.zero_gpu import on_zero_gpu

    space = on_space()
    multi_user = space if args.multi_user is None else args.multi_user
    options = dict(multi_user=multi_user, login=multi_user and space,
                   data_root=data_root(args.library, config.library_dir, space=space))
    if args.examples:
        options["examples_dir"] = args.examples
    print(f"loading the '{config.name}' models ...", file=sys.stderr, flush=True)
    # a hub preset: serve at once and say in the page that the models are loading (a first run
    # downloads ~7 GB); tiny (a second) and ZeroGPU (as spaces expects) load before serving.
    # Either way a loading failure shows in the page.
    background = config.model.kind == "hub" and not on_zero_gpu()
    create = Studio.create_in_background if background else Studio.create
    try:
        studio = create(config, export_root=run.downloads, **options)
    except LibraryError as exc:  # the database cannot be opened
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        demo = build_demo(studio)
        demo.launch(server_name=args.host, server_port=args.port, share=args.share,
                    allowed_paths=[str(studio.export_root)], css=CSS,
                    max_file_size=load_limits().upload_bytes,
                    app_kwargs=app_kwargs(studio.visitor_files))
    finally:
        studio.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
