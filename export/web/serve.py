"""Serve this folder as static files on 127.0.0.1, cross-origin isolated.

    python export/web/serve.py [--port 8000]

Any static file server works (``python -m http.server -d export/web``); this one adds the
two headers that make the page cross-origin isolated (``Cross-Origin-Opener-Policy:
same-origin``, ``Cross-Origin-Embedder-Policy: require-corp``), which browsers require
before onnxruntime-web may use more than one WebAssembly thread. Standard library only.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import os


class IsolatedHandler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".mjs": "text/javascript",
        ".wasm": "application/wasm",
    }

    def send_head(self):  # type: ignore[no-untyped-def]
        """A path holding a NUL byte (``/%00``) gets 400, not a dropped connection."""
        from urllib.parse import unquote

        if "\x00" in unquote(self.path):
            self.send_error(400, "Bad request: a NUL byte in the path")
            return None
        return super().send_head()

    def end_headers(self) -> None:
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def log_message(self, format: str, *args) -> None:  # quiet unless asked
        if os.environ.get("CHROMAFORMER_WEB_LOG"):
            super().log_message(format, *args)


def server(root: str, port: int = 0, host: str = "127.0.0.1") -> http.server.ThreadingHTTPServer:
    """A threaded server of ``root`` (port 0: any free port; see ``server_address``)."""
    handler = functools.partial(IsolatedHandler, directory=root)
    return http.server.ThreadingHTTPServer((host, port), handler)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--host", default="127.0.0.1")
    args = ap.parse_args()
    here = os.path.dirname(os.path.abspath(__file__))
    if not os.path.isdir(os.path.join(here, "node_modules", "onnxruntime-web")):
        raise SystemExit(
            f"Error: {here}/node_modules/onnxruntime-web is missing: install the page's "
            f"packages first (cd {os.path.relpath(here)} && npm ci)"
        )
    httpd = server(os.path.dirname(os.path.abspath(__file__)), args.port, args.host)
    host, port = httpd.server_address[:2]
    print(f"chromaformer page: http://{host}:{port}/ (Ctrl-C stops)", flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
