"""The served report looked at as a person would: headless Chromium screenshots of the HTML
report in both locales and ``pdftoppm`` pages of the PDF, as small PNGs (docs/images/).

After ``make demo`` (the local stack still up)::

    python -m ripples.demo.screenshots            # writes docs/images/report-{en,da}.png, …

fetches the served report from the local stack with its key and regenerates the pictures the
README shows. ``tests/demo/test_screenshots.py`` takes the same pictures of the served report
and checks what a reader must see (it does not compare pixels).

Chromium runs with the flags a closed network needs (without them it waits on look-ups).
"""

from __future__ import annotations

import argparse
import io
import shutil
import subprocess
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from PIL import Image

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)
WIDTH = 1200
HEIGHT = 2600
MAX_BYTES = 200 * 1024


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def screenshot(html: bytes, png: Path, width: int = WIDTH, height: int = HEIGHT) -> Path:
    """The top ``height`` pixels of the page as headless Chromium draws it."""
    binary = chromium()
    if binary is None:
        raise RuntimeError("chromium missing: run 'make tools' (as root) to install it")
    with tempfile.TemporaryDirectory(prefix="ripples-shot-") as tmp:
        page = Path(tmp) / "report.html"
        page.write_bytes(html)
        raw = Path(tmp) / "shot.png"
        subprocess.run(
            [
                binary,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={Path(tmp) / 'profile'}",
                f"--window-size={width},{height}",
                f"--screenshot={raw}",
                page.as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        return optimise(raw.read_bytes(), png)


def pdf_pages(pdf: bytes, prefix: Path, pages: int = 2, dpi: int = 60) -> list[Path]:
    """The first ``pages`` pages of the PDF as PNGs (poppler's ``pdftoppm``)."""
    with tempfile.TemporaryDirectory(prefix="ripples-pdf-") as tmp:
        source = Path(tmp) / "report.pdf"
        source.write_bytes(pdf)
        subprocess.run(
            ["pdftoppm", "-png", "-r", str(dpi), "-f", "1", "-l", str(pages), str(source),
             str(Path(tmp) / "page")],
            check=True,
            capture_output=True,
            timeout=120,
        )  # fmt: skip
        out = []
        for i, raw in enumerate(sorted(Path(tmp).glob("page-*.png")), start=1):
            out.append(optimise(raw.read_bytes(), prefix.with_name(f"{prefix.name}-{i}.png")))
        return out


def optimise(png: bytes, target: Path, limit: int = MAX_BYTES) -> Path:
    """A palette PNG (256 colours, then fewer and narrower until it is under ``limit``)."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    colours, width = 256, image.width
    while True:
        scaled = image if width == image.width else image.resize(
            (width, round(image.height * width / image.width)), Image.Resampling.LANCZOS
        )  # fmt: skip
        buffer = io.BytesIO()
        scaled.quantize(colours, dither=Image.Dither.NONE).save(buffer, "PNG", optimize=True)
        if buffer.tell() < limit or width < 400:
            break
        colours, width = max(colours // 2, 32), int(width * 0.85)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(buffer.getvalue())
    return target


def take(pages: dict[str, bytes], pdf: bytes, out: Path) -> list[Path]:
    """report-<locale>.png per HTML page and report-pdf-<n>.png per PDF page, under ``out``."""
    shots = [screenshot(html, out / f"report-{locale}.png") for locale, html in pages.items()]
    return shots + pdf_pages(pdf, out / "report-pdf")


def main(argv: list[str] | None = None) -> int:
    from ripples import report
    from ripples import stack as local

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("docs/images"))
    parser.add_argument("--weeks", type=int, default=12, help="the period: the last N weeks")
    args = parser.parse_args(argv)
    stack = local.build(local.state_from_cwd())
    url = {s.name: s.address for s in stack.services}["attribution"]
    key = stack.api_key
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = today - timedelta(weeks=args.weeks)
    pages = {
        locale: report.fetch(url, key, start, None, locale=locale, fmt="html")
        for locale in ("en", "da")
    }
    pdf = report.fetch(url, key, start, None, locale="da", fmt="pdf")
    for path in take(pages, pdf, args.out):
        print(f"{path} ({path.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
