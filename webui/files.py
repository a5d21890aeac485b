"""Files on disk: the uploads each session used (removed when it ends) and the result
images, written once under a name of their content."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import threading
import time
import uuid
from pathlib import Path

import gradio as gr
from PIL import Image as PILImage

from .config import DATASET_DIR, EXAMPLES, IMAGE_DIR, REPORT_DIR, ROOT, SESSION_TTL

# Uploads each session used, removed when it ends. Gradio stores an upload under a folder
# named by its content's hash, so two sessions uploading the same picture share one path;
# a file is removed only if no other live session used it and nobody uploaded it again
# since (a new upload re-creates the file: a newer modification time).
_UPLOADS: dict[str, dict[str, int]] = {}  # session -> {path: mtime_ns when it was used}
_UPLOADS_LOCK = threading.Lock()
_EXAMPLE_BYTES = {Path(p).name: (ROOT / p).read_bytes() for p in EXAMPLES}


_SEEN: dict[str, float] = {}  # session -> when it last used a file here (time.time())


def touch_session(session_hash: str | None) -> None:
    """Note that a session is active (its files are kept while it is)."""
    if session_hash:
        with _UPLOADS_LOCK:
            _SEEN[session_hash] = time.time()


def sweep_sessions(
    dirs: tuple[Path, ...] = (REPORT_DIR, DATASET_DIR),
    *,
    max_age: float = SESSION_TTL,
    every: float = 60.0,
) -> None:
    """Files of sessions that ended without saying so (API clients, closed laptops): the
    uploads, reports and data-set runs of every session not active for ``max_age`` seconds
    are removed, at most once every ``every`` seconds."""
    if not _due(_SESSIONS_SWEPT, every):
        return
    now = time.time()
    with _UPLOADS_LOCK:
        stale = [s for s, t in _SEEN.items() if now - t > max_age]
    for s in stale:
        forget_session(s, dirs)
    for top in dirs:  # also those of an earlier server process
        for p in top.glob("*") if top.is_dir() else ():
            try:
                if p.name not in _SEEN and now - p.stat().st_mtime > max_age:
                    shutil.rmtree(p, ignore_errors=True)
            except OSError:
                pass


_SESSIONS_SWEPT = [0.0]


def _due(last: list[float], every: float) -> bool:
    """Whether ``every`` seconds have passed since ``last[0]`` (which then becomes now)."""
    now = time.time()
    if now - last[0] < every:
        return False
    last[0] = now
    return True


def forget_session(session_hash: str, dirs: tuple[Path, ...] = (REPORT_DIR, DATASET_DIR)) -> None:
    """A session's files: its folders under ``dirs`` (reports, data-set runs) and the uploads
    no other session uses."""
    for top in dirs:
        shutil.rmtree(top / session_hash, ignore_errors=True)
    forget_uploads(session_hash)
    with _UPLOADS_LOCK:
        _SEEN.pop(session_hash, None)


def remember_upload(path: str, request: gr.Request | None) -> None:
    """Note an uploaded file for removal at the end of the session (examples are kept)."""
    if request is not None:
        touch_session(request.session_hash)
    if not isinstance(path, (str, Path)) or request is None or not request.session_hash:
        return
    p = Path(path)
    try:
        if _EXAMPLE_BYTES.get(p.name) is not None and p.read_bytes() == _EXAMPLE_BYTES[p.name]:
            return
        mtime = p.stat().st_mtime_ns
    except OSError:
        return
    with _UPLOADS_LOCK:
        _UPLOADS.setdefault(request.session_hash, {})[str(p)] = mtime


def forget_uploads(session_hash: str) -> None:
    with _UPLOADS_LOCK:
        mine = _UPLOADS.pop(session_hash, {})
        others = {path for used in _UPLOADS.values() for path in used}
        for path, mtime in mine.items():
            p = Path(path)
            try:
                if path not in others and p.stat().st_mtime_ns == mtime:
                    p.unlink()
            except OSError:
                pass


def png(image) -> str:
    """The image as a PNG file named by its content, written once and atomically.

    Handed pixels, Gradio writes them to its cache on every answer, truncating the file in
    place: when two answers hold the same picture (a slider dragged across one ladder point,
    two users at one budget) a browser could download the file half-written. A finished
    file, named by its content, is never rewritten, and Gradio copies it atomically."""
    pil = image if isinstance(image, PILImage.Image) else PILImage.fromarray(image)
    buf = io.BytesIO()
    pil.save(buf, format="PNG")
    data = buf.getvalue()
    path = IMAGE_DIR / f"{hashlib.sha256(data).hexdigest()[:40]}.png"
    try:
        os.utime(path)  # in use again: the sweep keeps it
    except FileNotFoundError:
        IMAGE_DIR.mkdir(parents=True, exist_ok=True)
        staging = path.with_name(f".{path.stem}.{uuid.uuid4().hex}")
        staging.write_bytes(data)
        os.replace(staging, path)
        _sweep_images()
    return str(path)


_SWEPT = [0.0]


def _sweep_images(max_age: float = 1800.0, every: float = 300.0) -> None:
    """Remove this app's image files unused for ``max_age`` seconds (Gradio has copied them
    into its own cache, which delete_cache ages), at most once every ``every`` seconds."""
    if not _due(_SWEPT, every):
        return
    now = time.time()
    for p in IMAGE_DIR.glob("*.png"):
        try:
            if now - p.stat().st_mtime > max_age:
                p.unlink()
        except OSError:
            pass
