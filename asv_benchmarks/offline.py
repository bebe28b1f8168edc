"""Serve an asv dashboard's scripts from its own folder instead of public CDNs.

asv's published ``index.html`` loads jQuery, flot, Bootstrap, blueimp-md5 and
stupidtable from ``code.jquery.com``, ``cdnjs.cloudflare.com`` and
``cdn.jsdelivr.net``; without those hosts the page shows "One or more external
(JavaScript) dependencies of airspeed velocity failed to load". :func:`localize`
fetches the same libraries from the npm registry (``npm pack``, cached in a
folder of your choice), copies the files the page uses into ``vendor/`` next to
``index.html`` and points the page at them, so that a machine that reaches a
package registry but not the CDNs (or none at all, once the cache is filled)
can browse the dashboard.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tarfile
from pathlib import Path

__all__ = ["Asset", "assets", "localize"]

#: cdnjs library names whose npm package has another name (and, where the CDN's
#: version is not on npm, the npm version that replaces it).
_CDNJS_TO_NPM = {"stupidtable": ("stupid-table-plugin", "1.1.3")}

_URL = re.compile(r'(?:src|href)="(https://[^"]+)"')


class Asset:
    """One CDN file of the page and where its npm package holds it."""

    def __init__(self, url: str, package: str, version: str, path: str):
        self.url, self.package, self.version, self.path = url, package, version, path

    @property
    def local(self) -> str:
        """Its address relative to ``index.html``."""
        return f"vendor/{self.package}@{self.version}/{self.path}"

    def __repr__(self) -> str:
        return f"Asset({self.url!r} -> {self.package}@{self.version}/{self.path})"


def _asset(url: str) -> Asset | None:
    """The npm package and file behind a CDN address, or None for other addresses."""
    if m := re.fullmatch(r"https://code\.jquery\.com/jquery-([\d.]+)(\.min)?\.js", url):
        return Asset(url, "jquery", m[1], f"dist/jquery{m[2] or ''}.js")
    if m := re.fullmatch(r"https://cdn\.jsdelivr\.net/npm/([^@/]+)@([^/]+)/(.+)", url):
        return Asset(url, m[1], m[2], m[3])
    if m := re.fullmatch(r"https://cdnjs\.cloudflare\.com/ajax/libs/([^/]+)/([^/]+)/(.+)", url):
        package, version = _CDNJS_TO_NPM.get(m[1], (m[1], m[2]))
        return Asset(url, package, version, m[3])
    return None


def assets(index_html: Path) -> list[Asset]:
    """The CDN files ``index_html`` loads."""
    found = (_asset(u) for u in _URL.findall(index_html.read_text()))
    return [a for a in found if a is not None]


def _unpacked(package: str, version: str, cache: Path) -> Path:
    """The unpacked npm package, fetched with ``npm pack`` on first use."""
    root = cache / f"{package}@{version}"
    if root.is_dir():
        return root
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is not installed: it fetches the dashboard's scripts")
    cache.mkdir(parents=True, exist_ok=True)
    out = subprocess.run(
        [npm, "pack", "--silent", f"{package}@{version}", "--pack-destination", str(cache)],
        capture_output=True, text=True, timeout=300,
    )
    if out.returncode != 0:
        raise RuntimeError(f"npm pack {package}@{version} failed: {out.stderr.strip()[-500:]}")
    tgz = cache / out.stdout.strip().splitlines()[-1]
    with tarfile.open(tgz) as tar:
        if hasattr(tarfile, "data_filter"):  # Python >= 3.10.12: refuse unsafe members
            tar.extractall(root.with_suffix(".tmp"), filter="data")
        else:
            tar.extractall(root.with_suffix(".tmp"))  # noqa: S202
    (root.with_suffix(".tmp") / "package").rename(root)
    shutil.rmtree(root.with_suffix(".tmp"))
    tgz.unlink()
    return root


def _source(asset: Asset, cache: Path) -> Path:
    """The package's copy of the file: the minified one, or the plain one when npm has no
    minified build (flot 0.8.3)."""
    root = _unpacked(asset.package, asset.version, cache)
    for path in (asset.path, asset.path.replace(".min.", ".")):
        if (root / path).is_file():
            return root / path
    raise RuntimeError(f"{asset.package}@{asset.version} has no {asset.path}")


def localize(html_dir: Path, cache: Path) -> list[Asset]:
    """Copy every CDN file of ``html_dir/index.html`` into ``html_dir/vendor`` and use it there.

    The ``integrity`` checks of the CDN tags are dropped: a registry's build of a
    library need not be byte for byte the CDN's. Bootstrap's stylesheet brings
    its ``fonts/`` folder along. Returns the files localized.
    """
    index = html_dir / "index.html"
    found = assets(index)
    text = index.read_text()
    for asset in found:
        target = html_dir / asset.local
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_source(asset, cache), target)
        if asset.path.endswith(".css"):
            fonts = _unpacked(asset.package, asset.version, cache) / "dist" / "fonts"
            if fonts.is_dir():
                shutil.copytree(fonts, target.parent.parent / "fonts", dirs_exist_ok=True)
        text = text.replace(f'"{asset.url}"', f'"{asset.local}"')
    text = re.sub(r'\s+integrity="[^"]*"', "", text)
    text = re.sub(r'\s+crossorigin="[^"]*"', "", text)
    index.write_text(text)
    return found
